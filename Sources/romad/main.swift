import ArgumentParser
import Dispatch
import Logging
import ROMANode
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// `romad`: starts one ROMA node (spec R9.2, plus this port's storage flags).
struct Romad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "romad",
        abstract: "Start a ROMA node (memcached text protocol, TokyoCabinet division storage).",
        helpNames: [.long, .customShort("h")]
    )

    @Argument(help: "Address of this node; the node id is <address>_<port>.")
    var address: String?

    @Option(name: [.customShort("p"), .long], help: "Listening port (default 12000).")
    var port: String?

    @Option(name: [.customShort("n"), .long], help: "Cluster name returned by whoami (default ROMA).")
    var name: String?

    @Option(name: .long, help: "Config file: ROMA's config.rb, or YAML with its setting names (STORAGE_DIVNUM, STORAGE_PATH, ...).")
    var config: String?

    @Option(name: .long, help: "Storage engine: tc (TokyoCabinet files) or memory.")
    var storage: String?

    @Option(name: .customLong("storage-path"), help: "Parent directory of <address>_<port>/<hash>/ (default .).")
    var storagePath: String?

    @Option(name: .long, help: "Number of division files per hash (default 10).")
    var divnum: Int?

    @Option(name: .customLong("storage-option"), help: "TokyoCabinet tuning, e.g. 'bnum=5000000#xmsiz=67108864#opts=l'.")
    var storageOption: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(name: .long, help: "Event-loop threads (default: one per core).")
    var threads: Int?

    @Option(name: .customLong("max-value-size"), help: "Largest value in bytes (default 1048576).")
    var maxValueSize: Int?

    @Flag(name: [.customShort("d"), .long], help: "Run as a daemon: detach, log to <LOG_PATH>/<address>_<port>.log (LOG_PATH of the config file, default .).")
    var daemon = false

    @Option(name: [.customShort("j"), .long], help: "Join the cluster of the node at <address:port> (R5.4): take a share of the vnodes, then serve.")
    var join: String?

    @Flag(name: .long, help: "Accepted for compatibility.")
    var verbose = false

    @Flag(name: .customLong("replication_in_host"), help: "Allow replicas of a vnode on one host (node ids with the same address).")
    var replicationInHost = false

    @Flag(name: .customLong("enabled_repeathost"), help: "Deprecated alias of --replication_in_host.")
    var enabledRepeathost = false

    @Flag(name: .customLong("disabled_cmd_protect"), help: "Serve data commands before every node of the routing table has answered.")
    var disabledCmdProtect = false

    @Option(name: .customLong("rttable-path"), help: "Directory of <address>_<port>.route and its logs (RTTABLE_PATH, default .).")
    var rttablePath: String?

    @Option(name: .customLong("peer-timeout"), help: "Seconds a request to another node may take (default 5).")
    var peerTimeout: Double?

    @Option(name: .customLong("copy-bandwidth"), help: ArgumentHelp("MB/s all vnode copies leaving this node may stream together (VNODE_COPY_BANDWIDTH in bytes/s; default 0 = unlimited).", valueName: "MB/s"))
    var copyBandwidth: Double?

    @Option(name: .customLong("copy-parallelism"), help: "Vnode copies sent, and asked for, at once (VNODE_COPY_PARALLELISM, default 2).")
    var copyParallelism: Int?

    @Option(name: .customLong("join-file-seed"), help: "auto|true|false. With -j and empty TokyoCabinet storage: take a romad peer's division files whole, then the writes made meanwhile, instead of copying vnodes record by record; auto when that is faster (JOIN_FILE_SEED, default auto).")
    var joinFileSeed: String?

    @Option(name: .customLong("vnode-index-memory"), help: ArgumentHelp("MB the vnode indexes of one hash may hold while vnode copies run (VNODE_INDEX_MEMORY in bytes; default 1024; 0 = no index, each copy reads its division).", valueName: "MB"))
    var vnodeIndexMemory: Double?

    @Option(name: .customLong("fail-cnt-threshold"), help: "Failed probes in a row after which a node leaves (ROUTING_FAIL_CNT_THRESHOLD, default 3).")
    var failCntThreshold: Int?

    @Option(name: .customLong("probe-interval"), help: "Seconds between failure probes of every other node (default 1).")
    var probeInterval: Double?

    @Option(name: .customLong("routing-sync-interval"), help: "Seconds between routing-table comparisons with the preceding node (default 10).")
    var routingSyncInterval: Double?

    @Flag(name: [.customShort("v"), .long], help: "Print the version.")
    var version = false

    mutating func run() throws {
        if version {
            print("romad.rb 1.3.0")
            return
        }
        guard let address else { throw ValidationError("Missing expected argument '<address>'") }
        var cfg = NodeConfig()
        if let config { try cfg.apply(configFile: config) }
        cfg.address = address
        if let port {
            guard let p = Int(port) else { throw ValidationError("Port number is not numeric.") }
            cfg.port = p
        }
        if let name { cfg.name = name }
        if let storage { cfg.storage = try NodeConfig.engine(named: storage, options: cfg.storage) }
        if let storageOption {
            let o = try TCOptions(parsing: storageOption)
            guard case .tokyoCabinet = cfg.storage else { throw ValidationError("--storage-option applies to the tc engine only") }
            cfg.storage = .tokyoCabinet(o)
        }
        if let storagePath { cfg.storagePath = storagePath }
        if let divnum { cfg.divnum = divnum }
        if let logLevel { cfg.logLevel = logLevel }
        if let threads { cfg.threads = threads }
        if let rttablePath { cfg.routingPath = rttablePath }
        if let peerTimeout {
            guard peerTimeout > 0 else { throw ValidationError("--peer-timeout must be positive") }
            cfg.peerTimeout = peerTimeout
        }
        if replicationInHost || enabledRepeathost { cfg.replicationInHost = true }
        if let copyBandwidth {
            guard copyBandwidth >= 0, copyBandwidth < 1e9 else { throw ValidationError("--copy-bandwidth must be 0 (unlimited) or MB/s") }
            cfg.copyBandwidth = Int(copyBandwidth * 1_000_000)
        }
        if let joinFileSeed {
            guard let mode = NodeConfig.JoinFileSeed(rawValue: joinFileSeed) else { throw ValidationError("--join-file-seed must be auto, true or false") }
            cfg.joinFileSeed = mode
        }
        if let copyParallelism {
            guard (1...64).contains(copyParallelism) else { throw ValidationError("--copy-parallelism must be 1...64") }
            cfg.copyParallelism = copyParallelism
        }
        if let vnodeIndexMemory {
            guard vnodeIndexMemory >= 0, vnodeIndexMemory < 1e9 else { throw ValidationError("--vnode-index-memory must be 0 (no index) or MB") }
            cfg.vnodeIndexMemory = Int(vnodeIndexMemory * 1_048_576)
        }
        if let failCntThreshold {
            guard failCntThreshold > 0 else { throw ValidationError("--fail-cnt-threshold must be positive") }
            cfg.failThreshold = failCntThreshold
        }
        if let probeInterval {
            guard probeInterval > 0 else { throw ValidationError("--probe-interval must be positive") }
            cfg.failoverProbeInterval = probeInterval
        }
        if let routingSyncInterval {
            guard routingSyncInterval > 0 else { throw ValidationError("--routing-sync-interval must be positive") }
            cfg.routingSyncInterval = routingSyncInterval
        }
        if disabledCmdProtect { cfg.disabledCmdProtect = true }
        if let maxValueSize { cfg.limits.maxValueSize = maxValueSize }
        if let d = getenv("ROMAD_TEST_SAFECOPY_DELAY_MS").map({ String(cString: $0) }), let ms = Int(d) { cfg.safecopyTestDelayMs = ms }
        if let d = getenv("ROMAD_TEST_SEED_PURGE_PAUSE_US").map({ String(cString: $0) }), let us = UInt32(d) { cfg.seedPurgePauseTestUs = us }
        if let d = getenv("ROMAD_TEST_AFTER_BIND_PAUSE_MS").map({ String(cString: $0) }), let ms = Int(d) { cfg.afterBindTestPauseMs = ms }
        if let join {
            let nid = join.replacingFirstColon()
            guard nid.contains("_"), let last = nid.split(separator: "_").last, Int(last) != nil else {
                throw ValidationError("[address:port] can not parse.")
            }
            cfg.joinSeed = nid
        }
        guard let level = RuntimeLogLevel.parse(cfg.logLevel) else {
            throw ValidationError("unknown log level '\(cfg.logLevel)': use trace, debug, info, notice, warning, error or critical")
        }
        if daemon {
            // As ROMA: a daemon logs to <LOG_PATH>/<node id>.log (appended). The file is opened
            // before detaching so that a path that cannot be written is reported, not lost.
            let logFile = FileSystem.absolute("\(cfg.logPath)/\(cfg.nodeID).log")
            let logFD = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard logFD >= 0 else { throw ValidationError("cannot open the log file \(logFile): \(String(cString: strerror(errno)))") }
            guard Glibc.daemon(1, 1) == 0 else { throw ValidationError("cannot daemonize: \(String(cString: strerror(errno)))") }
            let null = open("/dev/null", O_RDONLY)
            if null >= 0 { dup2(null, 0); close(null) }
            dup2(logFD, 1)
            dup2(logFD, 2)
            close(logFD)
            LogRotation.configure(path: logFile, size: cfg.logShiftSize, age: cfg.logShiftAge)
        } else {
            LogRotation.configure(path: nil, size: cfg.logShiftSize, age: cfg.logShiftAge)
        }
        let started = monotonicSeconds()
        let nodeID = cfg.nodeID
        RuntimeLogLevel.set(level)
        LoggingSystem.bootstrap { label in RuntimeLevelLogHandler(label: label) }
        var logger = Logger(label: "romad")
        logger[metadataKey: "node"] = .string(nodeID)

        // Signals are blocked in every thread (all threads are created after this point and inherit
        // the mask) and taken by one waiting thread, so a SIGTERM that arrives at any moment —
        // even during start-up — is queued, never lost and never fatal.
        let trigger = ShutdownTrigger()
        var signals = sigset_t()
        sigemptyset(&signals)
        for sig in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, sig) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)
        let waitSet = signals
        DispatchQueue.global().async {
            var set = waitSet
            while true {
                var sig: Int32 = 0
                guard sigwait(&set, &sig) == 0 else { continue }
                trigger.fire(sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP")
            }
        }

        if let seed = JoinPreparation.rejoinSeed(config: cfg, log: { logger.notice("\($0)") }) {
            logger.notice("memory storage: nothing of this node's vnodes survived the restart; joining again through \(seed)")
            cfg.joinSeed = seed
        }
        if let seed = cfg.joinSeed {
            do {
                try JoinPreparation.prepare(config: cfg, seed: seed)
                logger.notice("joined the cluster through \(seed): every node answered ADDED")
            } catch {
                logger.critical("\(error)")
                throw ExitCode(1)
            }
        }
        let node: Node
        do {
            node = try Node(config: cfg, logger: logger)
        } catch {
            logger.critical("cannot open storage: \(error)")
            throw ExitCode(1)
        }
        do {
            try node.start()
        } catch {
            logger.critical("cannot listen on \(cfg.bindHost ?? cfg.address):\(cfg.port): \(error)")
            node.shutdown(reason: "start-up failed")
            node.waitUntilStopped()
            throw ExitCode(1)
        }
        logger.info("ready in \(Int((monotonicSeconds() - started) * 1000)) ms")
        trigger.attach(node)
        node.waitUntilStopped()
        logger.info("stopped")
    }
}

/// Delivers a shutdown signal to the node, remembering one that arrives before the node exists.
final class ShutdownTrigger: @unchecked Sendable {
    // @unchecked Sendable: both fields are only accessed with `lock` held.
    private let lock = PthreadMutex()
    private var node: Node?
    private var pending: String?

    func attach(_ n: Node) {
        let reason = lock.withLock { () -> String? in
            node = n
            return pending
        }
        if let reason { n.shutdown(reason: reason) }
    }

    func fire(_ reason: String) {
        let n = lock.withLock { () -> Node? in
            if node == nil { pending = reason }
            return node
        }
        n?.shutdown(reason: reason)
    }
}

extension String {
    /// ROMA replaces the first `:` of `host:port` by `_` (R1.1).
    func replacingFirstColon() -> String {
        guard let i = firstIndex(of: ":") else { return self }
        var s = self
        s.replaceSubrange(i...i, with: "_")
        return s
    }
}

Romad.main()
