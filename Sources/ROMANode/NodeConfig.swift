import ROMAProtocol
import ROMAStorage
import Yams

/// Everything a node is started with: ROMA's `config.rb` settings (spec R9.1) that apply to a
/// node, plus this port's own. Filled from defaults, then a config file, then command-line flags.
public struct NodeConfig: Sendable {
    /// The positional address (`localhost`, `127.0.0.1`, …).
    public var address: String = "localhost"
    /// Listening port (`DEFAULT_PORT`).
    public var port: Int = 12000
    /// Cluster name (`DEFAULT_NAME`); `whoami` returns it.
    public var name: String = "ROMA"
    /// Address to bind; defaults to `address`.
    public var bindHost: String?
    /// `STORAGE_CLASS`: TokyoCabinet (`tc`) or in-memory (`memory`).
    public var storage: EngineKind = .tokyoCabinet(TCOptions())
    /// `STORAGE_PATH`: the parent of `<address>_<port>/<hash>/`.
    public var storagePath: String = "."
    /// `STORAGE_DIVNUM`.
    public var divnum: Int = 10
    /// `LOG_LEVEL`: trace, debug, info, notice, warning, error, critical.
    public var logLevel: String = "info"
    /// `LOG_PATH`: a daemon (`-d`) logs to `<LOG_PATH>/<node id>.log`, as ROMA; in the foreground logs go to stderr.
    public var logPath: String = "."
    /// `RTTABLE_PATH`, shown by `stat`.
    public var routingPath: String = "."
    /// `WRITEBEHIND_PATH`, shown by `stat`.
    public var writeBehindPath: String = "./wb"
    /// `STORAGE_DELMARK_EXPTIME`.
    public var delmarkExptime: Int = 432_000
    /// `STORAGE_CLEAN_UP_INTERVAL`.
    public var cleanUpInterval: Int = 300
    /// `CONNECTION_DESCRIPTOR_TABLE_SIZE`, shown by `stat`.
    public var descriptorTableSize: Int = 4096  // the open-file limit is raised to it at start
    /// Event-loop threads (0 = one per core).
    public var threads: Int = 0
    /// Protocol limits (key length, value size, line length).
    public var limits = ProtocolLimits()
    /// Seconds a half-received data block may wait before the connection is closed (R3.2).
    public var dataReadTimeout: Double = 10
    /// Test hook: milliseconds the flush and cache-cleaning processes wait before working, so that
    /// tests can observe (and kill the node in) `safecopy_flushing` and `cachecleaning`.
    /// Set from the environment variable `ROMAD_TEST_SAFECOPY_DELAY_MS`; 0 in production.
    public var safecopyTestDelayMs: Int = 0
    /// Test hook: µs a seed's purge sleeps after each batch of 32 records instead of the default,
    /// so that a test can copy vnodes to the node while the purge runs. From the environment
    /// variable `ROMAD_TEST_SEED_PURGE_PAUSE_US`; nil in production.
    public var seedPurgePauseTestUs: UInt32?
    /// Test hook: milliseconds the start-up pauses right after the socket is bound, so that a test
    /// can talk to a node in that moment. From the environment variable
    /// `ROMAD_TEST_AFTER_BIND_PAUSE_MS`; 0 in production.
    public var afterBindTestPauseMs: Int = 0
    /// `--replication_in_host`: replicas may share a host (node ids with the same address).
    public var replicationInHost = false
    /// `--disabled_cmd_protect`: serve data commands before every peer has answered (R3.7).
    public var disabledCmdProtect = false
    /// Seconds a request to another node (forward, replica write, probe) may take.
    public var peerTimeout: Double = 5
    /// Seconds between retries of a replica write that failed (doubling up to 10×).
    public var replicationRetryInterval: Double = 0.2
    /// Bytes of replica writes a node keeps for retry per peer before it drops the oldest.
    public var replicationQueueBytes: Int = 256 << 20
    /// `REDUNDANT_ZREDUNDANT_SIZE`: replica values above this many bytes travel zlib-compressed.
    public var zredundantSize: Int = 0
    /// `VNODE_COPY_BANDWIDTH`: bytes per second all vnode copies leaving this node may stream
    /// together (join, recover, release, balance); 0 = unlimited (the default: on loopback
    /// the receiver's storage is the limit).
    public var copyBandwidth: Int = 0
    /// `VNODE_COPY_PARALLELISM`: vnode copies this node sends at once, and asks for at once when
    /// it joins or recovers.
    public var copyParallelism: Int = 2
    /// `JOIN_FILE_SEED` (`auto`, `true`, `false`): a joining node with empty TokyoCabinet storage
    /// takes the division files of one romad peer as they are (plus the writes made meanwhile)
    /// instead of streaming its vnodes record by record. `auto` (the default) does so when the
    /// files would arrive sooner than the records (`Node.seedPays`); vnodes the seed does not
    /// cover, and joins into Ruby ROMA nodes, are copied as records (docs/cluster.md,
    /// "File-level seeding").
    public var joinFileSeed: JoinFileSeed = .auto
    public enum JoinFileSeed: String, Sendable {
        case auto, always = "true", never = "false"
    }
    /// `VNODE_INDEX_MEMORY`: bytes the vnode indexes of one hash may hold (keys by vnode, built
    /// for vnode copies and dropped 30–60 s after the last); beyond it a division's copies read
    /// the division instead. 0: no index.
    public var vnodeIndexMemory: Int = HashStorage.defaultVnodeIndexMemory
    /// Seconds between failure probes of every peer (R5.6).
    public var failoverProbeInterval: Double = 1
    /// `ROUTING_FAIL_CNT_THRESHOLD`: failed probes in a row after which a node leaves. 3 with 1 s
    /// probes finds a dead node within 5 s (ROMA's 15 took 15 s and more).
    public var failThreshold: Int = 3
    /// `ROUTING_FAIL_CNT_GAP`: seconds a failure must follow the previous one of the same node to count.
    public var failGap: Double = 0
    /// `DEFAULT_LOST_ACTION`: `auto_assign`, `no_action` or `shutdown`.
    public var lostAction: String = "auto_assign"
    /// Seconds between routing-table comparisons with the preceding node (R5.13; ROMA: 10).
    public var routingSyncInterval: Double = 10
    /// `AUTO_RECOVER`: after a leave that left vnodes short, `recover` runs by itself once the
    /// routing has been quiet for `autoRecoverTime` seconds (R5.10).
    public var autoRecover = false
    public var autoRecoverTime = 1800
    /// `RTTABLE_SUB_NID`: node ids rewritten for clients of some subnets (`SubNidTable`).
    var subNid = SubNidTable()
    /// `CONNECTION_CONTINUOUS_LIMIT` (R3.6): `start:rate:full`. Without one, memcached's
    /// `maxconns` (1024): every client command over it is the connection's last (issue #10:
    /// memcached's clients must not see ROMA's random closes from 200 connections on). ROMA's
    /// `config.rb` sets ROMA's `200:30:300`.
    public var continuousLimit = RuntimeSettings.defaultContinuousLimit
    /// `CONNECTION_EXPTIME` (R3.6): idle accepted connections are closed after it; 0 = never.
    public var connectionExpireTime = 0
    /// `CONNECTION_POOL_MAX` / `CONNECTION_POOL_EXPTIME`: idle exclusive peer connections kept
    /// per peer and event loop, and for how long (seconds).
    public var poolMaxlength = 5
    public var poolExpireTime = 30
    /// `CONNECTION_EMPOOL_MAX` / `CONNECTION_EMPOOL_EXPTIME`: exclusive peer connections open at
    /// once per peer and event loop; the pipelined peer connection closes after this long idle.
    public var emPoolMaxlength = 15
    public var emPoolExpireTime = 30
    /// `LOG_SHIFT_SIZE` / `LOG_SHIFT_AGE`: log file rotation (daemon mode).
    public var logShiftSize = 10_485_760
    public var logShiftAge = "10"
    /// `WB_COMMAND_MAP` / `WRITEBEHIND_SHIFT_SIZE`: write-behind (R10.1) of these operations.
    public var wbCommandMap: [(String, Int)] = []
    public var writeBehindShiftSize = 10_485_760
    /// `DATACOPY_STREAM_COPY_WAIT_PARAM`: pause (seconds) after each 64 KiB chunk of a vnode copy.
    public var streamCopyWaitParam: Double = 0
    /// `-j host:port`: this node joined the cluster through that node at start.
    public var joinSeed: String?
    /// Path of the config file, if one was read.
    public var configPath: String?

    public init() {}

    /// The node id, `<address>_<port>` (R1.1).
    public var nodeID: String { "\(address)_\(port)" }

    /// The directory holding this node's hash directories.
    public var nodeDirectory: String { FileSystem.absolute("\(storagePath)/\(nodeID)") }

    /// Applies a config file: ROMA's own `config.rb` (its constant assignments, `RubyConfig`), or
    /// YAML (or JSON) whose keys are ROMA's constant names (`STORAGE_DIVNUM`, `STORAGE_PATH`, …)
    /// or their lower-case forms; see README for the list.
    public mutating func apply(configFile path: String) throws {
        guard let text = FileSystem.readText(path) else { throw ConfigError("cannot read config file \(path)") }
        configPath = FileSystem.absolute(path)
        if RubyConfig.looksLikeRuby(path: path, text: text) {
            for a in RubyConfig.assignments(in: text) {
                guard let node = a.value.yamlNode else {
                    if case .unreadable(let src) = a.value, uses(setting: a.name) {
                        throw ConfigError("\(path):\(a.line): cannot evaluate \(a.name) = \(src) (romad reads literals, symbols, constant names, arrays and integer arithmetic in config.rb)")
                    }
                    continue
                }
                try apply(key: a.name, value: node, file: "\(path):\(a.line)")
            }
            return
        }
        let node: Yams.Node?
        do { node = try Yams.compose(yaml: text) } catch { throw ConfigError("\(path): not valid YAML: \(error)") }
        guard let mapping = node?.mapping else {
            if node == nil { return }
            throw ConfigError("\(path): expected a mapping of setting names to values")
        }
        for (k, v) in mapping {
            guard let key = k.string else { continue }
            try apply(key: key, value: v, file: path)
        }
    }

    /// Whether `apply(key:value:file:)` uses the setting `name` (it ignores ROMA's others).
    private func uses(setting name: String) -> Bool {
        var probe = self
        return (try? probe.apply(key: name, value: Yams.Node(""), file: "")) ?? true
    }

    /// Applies one setting; false when this node does not use it (accepted and ignored).
    @discardableResult
    private mutating func apply(key: String, value: Yams.Node, file: String) throws -> Bool {
        let k = key.uppercased()
        func str() throws -> String {
            guard let s = value.string else { throw ConfigError("\(file): \(key) must be a string") }
            return s.hasPrefix(":") ? String(s.dropFirst()) : s
        }
        func int() throws -> Int {
            guard let i = value.int else { throw ConfigError("\(file): \(key) must be an integer") }
            return i
        }
        switch k {
        case "VERSION":
            let v = try str()
            guard v == "1.3.0" else { throw ConfigError("ROMA FAIL TO BOOT! : config.rb's version is differ from current ROMA version.") }
        case "DEFAULT_PORT", "PORT": port = try int()
        case "DEFAULT_NAME", "NAME": name = try str()
        case "ADDRESS": address = try str()
        case "BIND", "BIND_HOST": bindHost = try str()
        case "STORAGE_CLASS", "STORAGE":
            storage = try NodeConfig.engine(named: try str(), options: storage)
        case "STORAGE_PATH": storagePath = try str()
        case "STORAGE_DIVNUM", "DIVNUM": divnum = try int()
        case "STORAGE_OPTION":
            let o = try TCOptions(parsing: try str())
            if case .tokyoCabinet = storage { storage = .tokyoCabinet(o) }
        case "LOG_LEVEL": logLevel = try str()
        case "LOG_PATH": logPath = try str()
        case "RTTABLE_PATH": routingPath = try str()
        case "WRITEBEHIND_PATH": writeBehindPath = try str()
        case "STORAGE_DELMARK_EXPTIME": delmarkExptime = try int()
        case "STORAGE_CLEAN_UP_INTERVAL": cleanUpInterval = try int()
        case "CONNECTION_DESCRIPTOR_TABLE_SIZE": descriptorTableSize = try int()
        case "THREADS": threads = try int()
        case "MAX_KEY_LENGTH": limits.maxKeyLength = try int()
        case "MAX_VALUE_SIZE": limits.maxValueSize = try int()
        case "MAX_LINE_LENGTH": limits.maxLineLength = try int()
        case "DATA_READ_TIMEOUT": dataReadTimeout = Double(try int())
        case "PEER_TIMEOUT":
            guard let v = value.float ?? value.int.map(Double.init), v > 0 else { throw ConfigError("\(file): PEER_TIMEOUT must be a positive number of seconds") }
            peerTimeout = v
        case "REPLICATION_QUEUE_BYTES": replicationQueueBytes = try int()
        case "REDUNDANT_ZREDUNDANT_SIZE": zredundantSize = try int()
        case "VNODE_COPY_BANDWIDTH":
            let v = try int()
            guard v >= 0 else { throw ConfigError("\(file): VNODE_COPY_BANDWIDTH must be 0 (unlimited) or bytes per second") }
            copyBandwidth = v
        case "VNODE_COPY_PARALLELISM":
            let v = try int()
            guard (1...64).contains(v) else { throw ConfigError("\(file): VNODE_COPY_PARALLELISM must be 1...64") }
            copyParallelism = v
        case "JOIN_FILE_SEED":
            let v = value.bool.map { $0 ? "true" : "false" } ?? (try? str())
            guard let v, let mode = JoinFileSeed(rawValue: v) else { throw ConfigError("\(file): JOIN_FILE_SEED must be auto, true or false") }
            joinFileSeed = mode
        case "VNODE_INDEX_MEMORY":
            let v = try int()
            guard v >= 0 else { throw ConfigError("\(file): VNODE_INDEX_MEMORY must be 0 (no index) or bytes") }
            vnodeIndexMemory = v
        case "ROUTING_FAIL_CNT_THRESHOLD": failThreshold = try int()
        case "AUTO_RECOVER":
            guard let b = value.bool else { throw ConfigError("\(file): AUTO_RECOVER must be true or false") }
            autoRecover = b
        case "AUTO_RECOVER_TIME": autoRecoverTime = max(1, try int())
        case "ROUTING_FAIL_CNT_GAP": failGap = try value.float ?? Double(int())
        case "RTTABLE_SUB_NID":
            // { "<netmask>" => { :regexp => "<from>", :replace => "<to>" }, … }
            guard let m = value.mapping else { throw ConfigError("\(file): RTTABLE_SUB_NID must map netmasks to {regexp, replace}") }
            var t = SubNidTable()
            for (k, v) in m {
                let rule = v.mapping.map { r in
                    { (name: String) in r.first { ($0.key.string ?? "").trimmingPrefix(":") == name }?.value.string }
                }
                guard let mask = k.string, let from = rule?("regexp"), let to = rule?("replace") else {
                    throw ConfigError("\(file): RTTABLE_SUB_NID entries must be \"<netmask>\" => {regexp: \"…\", replace: \"…\"}")
                }
                t.add(mask: mask, pattern: from, replacement: to)
            }
            subNid = t
        case "CONNECTION_CONTINUOUS_LIMIT":
            let v = try str()
            guard RuntimeSettings.parseContinuousLimit(v) != nil else { throw ConfigError("config parse error : Config::CONNECTION_CONTINUOUS_LIMIT (\(file))") }
            continuousLimit = v
        case "CONNECTION_EXPTIME": connectionExpireTime = max(0, try int())
        case "CONNECTION_POOL_MAX":
            poolMaxlength = try int()
            guard poolMaxlength >= 1 else { throw ConfigError("\(file): CONNECTION_POOL_MAX must be at least 1") }
        case "CONNECTION_POOL_EXPTIME": poolExpireTime = max(0, try int())
        case "CONNECTION_EMPOOL_MAX":
            emPoolMaxlength = try int()
            guard emPoolMaxlength >= 1 else { throw ConfigError("\(file): CONNECTION_EMPOOL_MAX must be at least 1") }
        case "CONNECTION_EMPOOL_EXPTIME": emPoolExpireTime = max(0, try int())
        case "LOG_SHIFT_SIZE":
            logShiftSize = try int()
            guard logShiftSize >= 1 else { throw ConfigError("\(file): LOG_SHIFT_SIZE must be at least 1") }
        case "LOG_SHIFT_AGE":
            let v = try value.int.map(String.init) ?? str()
            guard LogRotation.Age(v) != nil else { throw ConfigError("\(file): LOG_SHIFT_AGE must be a count of files or min, hour, daily, weekly, monthly") }
            logShiftAge = v
        case "WB_COMMAND_MAP":
            // { :set => 1, :delete => 3 } (config.rb) or a YAML mapping
            guard let m = value.mapping else { throw ConfigError("\(file): WB_COMMAND_MAP must map operation names to codes") }
            wbCommandMap = try m.map { k, v in
                guard let name = k.string, let code = v.int else { throw ConfigError("\(file): WB_COMMAND_MAP must map operation names to codes") }
                return (name.hasPrefix(":") ? String(name.dropFirst()) : name, code)
            }
        case "WRITEBEHIND_SHIFT_SIZE":
            writeBehindShiftSize = try int()
            guard writeBehindShiftSize >= 1 else { throw ConfigError("\(file): WRITEBEHIND_SHIFT_SIZE must be at least 1") }
        case "DATACOPY_STREAM_COPY_WAIT_PARAM":
            guard let v = value.float ?? value.int.map(Double.init), v >= 0 else { throw ConfigError("\(file): DATACOPY_STREAM_COPY_WAIT_PARAM must be seconds ≥ 0") }
            streamCopyWaitParam = v
        case "DEFAULT_LOST_ACTION":
            let v = try str()
            guard ["auto_assign", "no_action", "shutdown"].contains(v) else {
                throw ConfigError("\(file): DEFAULT_LOST_ACTION must be auto_assign, no_action or shutdown")
            }
            lostAction = v
        default:
            // ROMA settings this node does not use (cluster, write-behind, …) are accepted and ignored.
            return false
        }
        return true
    }

    /// Maps `tc`, `memory` and ROMA's class names to an engine.
    public static func engine(named name: String, options: EngineKind) throws -> EngineKind {
        let n = name.split(separator: ":").last.map(String.init) ?? name
        switch n.lowercased() {
        case "tc", "tcstorage", "tokyocabinet":
            if case .tokyoCabinet = options { return options }
            return .tokyoCabinet(TCOptions())
        case "memory", "rubyhashstorage", "hash", "tcmemstorage":
            return .memory
        default:
            throw ConfigError("unknown storage '\(name)': use tc (TCStorage) or memory (RubyHashStorage)")
        }
    }

    /// Checks the settings for values that cannot work.
    public func validate() throws {
        guard (0...65535).contains(port) else { throw ConfigError("Port number is out of range: \(port)") }
        guard divnum > 0 && divnum <= 1024 else { throw ConfigError("divnum must be between 1 and 1024, got \(divnum)") }
        guard limits.maxKeyLength > 0, limits.maxValueSize >= 0, limits.maxLineLength >= 1024 else {
            throw ConfigError("protocol limits must be positive (max line length at least 1024)")
        }
    }
}

/// A configuration problem, reported to the operator at start-up.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
