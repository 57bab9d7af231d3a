import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ROMAProtocol
import ROMARouting
import ROMAStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A ROMA node: the storages of its hash names, its routing table, the listening socket and
/// the background processes (flush, cache cleaning). One per `romad` process.
public final class Node: Sendable {
    public let config: NodeConfig
    public let logger: Logger
    /// Node id `<address>_<port>`.
    public let nodeID: String
    let space: VnodeSpace
    let divisionMap: DivisionMap
    /// The routing table, its log and the request path's snapshot of it.
    let routes: RouteState
    /// A copy of the current routing table.
    var routing: RoutingTable { routes.table }
    /// Connections to the other nodes (forwarding, replica writes, probes).
    let peers: PeerClient
    /// Replica writes and their retry queues (R5.2).
    let replicator: Replicator
    /// Data commands are served (R3.7): every node answered `whoami`, or `forcedly_start`, or
    /// `--disabled_cmd_protect`, or this node is alone in its table.
    let serving = Atomic<Bool>(false)
    /// Failure detection (R5.6) and its settings.
    let failover: FailureDetector
    /// Failover was switched on once the node started serving.
    let failureDetectorArmed = Atomic<Bool>(false)
    /// A routing sync (R5.13) is running.
    let routingSyncRunning = Atomic<Bool>(false)
    /// Vnode copies this node is sending (R5.8).
    let transfers = NIOLockedValueBox(TransferState())
    /// Paces those copies to `config.copyBandwidth`.
    let copyPacer: CopyPacer
    /// The recover process runs (R5.10).
    let recovering = Atomic<Bool>(false)
    /// The join process runs (R5.4), or balance (R5.12).
    let joining = Atomic<Bool>(false)
    /// The release process runs (R5.11).
    let releasing = Atomic<Bool>(false)
    /// Auto-recover (R5.10): on/off, delay, status (`waiting|preparing|executing`), generation.
    let autoRecover = NIOLockedValueBox(AutoRecoverState())

    struct AutoRecoverState {
        var enabled = false
        var seconds = 1800
        var status = "waiting"
        var generation = 0
    }
    /// `spushv_protection`: incoming vnode streams are refused.
    let spushvProtection = Atomic<Bool>(false)
    /// `set_hilatency_warn_time`: seconds (a Double's bits) after which a reply is logged as slow.
    let hilatencyWarnTime = Atomic<UInt64>((5.0).bitPattern)
    /// `set_spushv_klength_warn` / `set_spushv_vlength_warn`: streamed keys and values longer
    /// than these are logged.
    let spushvKlengthWarn = Atomic<Int>(1024)
    let spushvVlengthWarn = Atomic<Int>(1_048_576)
    /// `RTTABLE_SUB_NID`: node ids as clients of some subnets see them (`SubNidTable`).
    let subNid: NIOLockedValueBox<SubNidTable>
    /// The other settings ROMA's setter commands change at run time.
    let settings: RuntimeSettings
    /// `set_cleanup_regexp`: per hash, the pattern whose keys the next clean-up pass lists.
    let cleanupRegexps = NIOLockedValueBox<[String: String]>([:])
    /// `set_cleanup_regexp` stops a clean-up pass that is running (ROMA's `stop_clean_up`).
    let cleanUpStop = Atomic<Bool>(false)
    /// Write-behind of this node's primary writes (R10.1).
    let writeBehind: WriteBehind
    /// Cluster replication of this node's primary writes (R10.2).
    let clusterReplication: ClusterReplication

    struct TransferState {
        var running = 0
        var vnodes = Set<UInt64>()
    }
    /// Nodes that answered the serving probe of `reqpushv … true`, and when (probed again after 60 s).
    let servingPeers = NIOLockedValueBox<[String: Double]>([:])
    /// Copies this node asked for (`requestCopy`) and when, and the vnodes pushed here unasked
    /// that the primary is to stream again (`restreamFromPrimary`).
    let pulls = NIOLockedValueBox(PullState())
    /// Vnodes a file seed brought records of without this node owning them, while the purge of
    /// those records runs: copies of them to this node are refused until it is over.
    let seedPurge = NIOLockedValueBox<Set<UInt64>>([])
    /// Divisions (`"<hash> <division>"`) a file seed sends or waits to send, with how many
    /// seeds do: `set_storage_status … safecopy` waits for them instead of refusing.
    let seedSends = NIOLockedValueBox<[String: Int]>([:])
    struct PullState {
        var asked: [UInt64: Double] = [:]
        /// When a stream of the vnode last ended here (`STORED`).
        var received: [UInt64: Double] = [:]
        /// Vnodes pushed here unasked, with when their `setroute` came.
        var restream = CircularBuffer<(vn: UInt64, since: Double)>()
        var draining = false
        /// Vnodes of which this node is primary, to stream again to a node another's copy added.
        var push = CircularBuffer<(vn: UInt64, target: String)>()
        var pushing = false
        /// Streams again waiting or running, both ways (`stats.vnode_restreams`).
        var restreamsLeft: Int { restream.count + (draining ? 1 : 0) + push.count + (pushing ? 1 : 0) }
    }
    let stats: NodeStats
    let group: MultiThreadedEventLoopGroup
    /// Threads for slow work that must not run on an event loop (flush, cache merge, flush_all).
    let pool: NIOThreadPool
    /// Threads that store the records of incoming vnode streams (`spushv`). Separate from `pool`,
    /// whose threads may block for minutes in a vnode copy or a recover waiting for the other
    /// side's stream to be stored: applying that stream must never queue behind them.
    let streamPool: NIOThreadPool
    private let storages: NIOLockedValueBox<[String: HashStorage]>
    /// Bumped whenever a hash is mounted or unmounted, so connections can cache storage lookups.
    let storageVersion = Atomic<Int>(0)
    /// Hash names in mount order (ROMA lists them in insertion order).
    private let mountOrder = NIOLockedValueBox<[String]>([])
    private let state = NIOLockedValueBox(RunState())
    private let stopped: EventLoopPromise<Void>

    struct RunState {
        var server: Channel?
        var connections: [ObjectIdentifier: Channel] = [:]
        var shuttingDown = false
    }

    /// Opens the storages (taking their locks) and prepares the event loops; does not listen yet.
    public init(config: NodeConfig, logger: Logger) throws {
        try config.validate()
        self.config = config
        copyPacer = CopyPacer(bytesPerSecond: config.copyBandwidth)
        self.logger = logger
        nodeID = config.nodeID
        let routeFile = "\(FileSystem.absolute(config.routingPath))/\(config.nodeID).route"
        if FileSystem.exists(routeFile) {
            let table: RoutingTable
            do { table = try RoutingTable.load(path: routeFile) } catch {
                throw ConfigError("cannot load the routing table \(routeFile): \(error)")
            }
            guard table.space == VnodeSpace.standard || table.divBits <= 20 else {
                throw ConfigError("\(routeFile): unsupported geometry dgst_bits=\(table.dgstBits) div_bits=\(table.divBits)")
            }
            routes = try RouteState(table: table, me: config.nodeID, routeFile: routeFile)
        } else {
            routes = try RouteState(table: RoutingTable.singleNode(config.nodeID, rn: 1), me: config.nodeID, routeFile: nil)
        }
        space = routes.table.space
        divisionMap = DivisionMap(space: space, divnum: config.divnum)
        stats = NodeStats(now: UInt32(truncatingIfNeeded: time(nil)))
        stats.sizeOfZredundant.store(max(0, config.zredundantSize), ordering: .relaxed)
        let threads = config.threads > 0 ? config.threads : System.coreCount
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        peers = PeerClient(group: group, timeout: .nanoseconds(Int64(config.peerTimeout * 1e9)),
                           settings: PeerPoolSettings(poolMaxlength: config.poolMaxlength, poolExpireTime: config.poolExpireTime,
                                                      emPoolMaxlength: config.emPoolMaxlength, emPoolExpireTime: config.emPoolExpireTime))
        settings = RuntimeSettings(config: config)
        let replicationLogger = logger
        clusterReplication = ClusterReplication(group: group, log: { replicationLogger.notice("\($0)") })
        writeBehind = WriteBehind(root: FileSystem.absolute(config.writeBehindPath), nodeID: config.nodeID,
                                  shiftSize: config.writeBehindShiftSize, map: config.wbCommandMap)
        autoRecover.withLockedValue { $0.enabled = config.autoRecover; $0.seconds = config.autoRecoverTime }
        subNid = NIOLockedValueBox(config.subNid)
        // CONNECTION_DESCRIPTOR_TABLE_SIZE: at least that many open files (ROMA sets it at start;
        // a limit already higher is kept).
        Node.setOpenFileLimit(config.descriptorTableSize, raiseOnly: true)
        failover = FailureDetector(threshold: config.failThreshold, gap: config.failGap,
                                   lostAction: LostAction(rawValue: config.lostAction) ?? .autoAssign)
        let routesRef = routes
        replicator = Replicator(peers: peers, stats: stats, logger: logger,
                                retryInterval: config.replicationRetryInterval, maxBytes: config.replicationQueueBytes,
                                isMember: { nid in routesRef.table.nodes.contains(nid) })
        pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        streamPool = NIOThreadPool(numberOfThreads: 2)
        streamPool.start()
        stopped = group.next().makePromise()
        storages = NIOLockedValueBox([:])
        do {
            try openStorages()
        } catch {
            stopped.succeed(())
            try? pool.syncShutdownGracefully()
            try? streamPool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    private func openStorages() throws {
        var opened: [String: HashStorage] = [:]
        do {
            switch config.storage {
            case .memory:
                opened["roma"] = try makeStorage("roma")
            case .tokyoCabinet:
                let base = config.nodeDirectory
                try FileSystem.makeDirectories(base)
                var names = FileSystem.list(base).filter { FileSystem.isDirectory("\(base)/\($0)") }
                if names.isEmpty { names = ["roma"] }
                for name in names {
                    let s = try makeStorage(name)
                    opened[name] = s
                    for note in s.openNotes { logger.warning("storage \(name): \(note)") }
                }
            }
        } catch {
            for s in opened.values { try? s.close() }
            throw error
        }
        storages.withLockedValue { $0 = opened }
        mountOrder.withLockedValue { $0 = opened.keys.sorted { a, b in a == "roma" ? b != "roma" : (b == "roma" ? false : a < b) } }
    }

    /// The storage of hash `name`, if mounted.
    @inline(__always) func storage(_ name: String) -> HashStorage? {
        storages.withLockedValue { $0[name] }
    }

    /// The port actually bound (useful with port 0 in tests).
    public var boundPort: Int? { state.withLockedValue { $0.server?.localAddress?.port } }

    /// Result of a hash administration command: the value for the relay hash, or a plain error line.
    enum HashAdminResult: Sendable {
        case value(String)
        case error(String)
    }

    private func makeStorage(_ name: String) throws -> HashStorage {
        let map = divisionMap
        let directory: String?
        if case .memory = config.storage { directory = nil } else { directory = "\(config.nodeDirectory)/\(name)" }
        return try HashStorage(name: name, directory: directory, divnum: config.divnum, engine: config.storage,
                               divisionOf: { map.division(ofVnode: UInt64($0)) }, vnodeIndexMemory: config.vnodeIndexMemory)
    }

    /// `createhash` / `mounthash` (R3.17): open a storage for `name`. Blocking: run off the loop.
    func openHash(_ name: String, mount: Bool) -> HashAdminResult {
        let msg = mount ? "MOUNTED" : "CREATED"
        if mount {
            if storage(name) != nil { return .error("SERVER_ERROR \(name) already mounted.") }
            if case .memory = config.storage { return .error("SERVER_ERROR \(name) does not find.") }
            if !FileSystem.isDirectory("\(config.nodeDirectory)/\(name)") { return .error("SERVER_ERROR \(name) does not find.") }
        } else if storage(name) != nil {
            return .value("SERVER_ERROR \(name) already exists.")
        }
        do {
            let s = try makeStorage(name)
            let added = storages.withLockedValue { m -> Bool in
                guard m[name] == nil else { return false }
                m[name] = s
                return true
            }
            if !added { try? s.close(); return .value("SERVER_ERROR \(name) already exists.") }
            mountOrder.withLockedValue { $0.append(name) }
            storageVersion.add(1, ordering: .releasing)
            logger.info("\(mount ? "mounthash" : "createhash") \(name)")
            return .value(msg)
        } catch {
            logger.error("\(mount ? "mounthash" : "createhash") \(name): \(error)")
            return .value("NOT \(msg)")
        }
    }

    /// `umounthash` / `deletehash` (R3.17): close (and for delete remove) the storage of `name`.
    func closeHash(_ name: String, defaultHash: String, delete: Bool) -> HashAdminResult {
        if !delete && storage(name) == nil { return .error("SERVER_ERROR \(name) does not find.") }
        if defaultHash == name { return .value("SERVER_ERROR default hash can't unmount.") }
        guard let s = storages.withLockedValue({ $0.removeValue(forKey: name) }) else {
            return .value("SERVER_ERROR \(name) does not exists.")
        }
        mountOrder.withLockedValue { $0.removeAll { $0 == name } }
        storageVersion.add(1, ordering: .releasing)
        do { try s.close() } catch { logger.error("closing \(name): \(error)") }
        if delete, let dir = s.directory { FileSystem.removeTree(dir) }
        logger.info("\(delete ? "deletehash" : "umounthash") \(name)")
        return .value(delete ? "DELETED" : "UNMOUNTED")
    }

    /// Mounted hash names in mount order (`roma` first at boot).
    var hashNames: [String] { mountOrder.withLockedValue { $0 } }

    /// Binds the listening socket. Data commands are served as soon as this returns.
    public func start() throws {
        let host = config.bindHost ?? config.address
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(node: self))
                }
            }
        serveAtOnceIfAlone()
        // A joining node answers `stat run_join` with true from its first connection on: set
        // after the bind, a client polling for the join's end could read false before it began.
        if config.joinSeed != nil { joining.store(true, ordering: .releasing) }
        let server = try bootstrap.bind(host: host, port: config.port).wait()
        state.withLockedValue { $0.server = server }
        if config.afterBindTestPauseMs > 0 { usleep(UInt32(config.afterBindTestPauseMs) * 1000) }
        let engine: String
        switch config.storage {
        case .memory: engine = "memory (RubyHashStorage)"
        case .tokyoCabinet(let o): engine = "tc (TCStorage\(o.source.isEmpty ? "" : ", options \(o.source)"))"
        }
        let dir: String
        if case .memory = config.storage { dir = "(none: memory engine)" } else { dir = config.nodeDirectory }
        scheduleCleanUp()
        scheduleVnodeIndexSweep()
        scheduleConnectionSweep()
        startServing()
        startClusterProcesses()
        if config.joinSeed != nil {
            startJoinProcess(seedFromFiles: config.joinFileSeed != .never)
        }
        logger.info("romad \(nodeID) listening on \(host):\(config.port), name \(config.name), engine \(engine), divnum \(config.divnum), data directory \(dir), hashes \(hashNames.joined(separator: ","))")
    }

    // MARK: - Clean-up process (R6.5)

    /// Every 10 s: when `clean_up_interval` has passed since the last pass, purge expired records
    /// and old delete marks on the thread pool (never on an event loop, never in snapshot states).
    private func scheduleCleanUp() {
        guard config.cleanUpInterval > 0 else { return }
        let loop = group.next()
        loop.scheduleRepeatedTask(initialDelay: .seconds(10), delay: .seconds(10)) { [self] task in
            if isShuttingDown { task.cancel(); return }
            let now = UInt32(truncatingIfNeeded: time(nil))
            guard stats.lastCleanUp.load(ordering: .relaxed) &+ UInt32(config.cleanUpInterval) < now,
                  !stats.cleanUpRunning.exchange(true, ordering: .acquiringAndReleasing) else { return }
            stats.lastCleanUp.store(now, ordering: .relaxed)
            background { [self] in
                defer { stats.cleanUpRunning.store(false, ordering: .releasing) }
                runCleanUp(now: now)
            }
        }
    }

    /// Every 30 s: drops the vnode indexes (`HashStorage.keys(ofVnode:)`) that no vnode copy
    /// used since the previous sweep, so the memory they take lasts only as long as the moves.
    private func scheduleVnodeIndexSweep() {
        group.next().scheduleRepeatedTask(initialDelay: .seconds(30), delay: .seconds(30)) { [self] task in
            if isShuttingDown { task.cancel(); return }
            for name in hashNames {
                guard let s = storage(name) else { continue }
                let n = s.dropIdleVnodeIndexes()
                if n > 0 { logger.info("dropped the vnode index of \(n) division(s) of \(name): no copy used them for 30 s") }
            }
        }
    }

    /// R3.6: accepted connections idle for longer than `accepted_connection_expire_time` are
    /// closed. ROMA sweeps every 10 s; this sweep runs every 10 s or every expire time if
    /// shorter, so a connection goes between one and two expire times after its last request.
    private func scheduleConnectionSweep() {
        let last = NIOLockedValueBox(Node.monotonicNow())
        group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] task in
            if isShuttingDown { task.cancel(); return }
            let expire = settings.acceptedConnectionExpireTime.load(ordering: .relaxed)
            let now = Node.monotonicNow()
            guard expire > 0, last.withLockedValue({ now - $0 >= Double(min(10, expire)) }) else { return }
            last.withLockedValue { $0 = now }
            for ch in state.withLockedValue({ Array($0.connections.values) }) {
                ch.eventLoop.execute {
                    try? ch.pipeline.syncOperations.handler(type: ConnectionHandler.self).closeIfIdle(longerThan: expire)
                }
            }
        }
    }

    /// One clean-up pass over every hash (also callable from tests).
    func runCleanUp(now: UInt32) {
        cleanUpStop.store(false, ordering: .relaxed)
        for name in hashNames {
            guard let s = storage(name) else { continue }
            // `set_cleanup_regexp`: this pass also lists the matching keys in `klist.txt`.
            let pattern = cleanupRegexps.withLockedValue { $0.removeValue(forKey: name) }
            let regex = pattern.flatMap { try? Regex($0) }
            if let pattern, regex == nil { logger.error("set_cleanup_regexp \(pattern): not a regular expression here") }
            var lines: [UInt8] = []
            let list: ((UnsafeRawBufferPointer, RecordHeader) -> Void)? = regex.map { re in
                { key, h in
                    let k = String(decoding: key, as: UTF8.self)
                    guard (try? re.firstMatch(in: k)) != nil else { return }
                    lines += Array("\(k),\(h.physical),\(h.logical)\n".utf8)
                }
            }
            do {
                let n = try s.cleanUp(now: now, delmarkExptime: UInt32(clamping: config.delmarkExptime),
                                      shouldStop: { [self] in isShuttingDown || cleanUpStop.load(ordering: .relaxed) },
                                      list: list)
                if n > 0 { logger.info("clean-up of \(name) removed \(n) expired records and old delete marks") }
            } catch {
                logger.error("clean-up of \(name): \(error)")
            }
            if regex != nil, let dir = s.directory {
                let path = "\(dir)/klist.txt"
                if FileSystem.writeFile(path, lines) {
                    logger.info("clean-up of \(name): keys matching /\(pattern ?? "")/ listed in \(path)")
                } else {
                    logger.error("clean-up of \(name): cannot write \(path)")
                }
            }
        }
    }

    // MARK: - Connections

    func register(_ channel: Channel) -> Bool {
        let ok = state.withLockedValue { s -> Bool in
            guard !s.shuttingDown else { return false }
            s.connections[ObjectIdentifier(channel)] = channel
            return true
        }
        if ok { stats.connections.add(1, ordering: .relaxed) }
        return ok
    }

    func unregister(_ channel: Channel) {
        let removed = state.withLockedValue { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) != nil }
        if removed { stats.connections.subtract(1, ordering: .relaxed) }
    }

    var isShuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    /// `restart` / `rrestart`: every connection, accepted and to peers, is closed — each
    /// accepted one once it has answered what it received and been quiet for a moment, at most
    /// 3 s — while the node keeps listening (ROMA stops and starts its event loop).
    func restartConnections(reason: String) {
        logger.notice("\(reason): closing every connection")
        peers.closeAll()
        for ch in state.withLockedValue({ Array($0.connections.values) }) {
            ch.eventLoop.execute {
                if let h = try? ch.pipeline.syncOperations.handler(type: ConnectionHandler.self) { h.beginShutdown() }
            }
            ch.eventLoop.scheduleTask(in: .seconds(3)) { ch.close(promise: nil) }
        }
    }

    /// Accepted connections open now (R3.6 counts them).
    var openConnections: Int { stats.connections.load(ordering: .relaxed) }

    // MARK: - Shutdown

    /// Stops accepting, lets connections finish what they sent, syncs and closes every file,
    /// removes the locks, then completes `waitUntilStopped`. Safe to call more than once.
    public func shutdown(reason: String) {
        let (server, conns, first) = state.withLockedValue { s -> (Channel?, [Channel], Bool) in
            let first = !s.shuttingDown
            s.shuttingDown = true
            return (s.server, Array(s.connections.values), first)
        }
        guard first else { return }
        logger.notice("shutting down: \(reason)")
        clusterReplication.stop()
        peers.closeAll()
        let loop = group.next()
        let closeServer = server?.close() ?? loop.makeSucceededFuture(())
        // Each connection drains what it already received, then closes.
        let drained = conns.map { ch -> EventLoopFuture<Void> in
            ch.eventLoop.flatSubmit {
                if let h = try? ch.pipeline.syncOperations.handler(type: ConnectionHandler.self) { h.beginShutdown() }
                return ch.closeFuture
            }.recover { _ in }
        }
        let all = EventLoopFuture.andAllComplete([closeServer.recover { _ in }] + drained, on: loop)
        // Never hang: give connections a bounded grace period.
        let deadline = loop.scheduleTask(in: .seconds(3)) { () }
        let done = loop.makePromise(of: Void.self)
        all.whenComplete { _ in done.succeed(()) }
        deadline.futureResult.whenComplete { _ in done.succeed(()) }
        done.futureResult.whenComplete { [self] _ in
            deadline.cancel()
            for c in state.withLockedValue({ Array($0.connections.values) }) { c.close(promise: nil) }
            pool.runIfActive(eventLoop: loop) { [self] in
                writeBehind.closeAll()
                closeStorages()
            }
                .whenComplete { [self] _ in stopped.succeed(()) }
        }
    }

    private func closeStorages() {
        for name in hashNames {
            guard let s = storage(name) else { continue }
            do { try s.close() } catch { logger.error("closing storage \(name): \(error)") }
        }
        logger.info("storages synced and closed")
    }

    /// Runs background work (flush, cache cleaning, clean-up, state changes, hash administration)
    /// on the thread pool under Linux's `SCHED_IDLE` policy: a waking event loop preempts it at
    /// once. nice 10 was not enough: the kernel's scheduler (EEVDF) lets a running nice-10 thread
    /// finish its slice, and ftrace showed event loops runnable but waiting 2–3 ms behind pool
    /// threads creating cache files or merging caches. The policy is per thread and the pool's
    /// threads only ever run background work, so it stays with them.
    func background(_ work: @escaping @Sendable () -> Void) {
        pool.submit { _ in
            Node.lowerCallingThreadPriority()
            work()
        }
    }

    /// `background` with a result, completed on `loop`; on `streamPool` instead of `pool` when
    /// `onStreamPool` (storing an incoming vnode stream).
    func background<T: Sendable>(on loop: any EventLoop, onStreamPool: Bool = false,
                                 _ work: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        (onStreamPool ? streamPool : pool).runIfActive(eventLoop: loop) {
            Node.lowerCallingThreadPriority()
            return try work()
        }
    }

    /// `SCHED_IDLE` for the calling pool thread, with best-effort disk I/O (a `SCHED_IDLE`
    /// thread's I/O would be in the idle class, and a cache merge that faults in a page of a
    /// division file would then hold that page locked behind every other I/O while an event loop
    /// waits for it; the final sync at shutdown runs here too); nice 10 where the kernel refuses
    /// it. A thread that a `StarvationGuard` moved to nice 10 during its last job goes back.
    static func lowerCallingThreadPriority() {
        guard !BackgroundScheduling.callingThreadIsIdle else { return }
        if !BackgroundScheduling.idle.apply() { BackgroundScheduling.low.apply() }
    }

    /// Queues the flush process of a division (R7.6) on the thread pool.
    func startFlush(_ storage: HashStorage, _ division: Int) {
        background { [self] in
            testDelay()
            do { try storage.flush(division: division) } catch {
                logger.error("flush of \(storage.name)[\(division)] failed: \(error); the division stays safecopy_flushing")
            }
        }
    }

    /// Queues the cache-cleaning process of a division (R7.7) on the thread pool.
    func startCacheCleaning(_ storage: HashStorage, _ division: Int) {
        background { [self] in
            testDelay()
            do { try storage.cleanCache(division: division) } catch {
                logger.error("cache cleaning of \(storage.name)[\(division)] failed: \(error); the division stays cachecleaning")
            }
        }
    }

    /// The `ROMAD_TEST_SAFECOPY_DELAY_MS` pause (see `NodeConfig.safecopyTestDelayMs`); runs on pool threads only.
    func testDelay() {
        if config.safecopyTestDelayMs > 0 { usleep(useconds_t(config.safecopyTestDelayMs) * 1000) }
    }

    /// Blocks until `shutdown` has finished, then releases the threads.
    public func waitUntilStopped() {
        try? stopped.futureResult.wait()
        try? pool.syncShutdownGracefully()
        try? streamPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }
}
