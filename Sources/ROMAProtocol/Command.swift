/// The commands this server understands. `name` is the lower-case wire spelling.
public enum Command: UInt8, CaseIterable, Sendable {
    // Retrieval and storage (plugin_storage, R3.9) plus memcached's extras.
    case get, gets, set, add, replace, append, prepend, cas, delete, incr, decr
    case setExpt, getExpt, touch
    // Session and information (R3.14–R3.17).
    case version, whoami, nodelist, hashlist, defhash, quit, stat, stats, verbosity, flushAll
    case createhash, deletehash, mounthash, umounthash
    // The same, relayed by another node (R3.17).
    case rdefhash, rcreatehash, rdeletehash, rmounthash, rumounthash
    case balse, shutdown, shutdownSelf
    // Routing introspection.
    case mklhash, routingdump, getKeyInfo
    // Safecopy and snapshot (R7.10, R7.11).
    case setStorageStatus, setGuiRunSnapshot, setGuiLastSnapshot, rsetGuiLastSnapshot
    // Runtime setters (R9.1).
    case setLogLevel, setHilatencyWarnTime, rsetHilatencyWarnTime
    case setSpushvKlengthWarn, rsetSpushvKlengthWarn, setSpushvVlengthWarn, rsetSpushvVlengthWarn
    case switchDnsCaching, rswitchDnsCaching, setDescriptorTableSize, rsetDescriptorTableSize
    // Cluster: forwarded commands (R5.1), replica writes (R5.2), routing (R4.6, R4.8), start-up (R3.7).
    case fget, fset, fadd, freplace, fappend, fprepend, fcas, fincr, fdecr, fdelete, fsetExpt
    case rset, rzset, rdelete, out
    case getroute, setroute, join, leave, createNodesFromVIdx, enabledRepetitionInRouting, historyOfLost
    // RTTABLE_SUB_NID (node ids as clients of a subnet see them), relayed with `r`.
    case addRttableSubNid, raddRttableSubNid, deleteRttableSubNid, rdeleteRttableSubNid
    case clearRttableSubNid, rclearRttableSubNid
    case forcedlyStart, setSizeOfZredundant, rsetSizeOfZredundant
    // Failover administration (R5.14), rbalse and rshutdown (R3.16, R5.15).
    case switchFailover, rswitchFailover, setThresholdForFailover, rsetThresholdForFailover
    case setGapForFailover, rsetGapForFailover, setLostAction, rsetLostAction, rbalse, rshutdown
    // Vnode transfers (R5.8) and recover (R5.10).
    case spushv, reqpushv, recover, rrecover, spushvProtection, release, balance, rbalance
    // File-level seeding of a joining node (romad peers only; docs/cluster.md).
    case fileseed
    case setAutoRecover, rsetAutoRecover
    // Connection settings (R3.6, R9.1), relayed with `r`.
    case setContinuousLimit, rsetContinuousLimit, setAcceptedConnectionExpireTime, rsetAcceptedConnectionExpireTime
    case setConnectionPoolMaxlength, rsetConnectionPoolMaxlength, setConnectionPoolExpireTime, rsetConnectionPoolExpireTime
    case setEmconnectionPoolMaxlength, rsetEmconnectionPoolMaxlength, setEmconnectionPoolExpireTime, rsetEmconnectionPoolExpireTime
    // Vnode copy settings (R5.8, R6.6) and log rotation (R9.1), relayed with `r`.
    case setRoutingTransTimeout, rsetRoutingTransTimeout, setSpushvReadTimeout, rsetSpushvReadTimeout
    case setReqpushvTimeoutCount, rsetReqpushvTimeoutCount, dcnice, rdcnice
    case setLogShiftSize, rsetLogShiftSize, setLogShiftAge, rsetLogShiftAge
    // Latency statistics (R9.1), relayed with `r`.
    case setLatencyAvgCalcRule, rsetLatencyAvgCalcRule, addLatencyAvgCalcCmd, raddLatencyAvgCalcCmd
    case delLatencyAvgCalcCmd, rdelLatencyAvgCalcCmd, chgLatencyAvgCalcTimeCount, rchgLatencyAvgCalcTimeCount
    case restart, rrestart, setCleanupRegexp, switchReplication, rswitchReplication
    // Write-behind (R10.1), relayed with `r`.
    case wbCommandMap, rwbCommandMap, setWbShiftSize, rsetWbShiftSize, writebehindRotate, rwritebehindRotate
    case writebehindGetPath, rwritebehindGetPath, writebehindGetCurrentFile, rwritebehindGetCurrentFile

    /// The wire name.
    public var name: String {
        switch self {
        case .setExpt: return "set_expt"
        case .getExpt: return "get_expt"
        case .flushAll: return "flush_all"
        case .shutdownSelf: return "shutdown_self"
        case .getKeyInfo: return "get_key_info"
        case .setStorageStatus: return "set_storage_status"
        case .setGuiRunSnapshot: return "set_gui_run_snapshot"
        case .setGuiLastSnapshot: return "set_gui_last_snapshot"
        case .rsetGuiLastSnapshot: return "rset_gui_last_snapshot"
        case .setLogLevel: return "set_log_level"
        case .setHilatencyWarnTime: return "set_hilatency_warn_time"
        case .rsetHilatencyWarnTime: return "rset_hilatency_warn_time"
        case .setSpushvKlengthWarn: return "set_spushv_klength_warn"
        case .rsetSpushvKlengthWarn: return "rset_spushv_klength_warn"
        case .setSpushvVlengthWarn: return "set_spushv_vlength_warn"
        case .rsetSpushvVlengthWarn: return "rset_spushv_vlength_warn"
        case .switchDnsCaching: return "switch_dns_caching"
        case .rswitchDnsCaching: return "rswitch_dns_caching"
        case .setDescriptorTableSize: return "set_descriptor_table_size"
        case .rsetDescriptorTableSize: return "rset_descriptor_table_size"
        case .fsetExpt: return "fset_expt"
        case .createNodesFromVIdx: return "create_nodes_from_v_idx"
        case .enabledRepetitionInRouting: return "enabled_repetition_in_routing?"
        case .historyOfLost: return "history_of_lost"
        case .addRttableSubNid: return "add_rttable_sub_nid"
        case .raddRttableSubNid: return "radd_rttable_sub_nid"
        case .deleteRttableSubNid: return "delete_rttable_sub_nid"
        case .rdeleteRttableSubNid: return "rdelete_rttable_sub_nid"
        case .clearRttableSubNid: return "clear_rttable_sub_nid"
        case .rclearRttableSubNid: return "rclear_rttable_sub_nid"
        case .forcedlyStart: return "forcedly_start"
        case .setSizeOfZredundant: return "set_size_of_zredundant"
        case .rsetSizeOfZredundant: return "rset_size_of_zredundant"
        case .switchFailover: return "switch_failover"
        case .rswitchFailover: return "rswitch_failover"
        case .setThresholdForFailover: return "set_threshold_for_failover"
        case .rsetThresholdForFailover: return "rset_threshold_for_failover"
        case .setGapForFailover: return "set_gap_for_failover"
        case .rsetGapForFailover: return "rset_gap_for_failover"
        case .setLostAction: return "set_lost_action"
        case .rsetLostAction: return "rset_lost_action"
        case .spushvProtection: return "spushv_protection"
        case .setAutoRecover: return "set_auto_recover"
        case .rsetAutoRecover: return "rset_auto_recover"
        case .setCleanupRegexp: return "set_cleanup_regexp"
        case .switchReplication: return "switch_replication"
        case .rswitchReplication: return "rswitch_replication"
        case .wbCommandMap: return "wb_command_map"
        case .rwbCommandMap: return "rwb_command_map"
        case .setWbShiftSize: return "set_wb_shift_size"
        case .rsetWbShiftSize: return "rset_wb_shift_size"
        case .writebehindRotate: return "writebehind_rotate"
        case .rwritebehindRotate: return "rwritebehind_rotate"
        case .writebehindGetPath: return "writebehind_get_path"
        case .rwritebehindGetPath: return "rwritebehind_get_path"
        case .writebehindGetCurrentFile: return "writebehind_get_current_file"
        case .rwritebehindGetCurrentFile: return "rwritebehind_get_current_file"
        case .setContinuousLimit: return "set_continuous_limit"
        case .rsetContinuousLimit: return "rset_continuous_limit"
        case .setAcceptedConnectionExpireTime: return "set_accepted_connection_expire_time"
        case .rsetAcceptedConnectionExpireTime: return "rset_accepted_connection_expire_time"
        case .setConnectionPoolMaxlength: return "set_connection_pool_maxlength"
        case .rsetConnectionPoolMaxlength: return "rset_connection_pool_maxlength"
        case .setConnectionPoolExpireTime: return "set_connection_pool_expire_time"
        case .rsetConnectionPoolExpireTime: return "rset_connection_pool_expire_time"
        case .setEmconnectionPoolMaxlength: return "set_emconnection_pool_maxlength"
        case .rsetEmconnectionPoolMaxlength: return "rset_emconnection_pool_maxlength"
        case .setEmconnectionPoolExpireTime: return "set_emconnection_pool_expire_time"
        case .rsetEmconnectionPoolExpireTime: return "rset_emconnection_pool_expire_time"
        case .setRoutingTransTimeout: return "set_routing_trans_timeout"
        case .rsetRoutingTransTimeout: return "rset_routing_trans_timeout"
        case .setSpushvReadTimeout: return "set_spushv_read_timeout"
        case .rsetSpushvReadTimeout: return "rset_spushv_read_timeout"
        case .setReqpushvTimeoutCount: return "set_reqpushv_timeout_count"
        case .rsetReqpushvTimeoutCount: return "rset_reqpushv_timeout_count"
        case .setLogShiftSize: return "set_log_shift_size"
        case .rsetLogShiftSize: return "rset_log_shift_size"
        case .setLogShiftAge: return "set_log_shift_age"
        case .rsetLogShiftAge: return "rset_log_shift_age"
        case .setLatencyAvgCalcRule: return "set_latency_avg_calc_rule"
        case .rsetLatencyAvgCalcRule: return "rset_latency_avg_calc_rule"
        case .addLatencyAvgCalcCmd: return "add_latency_avg_calc_cmd"
        case .raddLatencyAvgCalcCmd: return "radd_latency_avg_calc_cmd"
        case .delLatencyAvgCalcCmd: return "del_latency_avg_calc_cmd"
        case .rdelLatencyAvgCalcCmd: return "rdel_latency_avg_calc_cmd"
        case .chgLatencyAvgCalcTimeCount: return "chg_latency_avg_calc_time_count"
        case .rchgLatencyAvgCalcTimeCount: return "rchg_latency_avg_calc_time_count"
        default: return String(describing: self)
        }
    }

    /// Storage commands carry a data block after the line.
    public var hasDataBlock: Bool {
        switch self {
        case .set, .add, .replace, .append, .prepend, .cas: return true
        case .fset, .fadd, .freplace, .fappend, .fprepend, .fcas, .rset, .rzset: return true
        default: return false
        }
    }

    /// Index of the token holding the data block's byte count (`rset <key> <d> <clk> <expt> <len>`).
    public var byteCountToken: Int {
        switch self {
        case .rset, .rzset: return 5
        default: return 4
        }
    }

    /// Number of tokens the command line has (without `noreply`).
    public var storageTokenCount: Int {
        switch self {
        case .cas, .fcas, .rset, .rzset: return 6
        default: return 5
        }
    }

    /// Whether this is the `r…` form another node sends of a command ROMA relays to every node
    /// (R3.16, R3.17, R5.14): it runs here and is answered alone, not relayed again.
    public var isRelayedForm: Bool {
        switch self {
        case .rsetSizeOfZredundant, .rswitchFailover, .rsetThresholdForFailover, .rsetGapForFailover, .rsetLostAction,
             .rrecover, .rbalance, .rsetAutoRecover, .rbalse, .rshutdown,
             .rdefhash, .rcreatehash, .rdeletehash, .rmounthash, .rumounthash,
             .raddRttableSubNid, .rdeleteRttableSubNid, .rclearRttableSubNid,
             .rsetHilatencyWarnTime, .rsetSpushvKlengthWarn, .rsetSpushvVlengthWarn, .rswitchDnsCaching,
             .rsetDescriptorTableSize,
             .rsetContinuousLimit, .rsetAcceptedConnectionExpireTime, .rsetConnectionPoolMaxlength, .rsetConnectionPoolExpireTime, .rsetEmconnectionPoolMaxlength,
             .rsetEmconnectionPoolExpireTime, .rsetRoutingTransTimeout, .rsetSpushvReadTimeout, .rsetReqpushvTimeoutCount, .rsetLogShiftSize, .rsetLogShiftAge,
             .rsetLatencyAvgCalcRule, .raddLatencyAvgCalcCmd, .rdelLatencyAvgCalcCmd, .rchgLatencyAvgCalcTimeCount, .rdcnice, .rrestart, .rsetGuiLastSnapshot, .rswitchReplication,
             .rwbCommandMap, .rsetWbShiftSize, .rwritebehindRotate, .rwritebehindGetPath, .rwritebehindGetCurrentFile:
            return true
        default:
            return false
        }
    }

    /// Whether another node sends it (forwarded `f…` commands, replica writes, relayed hash
    /// commands): R3.6's connection shedding never answers these.
    public var isPeerForm: Bool {
        switch self {
        case .fget, .fset, .fadd, .freplace, .fappend, .fprepend, .fcas, .fincr, .fdecr, .fdelete, .fsetExpt,
             .rset, .rzset, .rdelete, .out, .rdefhash, .rcreatehash, .rdeletehash, .rmounthash, .rumounthash:
            return true
        default:
            return false
        }
    }

    /// Whether the command is a client data command, gated during start-up (R3.7).
    public var isDataCommand: Bool {
        switch self {
        case .get, .gets, .set, .add, .replace, .append, .prepend, .cas, .delete, .incr, .decr,
             .setExpt, .getExpt, .touch, .flushAll,
             .fget, .fset, .fadd, .freplace, .fappend, .fprepend, .fcas, .fincr, .fdecr, .fdelete, .fsetExpt,
             .defhash, .createhash, .deletehash, .mounthash, .umounthash, .hashlist,
             .rdefhash, .rcreatehash, .rdeletehash, .rmounthash, .rumounthash:
            return true
        default: return false
        }
    }

    /// Every command keyed by its lower-case name packed into a UInt64 (names ≤ 8 bytes), and
    /// the longer names as byte arrays.
    static let shortTable: [(Int, UInt64, Command)] = Command.allCases.compactMap { c in
        let b = Array(c.name.utf8)
        return b.count <= 8 ? (b.count, pack(b), c) : nil
    }
    static let longTable: [([UInt8], Command)] = Command.allCases.compactMap { c in
        let b = Array(c.name.utf8)
        return b.count > 8 ? (b, c) : nil
    }

    @inline(__always) static func pack<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        for var c in bytes {
            if c >= 0x41 && c <= 0x5a { c |= 0x20 }
            v |= UInt64(c) << shift
            shift &+= 8
        }
        return v
    }

    /// Matches a command token case-insensitively (R3.1).
    public static func match(_ token: UnsafeRawBufferPointer) -> Command? {
        let n = token.count
        if n == 0 { return nil }
        if n <= 8 {
            let v = pack(token)
            for (len, k, c) in shortTable where k == v && len == n { return c }
            return nil
        }
        outer: for (bytes, c) in longTable where bytes.count == n {
            for i in 0..<n {
                var b = token[i]
                if b >= 0x41 && b <= 0x5a { b |= 0x20 }
                if b != bytes[i] { continue outer }
            }
            return c
        }
        return nil
    }
}
