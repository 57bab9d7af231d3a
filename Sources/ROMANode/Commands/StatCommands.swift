import NIOCore
import ROMAProtocol
import ROMARouting
import ROMAStorage

/// `stat` / `stats [regexp]` (spec R3.15): ROMA's `name value` lines in ROMA's order, filtered by
/// a regular expression on the name when exactly one argument is given.
extension Dispatcher {
    func stat(_ r: Request, out: inout ByteBuffer) -> Outcome {
        var filter: StatFilter?
        if r.count == 2 {
            let pattern = r.tokenString(1)
            if pattern == "noreply" {
                out.writeLine("CLIENT_ERROR stats does not take noreply. Usage: stats [regexp]")
                return .next
            }
            guard let f = StatFilter(pattern) else {
                out.writeLine("CLIENT_ERROR invalid regexp: \(pattern)")
                return .next
            }
            filter = f
        }
        for (name, value) in statLines() {
            if let filter, !filter.matches(name) { continue }
            out.writeString(name)
            out.writeStaticString(" ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString(Reply.end)
        return .next
    }

    /// Every stat line, in ROMA's order.
    func statLines() -> [(String, String)] {
        let c = node.config
        let s = node.stats
        var l: [(String, String)] = []
        func add(_ k: String, _ v: String) { l.append((k, v)) }
        add("version", "1.3.0")
        add("config.DEFAULT_LOST_ACTION", c.lostAction)
        add("config.LOG_SHIFT_AGE", "10")
        add("config.LOG_SHIFT_SIZE", "10485760")
        add("config.LOG_PATH", FileSystem.absolute(c.logPath))
        add("config.RTTABLE_PATH", FileSystem.absolute(c.routingPath))
        add("config.STORAGE_DELMARK_EXPTIME", String(c.delmarkExptime))
        add("config.STORAGE_EXCEPTION_ACTION", "no_action")
        add("config.DATACOPY_STREAM_COPY_WAIT_PARAM", "0.001")
        add("config.PLUGIN_FILES", "[\"plugin_storage.rb\"]")
        add("config.WRITEBEHIND_PATH", FileSystem.absolute(c.writeBehindPath))
        add("config.WRITEBEHIND_SHIFT_SIZE", String(c.writeBehindShiftSize))
        add("config.CONNECTION_DESCRIPTOR_TABLE_SIZE", String(c.descriptorTableSize))
        add("stats.config_path", c.configPath ?? "")
        add("stats.address", c.address)
        add("stats.port", String(c.port))
        add("stats.daemon", "false")
        add("stats.name", c.name)
        add("stats.verbose", "false")
        add("stats.enabled_repetition_host_in_routing", c.replicationInHost ? "true" : "false")
        add("stats.run_recover", node.recovering.load(ordering: .relaxed) ? "true" : "false")
        add("stats.run_sync_routing", "false")
        add("stats.run_iterate_storage", node.transfers.withLockedValue { $0.running > 0 } ? "true" : "false")
        add("stats.run_storage_clean_up", s.cleanUpRunning.load(ordering: .relaxed) ? "true" : "false")
        add("stats.run_receive_a_vnode", "{}")
        add("stats.run_release", node.releasing.load(ordering: .relaxed) ? "true" : "false")
        add("stats.run_join", node.joining.load(ordering: .relaxed) ? "true" : "false")
        add("stats.run_balance", node.joining.load(ordering: .relaxed) && node.config.joinSeed == nil ? "true" : "false")
        add("stats.gui_run_snapshot", s.guiRunSnapshot.load(ordering: .relaxed) ? "true" : "false")
        add("stats.last_clean_up", RubyTime.string(unix: Int(s.lastCleanUp.load(ordering: .relaxed))))
        add("stats.gui_last_snapshot", s.guiLastSnapshot.withLock { $0 } ?? "[]")
        add("stats.spushv_protection", node.spushvProtection.load(ordering: .relaxed) ? "true" : "false")
        let rs = node.settings
        add("stats.stream_copy_wait_param", Dispatcher.rubyFloat(rs.copyWaitSeconds))
        add("stats.stream_show_wait_param", "0.001")
        add("stats.dcnice", String(rs.dcnice.load(ordering: .relaxed)))
        add("stats.clean_up_interval", String(c.cleanUpInterval))
        add("stats.size_of_zredundant", String(s.sizeOfZredundant.load(ordering: .relaxed)))
        add("stats.write_count", String(s.writeCount.load(ordering: .relaxed)))
        add("stats.read_count", String(s.readCount.load(ordering: .relaxed)))
        add("stats.delete_count", String(s.deleteCount.load(ordering: .relaxed)))
        add("stats.out_count", String(s.outCount.load(ordering: .relaxed)))
        add("stats.out_message_count", "0")
        add("stats.redundant_count", String(s.redundantCount.load(ordering: .relaxed)))
        add("stats.hilatency_warn_time", Dispatcher.rubyFloat(Double(bitPattern: node.hilatencyWarnTime.load(ordering: .relaxed))))
        add("stats.wb_command_map", node.writeBehind.mapInspect)
        let latency = rs.latency.withLockedValue { $0 }
        add("stats.latency_log", latency.log ? "true" : "false")
        add("stats.latency_check_cmd", RubyInspect.array(latency.commands))
        add("stats.latency_check_time_count", latency.timeCount.map(String.init) ?? "false")
        add("stats.spushv_klength_warn", String(node.spushvKlengthWarn.load(ordering: .relaxed)))
        add("stats.spushv_vlength_warn", String(node.spushvVlengthWarn.load(ordering: .relaxed)))
        add("stats.spushv_read_timeout", String(rs.spushvReadTimeout.load(ordering: .relaxed)))
        add("stats.reqpushv_timeout_count", String(rs.reqpushvTimeoutCount.load(ordering: .relaxed)))
        add("stats.routing_trans_timeout", rs.routingTransTimeoutShown.withLockedValue { $0 })
        add("stats.log_shift_size", String(LogRotation.size))
        add("stats.log_shift_age", LogRotation.ageDescription)
        add("stats.log_level", RuntimeLogLevel.name)
        for name in node.hashNames {
            guard let st = node.storage(name) else { continue }
            let p = "storages[\(name)]."
            add(p + "storage.storage_path", st.directory ?? "")
            add(p + "storage.st_class", st.engine.className)
            add(p + "storage.divnum", String(st.divnum))
            if case .tokyoCabinet(let o) = st.engine { add(p + "storage.option", o.source) } else { add(p + "storage.option", "") }
            add(p + "storage.each_vn_dump_sleep", Dispatcher.rubyFloat(Double(bitPattern: rs.eachVnDumpSleep.load(ordering: .relaxed))))
            add(p + "storage.each_vn_dump_sleep_count", String(rs.eachVnDumpSleepCount.load(ordering: .relaxed)))
            add(p + "storage.each_vn_dump_files", "nil")
            add(p + "storage.each_clean_up_sleep", "0.01")
            add(p + "storage.cleanup_regexp", node.cleanupRegexps.withLockedValue { $0[name] } ?? "")
            add(p + "storage.logic_clock_expire", String(st.logicClockExpire))
            add(p + "storage.safecopy_stats", "[" + st.states.map { ":" + $0.name }.joined(separator: ", ") + "]")
            // Only while a joining node's file seed holds divisions (cpdb waits for those).
            let seeding = (0..<st.divnum).filter { node.isSeedSending(name, division: $0) }
            if !seeding.isEmpty { add(p + "storage.fileseed_divisions", "[" + seeding.map(String.init).joined(separator: ", ") + "]") }
            if case .tokyoCabinet = st.engine {
                for i in 0..<st.divnum {
                    add(p + "storage[\(i)].path", st.path(ofDivision: i) ?? "")
                    add(p + "storage[\(i)].rnum", String(st.recordCount(ofDivision: i)))
                    add(p + "storage[\(i)].fsiz", String(st.fileSize(ofDivision: i)))
                }
            }
        }
        for (k, v) in node.writeBehind.statLines() { add(k, v) }
        let cr = node.clusterReplication
        let replica = cr.replicaView
        add("write-behind.run_replication", cr.isOn.load(ordering: .relaxed) ? "true" : "false")
        add("write-behind.run_existing_data_replication", cr.runExistingData ? "true" : "false")
        add("write-behind.replica_mklhash", replica.mklhash)
        add("write-behind.replica_nodelist", RubyInspect.array(replica.nodes))
        // SwiftROMA's own counters of the replication (not in ROMA 1.3).
        add("write-behind.replication_delivered", String(cr.delivered.load(ordering: .relaxed)))
        add("write-behind.replication_errors", String(cr.errors.load(ordering: .relaxed)))
        add("write-behind.replication_dropped", String(cr.dropped.load(ordering: .relaxed)))
        let rt = node.routing
        let counts = rt.counts(for: node.nodeID)
        add("routing.redundant", String(rt.rn))
        add("routing.nodes.length", String(rt.nodes.count))
        add("routing.nodes", RubyInspect.array(rt.nodes))
        add("routing.dgst_bits", String(rt.dgstBits))
        add("routing.div_bits", String(rt.divBits))
        add("routing.vnodes.length", String(rt.vnodes.count))
        add("routing.primary", String(counts.primary))
        for (i, n) in counts.secondary.enumerated() { add("routing.secondary\(i + 1)", String(n)) }
        add("routing.short_vnodes", String(counts.short))
        add("routing.lost_vnodes", String(counts.lost))
        let fo = node.failover.state.withLockedValue { $0 }
        add("routing.fail_cnt_threshold", String(fo.threshold))
        add("routing.fail_cnt_gap", fo.gap == fo.gap.rounded() ? String(Int(fo.gap)) : String(fo.gap))
        add("routing.sub_nid", node.subNid.withLockedValue { $0.inspect })
        add("routing.lost_action", fo.lostAction.rawValue)
        let ar = node.autoRecover.withLockedValue { $0 }
        add("routing.auto_recover", ar.enabled ? "true" : "false")
        add("routing.auto_recover_status", ar.status)
        add("routing.auto_recover_time", String(ar.seconds))
        add("routing.event", RubyInspect.array(node.routes.events))
        add("routing.event_limit_line", "1000")
        add("routing.version_of_nodes", "{" + rt.nodes.map { "\(RubyInspect.string($0))=>66304" }.joined(separator: ", ") + "}")
        add("routing.min_version", "66304")
        add("routing.enabled_failover", fo.enabled ? "true" : "false")
        // SwiftROMA's own counters (not in ROMA 1.3).
        add("stats.forward_count", String(s.forwardCount.load(ordering: .relaxed)))
        add("stats.forward_retries", String(s.forwardRetries.load(ordering: .relaxed)))
        add("stats.replication_queue", String(s.replicationQueue.load(ordering: .relaxed)))
        add("stats.replication_retried", String(s.replicationRetried.load(ordering: .relaxed)))
        add("stats.replication_dropped", String(s.replicationDropped.load(ordering: .relaxed)))
        add("stats.vnode_records_sent", String(s.vnodeRecordsSent.load(ordering: .relaxed)))
        add("stats.vnode_restreams", String(node.pulls.withLockedValue { $0.restreamsLeft }))
        add("stats.vnode_bytes_sent", String(s.vnodeBytesSent.load(ordering: .relaxed)))
        add("stats.seed_bytes_received", String(s.seedBytesReceived.load(ordering: .relaxed)))
        add("stats.seed_receive_us", String(s.seedReceiveMicros.load(ordering: .relaxed)))
        add("stats.seed_records_dropped", String(s.seedRecordsDropped.load(ordering: .relaxed)))
        let index = node.hashNames.compactMap { node.storage($0)?.vnodeIndexUsage }
        add("stats.vnode_index_keys", String(index.reduce(0) { $0 + $1.keys }))
        add("stats.vnode_index_bytes", String(index.reduce(0) { $0 + $1.bytes }))
        add("stats.vnode_index_memory", String(node.config.vnodeIndexMemory))
        add("stats.vnode_copy_bandwidth", String(node.config.copyBandwidth))
        add("stats.vnode_copy_parallelism", String(node.config.copyParallelism))
        add("connection.count", String(s.connections.load(ordering: .relaxed)))
        add("connection.descriptor_table_size", String(Node.openFileLimit()))
        let ccl = rs.continuousLimit
        add("connection.continuous_limit", "\(ccl.start):\(ccl.rate):\(ccl.full)")
        add("connection.accepted_connection_expire_time", String(rs.acceptedConnectionExpireTime.load(ordering: .relaxed)))
        add("connection.handler_instance_count", String(s.connections.load(ordering: .relaxed)))
        let pools = node.peers.settings
        add("connection.pool_maxlength", String(pools.poolMaxlength.load(ordering: .relaxed)))
        add("connection.pool_expire_time", String(pools.poolExpireTime.load(ordering: .relaxed)))
        add("connection.EMpool_maxlength", String(pools.emPoolMaxlength.load(ordering: .relaxed)))
        add("connection.EMpool_expire_time", String(pools.emPoolExpireTime.load(ordering: .relaxed)))
        add("dns_caching", node.peers.addresses.isOn ? "true" : "false")
        return l
    }
}
