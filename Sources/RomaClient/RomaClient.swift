import NIOCore
import NIOPosix
import ROMARouting
import Synchronization

/// An asynchronous client for a ROMA cluster with client-side routing (spec R4.9).
///
/// It fetches the routing table from the seed nodes (`routingdump bin`), sends each key's request
/// straight to a node that holds the key's vnode, keeps a small pool of pipelined connections per
/// node, refreshes the table in the background when its fingerprint (`mklhash 0`) changes, and
/// fails over to the next healthy node on connection errors and timeouts. See docs/client.md.
///
/// ```swift
/// let client = try await RomaClient(seeds: ["127.0.0.1:10001", "127.0.0.1_10002"])
/// _ = try await client.set("k", Array("v".utf8))
/// let v = try await client.get("k")
/// await client.close()
/// ```
///
/// Call `close()` when done: it stops the background refresh and closes the connections.
public final class RomaClient: Sendable {
    /// Tuning knobs; the defaults follow the Ruby client where it has one.
    public struct Configuration: Sendable {
        /// How often the background task compares `mklhash 0` with the cached fingerprint
        /// (spec R4.9: 10 s).
        public var refreshInterval: Duration = .seconds(10)
        /// Connections kept per node on each of the client's event loops (requests are
        /// pipelined on them: an idle one is used first, a new one is made while all are busy
        /// and there are fewer than this, else the least busy one takes the request). One (the
        /// default) batches the most requests per system call on both ends; more help when one
        /// server thread per client loop is the limit.
        public var connectionsPerNode: Int = 1
        /// Attempts per request; nil: the number of nodes in the routing table + 1.
        public var maxAttempts: Int?
        /// Pause before the n-th retry: `n × retryBackoff`, at most 300 ms (spec R4.9 sleeps 0.3 s).
        public var retryBackoff: Duration = .milliseconds(50)
        /// Event loops for the connections; nil: NIO's shared singleton group.
        public var eventLoopGroup: (any EventLoopGroup)?

        public init() {}
    }

    /// The hash name (namespace) every key is addressed in: keys are sent as `key\x1B<hashName>`.
    public let hashName: String
    /// Per-attempt deadline of a request (connect, send and the whole reply).
    public let timeout: Duration
    /// The settings the client was made with.
    public let configuration: Configuration
    /// The seed nodes as given, parsed.
    public let seeds: [NodeAddress]

    let group: any EventLoopGroup
    /// The connections of each of the group's loops (loop-confined, see `LoopConnections`).
    let perLoop: [ObjectIdentifier: LoopConnections]
    let ioTimeout: TimeAmount
    let state: Mutex<State>
    /// Number of nodes marked failed (`State.failures.count`), readable without the lock.
    let failedNodes = Atomic<Int>(0)

    struct State {
        var table: RoutingTable?
        var fingerprint: String?
        /// Client-side failure count per node id; 0 / absent = healthy.
        var failures: [String: Int] = [:]
        var closed = false
        var refreshTask: Task<Void, Never>?
        /// The refresh loop's pending wait and its generation (stale timers are ignored).
        var waiter: CheckedContinuation<Void, Never>?
        var waitGeneration = 0
        /// A refresh was asked for while none was waiting: run the next one right away.
        var refreshRequested = false
        /// The next refresh refetches the table even if the fingerprint is unchanged.
        var forceNext = false
        /// Number of routing tables installed (for tests and diagnostics).
        var tablesInstalled = 0
        /// Connection failures and timeouts counted against nodes since the start.
        var nodeFailures = 0
        /// Background refresh rounds completed (for tests and diagnostics).
        var refreshRounds = 0
    }

    /// Connects to the cluster: fetches the routing table from the first seed that answers
    /// (`mklhash 0`, `routingdump bin`) and starts the background refresh.
    ///
    /// - Parameters:
    ///   - seeds: `host:port` or `host_port` of one or more nodes.
    ///   - hashName: the hash (namespace) for every key (default `roma`).
    ///   - timeout: per-attempt deadline for connecting and for a whole reply.
    ///   - configuration: refresh interval, pool size, retries.
    /// - Throws: `RomaClientError.invalidArgument` for a bad seed or hash name,
    ///   `.unavailable` when no seed answers.
    public convenience init(seeds: [String], hashName: String = "roma", timeout: Duration = .seconds(2),
                            configuration: Configuration = Configuration()) async throws {
        try self.init(seeds: seeds, hashName: hashName, timeout: timeout, configuration: configuration, table: nil)
        do {
            try await refreshRouting()
        } catch {
            await close()
            throw error
        }
        startRefreshLoop()
    }

    /// Builds the client without contacting anyone (`table`, if given, is installed as is).
    init(seeds: [String], hashName: String, timeout: Duration, configuration: Configuration, table: RoutingTable?,
         fingerprint: String? = nil) throws {
        guard !seeds.isEmpty else { throw RomaClientError.invalidArgument("no seed nodes given") }
        var parsed: [NodeAddress] = []
        for s in seeds {
            guard let a = NodeAddress(s) else {
                throw RomaClientError.invalidArgument("bad seed '\(s)': expected host:port or host_port")
            }
            if !parsed.contains(a) { parsed.append(a) }
        }
        guard Self.isValidToken(hashName) else { throw RomaClientError.invalidArgument("bad hash name '\(hashName)'") }
        guard timeout > .zero else { throw RomaClientError.invalidArgument("timeout must be positive") }
        guard configuration.refreshInterval > .zero, configuration.connectionsPerNode >= 1,
              (configuration.maxAttempts ?? 1) >= 1 else {
            throw RomaClientError.invalidArgument("refreshInterval, connectionsPerNode and maxAttempts must be positive")
        }
        self.seeds = parsed
        self.hashName = hashName
        self.timeout = timeout
        self.configuration = configuration
        self.group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        var loops: [ObjectIdentifier: LoopConnections] = [:]
        for loop in group.makeIterator() {
            loops[ObjectIdentifier(loop)] = LoopConnections(loop: loop, size: configuration.connectionsPerNode)
        }
        self.perLoop = loops
        self.ioTimeout = Self.timeAmount(timeout)
        var s = State()
        s.table = table
        s.fingerprint = fingerprint
        self.state = Mutex(s)
    }

    // MARK: Public API

    /// The value of `key`, or nil if it does not exist.
    public func get(_ key: String) async throws -> [UInt8]? {
        try await get(key, on: preferredLoop()).get()
    }

    /// Values and cas uniques of the keys that exist (missing keys are absent from the result).
    ///
    /// Keys are grouped by the node each routes to and fetched with one `gets` per node, all
    /// nodes in parallel; a group whose node fails is re-routed and retried.
    public func gets(_ keys: [String]) async throws -> [String: (value: [UInt8], cas: UInt32)] {
        var unique: [String] = []
        var seen = Set<String>()
        for k in keys where seen.insert(k).inserted {
            _ = try keyToken(k)
            unique.append(k)
        }
        if unique.isEmpty { return [:] }
        return try await getsRouted(unique, attempt: 0, lastError: nil)
    }

    /// `set`: store unconditionally. `exptime`: 0 = never, else seconds from now or a Unix time.
    public func set(_ key: String, _ value: [UInt8], exptime: Int = 0) async throws -> StoreResult {
        try await store("set", key, value, exptime: exptime, cas: nil)
    }

    /// `add`: store only if the key does not exist (`.notStored` otherwise).
    public func add(_ key: String, _ value: [UInt8], exptime: Int = 0) async throws -> StoreResult {
        try await store("add", key, value, exptime: exptime, cas: nil)
    }

    /// `replace`: store only if the key exists (`.notStored` otherwise).
    public func replace(_ key: String, _ value: [UInt8], exptime: Int = 0) async throws -> StoreResult {
        try await store("replace", key, value, exptime: exptime, cas: nil)
    }

    /// `append`: add `value` after the existing value (`.notStored` if the key does not exist).
    public func append(_ key: String, _ value: [UInt8], exptime: Int = 0) async throws -> StoreResult {
        try await store("append", key, value, exptime: exptime, cas: nil)
    }

    /// `prepend`: add `value` before the existing value (`.notStored` if the key does not exist).
    public func prepend(_ key: String, _ value: [UInt8], exptime: Int = 0) async throws -> StoreResult {
        try await store("prepend", key, value, exptime: exptime, cas: nil)
    }

    /// `cas`: store only if the record's cas unique (from `gets`) is still `cas`
    /// (`.exists` if it changed, `.notFound` if the key is gone).
    public func cas(_ key: String, _ value: [UInt8], cas: UInt32, exptime: Int = 0) async throws -> StoreResult {
        try await store("cas", key, value, exptime: exptime, cas: cas)
    }

    /// `delete`.
    public func delete(_ key: String) async throws -> DeleteResult {
        try await delete(key, on: preferredLoop()).get()
    }

    /// `incr`: adds `delta` to the decimal value; returns the new value, nil if the key does not exist.
    public func incr(_ key: String, by delta: UInt64 = 1) async throws -> UInt64? {
        try await arithmetic("incr", key, delta)
    }

    /// `decr`: subtracts `delta` (the result stops at 0); returns the new value, nil if the key
    /// does not exist.
    public func decr(_ key: String, by delta: UInt64 = 1) async throws -> UInt64? {
        try await arithmetic("decr", key, delta)
    }

    /// Fetches the routing table again now (`mklhash 0` then `routingdump bin`), even if the
    /// fingerprint did not change. Throws `.unavailable` if no node answers.
    public func refreshRouting() async throws {
        try await refreshOnce(force: true)
    }

    /// Stops the background refresh and closes every connection. Later calls throw `.closed`.
    public func close() async {
        let (task, waiter) = state.withLock { s in
            s.closed = true
            let w = s.waiter
            s.waiter = nil
            return (s.refreshTask, w)
        }
        task?.cancel()
        waiter?.resume()
        for c in perLoop.values { c.loop.execute { c.closeAll() } }
        await task?.value
    }

    /// The routing table in use (nil before the first fetch).
    public var routingTable: RoutingTable? { state.withLock { $0.table } }

    /// The cached table fingerprint (`mklhash 0`).
    public var fingerprint: String? { state.withLock { $0.fingerprint } }

    /// Client-side failure count of a node (0 = healthy).
    public func failureCount(of nodeID: String) -> Int { state.withLock { $0.failures[nodeID] ?? 0 } }

    /// Connection failures and timeouts since the client started (each one made a request
    /// retry on another node or give up).
    public var nodeFailureCount: Int { state.withLock { $0.nodeFailures } }

    /// The node a request for `key` would go to now (nil without a table or healthy node).
    public func node(forKey key: String) -> String? {
        state.withLock { s in
            guard let t = s.table else { return nil }
            return ClientRouting.route(key: key, table: t) { (s.failures[$0] ?? 0) > 0 }
        }
    }

    // MARK: Event-loop API

    /// `get` as a future completing on `loop`: the value of `key`, or nil if it does not exist.
    ///
    /// The `on: loop` calls are the client's lean path: no task switch per request. Called on
    /// one of the client's event loops (`Configuration.eventLoopGroup`), for example from a
    /// future callback, the request is written on that loop's own connection and the reply
    /// completes there; from elsewhere it takes one hop to a loop of the client and back.
    public func get(_ key: String, on loop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
        keyed("get", key, shape: .values, on: loop) { reply in
            switch reply {
            case .values(let vs): return vs.first?.value
            case .line(let l): throw Self.failure(command: "get", line: l)
            case .block: throw RomaClientError.unexpectedReply(command: "get", reply: "<block>")
            }
        }
    }

    /// `set` as a future completing on `loop` (see `get(_:on:)`).
    public func set(_ key: String, _ value: [UInt8], exptime: Int = 0, on loop: any EventLoop) -> EventLoopFuture<StoreResult> {
        store("set", key, value, exptime: exptime, cas: nil, on: loop)
    }

    /// `delete` as a future completing on `loop` (see `get(_:on:)`).
    public func delete(_ key: String, on loop: any EventLoop) -> EventLoopFuture<DeleteResult> {
        keyed("delete", key, shape: .line, on: loop) { reply in
            let line = try Self.line(reply, command: "delete")
            switch line {
            case "DELETED": return .deleted
            case "NOT_FOUND": return .notFound
            case "NOT_DELETED": return .notDeleted
            default: throw Self.failure(command: "delete", line: line)
            }
        }
    }

    private func store(_ cmd: String, _ key: String, _ value: [UInt8], exptime: Int, cas: UInt32?,
                       on loop: any EventLoop) -> EventLoopFuture<StoreResult> {
        guard Self.isValidToken(key) else { return loop.makeFailedFuture(RomaClientError.invalidKey(key)) }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(cmd.utf8.count + key.utf8.count + hashName.utf8.count + value.count + 48)
        buffer.writeString(cmd)
        buffer.writeStaticString(" ")
        buffer.writeString(key)
        buffer.writeInteger(UInt8(0x1B))
        buffer.writeString(hashName)
        buffer.writeStaticString(" 0 ")
        buffer.writeString(String(exptime))
        buffer.writeStaticString(" ")
        buffer.writeString(String(value.count))
        if let cas {
            buffer.writeStaticString(" ")
            buffer.writeString(String(cas))
        }
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(value)
        buffer.writeStaticString("\r\n")
        return run(routingKey: key, command: cmd, buffer: buffer, shape: .line, on: loop) { reply in
            let line = try Self.line(reply, command: cmd)
            switch line {
            case "STORED": return .stored
            case "NOT_STORED": return .notStored
            case "EXISTS": return .exists
            case "NOT_FOUND": return .notFound
            default: throw Self.failure(command: cmd, line: line)
            }
        }
    }

    /// Runs `<verb> <key>\x1B<hash>\r\n` (checking the key) and decodes its reply.
    private func keyed<T: Sendable>(_ verb: StaticString, _ key: String, shape: ReplyShape, on loop: any EventLoop,
                                    decode: @escaping @Sendable (RomaReply) throws -> T) -> EventLoopFuture<T> {
        guard Self.isValidToken(key) else { return loop.makeFailedFuture(RomaClientError.invalidKey(key)) }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(verb.utf8CodeUnitCount + key.utf8.count + hashName.utf8.count + 4)
        buffer.writeStaticString(verb)
        buffer.writeStaticString(" ")
        buffer.writeString(key)
        buffer.writeInteger(UInt8(0x1B))
        buffer.writeString(hashName)
        buffer.writeStaticString("\r\n")
        return run(routingKey: key, command: "\(verb)", buffer: buffer, shape: shape, on: loop, decode: decode)
    }

    // MARK: Commands

    private func store(_ cmd: String, _ key: String, _ value: [UInt8], exptime: Int, cas: UInt32?) async throws -> StoreResult {
        try await store(cmd, key, value, exptime: exptime, cas: cas, on: preferredLoop()).get()
    }

    private func arithmetic(_ cmd: String, _ key: String, _ delta: UInt64) async throws -> UInt64? {
        let token = try keyToken(key)
        let reply = try await execute(routingKey: key, command: cmd, request: "\(cmd) \(token) \(delta)\r\n", shape: .line)
        let line = try Self.line(reply, command: cmd)
        if line == "NOT_FOUND" { return nil }
        if let v = UInt64(line) { return v }
        throw Self.failure(command: cmd, line: line)
    }

    private func getsRouted(_ keys: [String], attempt: Int, lastError: String?) async throws -> [String: (value: [UInt8], cas: UInt32)] {
        let maxAttempts = attemptLimit()
        guard attempt < maxAttempts else {
            throw RomaClientError.unavailable("gets failed after \(maxAttempts) attempts: \(lastError ?? "no healthy node")")
        }
        if attempt > 0 { try await backoff(attempt) }
        // Group the keys by the node each one routes to now.
        let groups: [String: [String]] = try state.withLock { s in
            if s.closed { throw RomaClientError.closed }
            guard let t = s.table else { throw RomaClientError.unavailable("no routing table") }
            var g: [String: [String]] = [:]
            for k in keys {
                let failures = s.failures
                let nodes = ClientRouting.candidates(key: k, table: t) { (failures[$0] ?? 0) > 0 }
                guard let n = nodes.first else { throw RomaClientError.unavailable("no node for key '\(k)'") }
                g[n, default: []].append(k)
            }
            return g
        }
        let hashName = self.hashName
        enum GroupResult: Sendable {
            case values([RomaValue])
            case failed(node: String, keys: [String], error: String)
        }
        var result: [String: (value: [UInt8], cas: UInt32)] = [:]
        var retry: [String] = []
        var retryError: String?
        try await withThrowingTaskGroup(of: GroupResult.self) { tg in
            for (node, nodeKeys) in groups {
                tg.addTask {
                    var request = "gets"
                    for k in nodeKeys { request += " \(k)\u{1B}\(hashName)" }
                    request += "\r\n"
                    do {
                        let reply = try await self.send(to: node, ByteBuffer(string: request), shape: .values)
                        self.markHealthy(node)
                        switch reply {
                        case .values(let vs): return .values(vs)
                        case .line(let l): throw Self.failure(command: "gets", line: l)
                        case .block: throw RomaClientError.unexpectedReply(command: "gets", reply: "<block>")
                        }
                    } catch let f as ConnectionFailure {
                        if case .protocolError(let m) = f { throw RomaClientError.protocolError("\(node): \(m)") }
                        self.markFailed(node)
                        return .failed(node: node, keys: nodeKeys, error: "\(node): \(f)")
                    }
                }
            }
            for try await r in tg {
                switch r {
                case .values(let vs):
                    for v in vs { result[Self.stripHash(v.key)] = (v.value, v.cas ?? 0) }
                case let .failed(_, nodeKeys, error):
                    retry += nodeKeys
                    retryError = error
                }
            }
        }
        if !retry.isEmpty {
            let more = try await getsRouted(retry, attempt: attempt + 1, lastError: retryError)
            result.merge(more) { a, _ in a }
        }
        return result
    }

    // MARK: Request execution with failover

    private func execute(routingKey: String, command: String, request: String, shape: ReplyShape) async throws -> RomaReply {
        try await execute(routingKey: routingKey, command: command, buffer: ByteBuffer(string: request), shape: shape)
    }

    private func execute(routingKey: String, command: String, buffer: ByteBuffer, shape: ReplyShape) async throws -> RomaReply {
        try await run(routingKey: routingKey, command: command, buffer: buffer, shape: shape, on: preferredLoop()) { $0 }.get()
    }

    /// The caller's event loop when it is one of the client's (a loop-bound task: no thread
    /// change per request), else the next loop of the group.
    func preferredLoop() -> any EventLoop {
        if let here = MultiThreadedEventLoopGroup.currentEventLoop, perLoop[ObjectIdentifier(here)] != nil { return here }
        return group.next()
    }

    /// Runs a keyed request with failover (`attempt`) and completes on `loop` with `decode` of
    /// the reply. One promise per request; the attempts below it use callbacks.
    func run<T: Sendable>(routingKey: String, command: String, buffer: ByteBuffer, shape: ReplyShape, on loop: any EventLoop,
                          decode: @escaping @Sendable (RomaReply) throws -> T) -> EventLoopFuture<T> {
        let limit = attemptLimit()
        return onLoop(loop) { connections, promise in
            self.attempt(0, tried: [], lastError: "no healthy node", routingKey: routingKey, command: command, buffer: buffer,
                         shape: shape, limit: limit, connections: connections) { result in
                switch result {
                case .success(let reply):
                    do { promise.succeed(try decode(reply)) } catch { promise.fail(error) }
                case .failure(let error):
                    promise.fail(error)
                }
            }
        }
    }

    /// Runs `body` on `loop` with that loop's connections (now when already there); `body`
    /// completes the promise. A loop that is not the client's: on the next one of the client's,
    /// and the result hops back.
    private func onLoop<T: Sendable>(_ loop: any EventLoop,
                                     _ body: @escaping @Sendable (LoopConnections, EventLoopPromise<T>) -> Void) -> EventLoopFuture<T> {
        guard let connections = perLoop[ObjectIdentifier(loop)] else { return onLoop(group.next(), body).hop(to: loop) }
        let promise = loop.makePromise(of: T.self)
        if loop.inEventLoop { body(connections, promise) } else { loop.execute { body(connections, promise) } }
        return promise.futureResult
    }

    /// Sends the request to the key's node; on a connection failure or timeout marks the node
    /// failed, forces a table refresh and retries on the next candidate (after a pause of
    /// `attempt × retryBackoff`). On `connections`' loop.
    private func attempt(_ n: Int, tried: [String], lastError: String, routingKey: String, command: String, buffer: ByteBuffer,
                         shape: ReplyShape, limit: Int, connections: LoopConnections,
                         _ done: @escaping (Result<RomaReply, any Error>) -> Void) {
        guard n < limit else {
            return done(.failure(RomaClientError.unavailable(
                "\(command) failed after \(limit) attempts (tried \(tried.joined(separator: ", "))); last error: \(lastError)")))
        }
        let node: String
        do {
            node = try pick(routingKey: routingKey, command: command, tried: tried)
        } catch {
            return done(.failure(error))
        }
        connections.send(node, buffer, shape: shape, timeout: ioTimeout) { result in
            switch result {
            case .success(let reply):
                self.markHealthy(node)
                done(.success(reply))
            case .failure(.protocolError(let m)):
                done(.failure(RomaClientError.protocolError("\(node): \(m)")))
            case .failure(let f):
                self.markFailed(node)
                let again = tried.contains(node) ? tried : tried + [node]
                let next = {
                    self.attempt(n + 1, tried: again, lastError: "\(node): \(f)", routingKey: routingKey, command: command,
                                 buffer: buffer, shape: shape, limit: limit, connections: connections, done)
                }
                let pause = Self.timeAmount(min(self.configuration.retryBackoff * (n + 1), .milliseconds(300)))
                if n + 1 >= limit || pause <= .zero {
                    next()
                } else {
                    connections.loop.assumeIsolated().scheduleTask(in: pause, next)
                }
            }
        }
    }

    /// The node for a request on `routingKey`: the first healthy candidate not tried yet.
    private func pick(routingKey: String, command: String, tried: [String]) throws -> String {
        let (table, failures) = try state.withLock { s -> (RoutingTable, [String: Int]) in
            if s.closed { throw RomaClientError.closed }
            guard let t = s.table else { throw RomaClientError.unavailable("no routing table") }
            return (t, failedNodes.load(ordering: .relaxed) == 0 ? [:] : s.failures)
        }
        if failures.isEmpty && tried.isEmpty,
           let n = table.nodes(forVnode: table.space.vnode(ofKey: routingKey))?.first {
            return n
        }
        let candidates = ClientRouting.candidates(key: routingKey, table: table) { (failures[$0] ?? 0) > 0 }
        guard let node = candidates.first(where: { !tried.contains($0) }) ?? candidates.first else {
            throw RomaClientError.unavailable("\(command): no node in the routing table for the key")
        }
        return node
    }

    /// One attempt on one node: a connection of the caller's loop, the request, its reply.
    func send(to node: String, _ buffer: ByteBuffer, shape: ReplyShape) async throws -> RomaReply {
        try await send(to: node, buffer, shape: shape, on: preferredLoop()).get()
    }

    /// One attempt on one node, completing on `loop` (fails with `ConnectionFailure`).
    func send(to node: String, _ buffer: ByteBuffer, shape: ReplyShape, on loop: any EventLoop) -> EventLoopFuture<RomaReply> {
        let timeout = ioTimeout
        return onLoop(loop) { connections, promise in
            connections.send(node, buffer, shape: shape, timeout: timeout) { promise.completeWith($0.mapError { $0 }) }
        }
    }

    /// Open connections to `node` over all the client's loops (for tests and diagnostics).
    func openConnections(to node: String) async -> Int {
        var total = 0
        for c in perLoop.values {
            total += (try? await c.loop.submit { c.openConnections(node) }.get()) ?? 0
        }
        return total
    }

    private func attemptLimit() -> Int {
        if let n = configuration.maxAttempts { return n }
        return state.withLock { ($0.table?.nodes.count ?? seeds.count) + 1 }
    }

    private func backoff(_ attempt: Int) async throws {
        let pause = min(configuration.retryBackoff * attempt, .milliseconds(300))
        if pause > .zero { try await Task.sleep(for: pause) }
    }

    func markHealthy(_ node: String) {
        // The common case (no node marked failed) takes no lock.
        guard failedNodes.load(ordering: .relaxed) > 0 else { return }
        state.withLock { s in
            if s.failures[node] != nil { s.failures[node] = nil }
            failedNodes.store(s.failures.count, ordering: .relaxed)
        }
    }

    /// Counts a failure of `node` and forces a routing refresh (spec R4.9).
    func markFailed(_ node: String) {
        state.withLock { s in
            s.failures[node, default: 0] += 1
            s.nodeFailures += 1
            s.fingerprint = nil
            failedNodes.store(s.failures.count, ordering: .relaxed)
        }
        requestRefresh(force: true)
    }

    // MARK: Routing refresh

    /// Fetches the table from the first node that answers: healthy table nodes, then seeds,
    /// then failed nodes. Keeps the cached table when the fingerprint is unchanged and `force`
    /// is false.
    func refreshOnce(force: Bool) async throws {
        let (order, cached) = try state.withLock { s -> ([String], String?) in
            if s.closed { throw RomaClientError.closed }
            var order: [String] = []
            let tableNodes = s.table?.nodes ?? []
            for n in tableNodes where (s.failures[n] ?? 0) == 0 { order.append(n) }
            for a in seeds where !order.contains(a.nodeID) && (s.failures[a.nodeID] ?? 0) == 0 { order.append(a.nodeID) }
            for n in tableNodes + seeds.map(\.nodeID) where !order.contains(n) { order.append(n) }
            return (order, s.fingerprint)
        }
        var errors: [String] = []
        for node in order {
            do {
                let fpReply = try await send(to: node, ByteBuffer(string: "mklhash 0\r\n"), shape: .line)
                markHealthy(node)
                guard case .line(let fp) = fpReply, !fp.hasPrefix("ERROR"), !fp.contains(" ") else {
                    errors.append("\(node): unexpected mklhash reply")
                    continue
                }
                if !force, !fp.isEmpty, fp == cached { return }
                let dump = try await send(to: node, ByteBuffer(string: "routingdump bin\r\n"), shape: .sizedBlock)
                guard case .block(let bin) = dump else {
                    if case .line(let l) = dump { errors.append("\(node): routingdump bin: \(l)") }
                    continue
                }
                let table: RoutingTable
                do {
                    table = try RoutingTable(binary: bin)
                } catch {
                    errors.append("\(node): \(error)")
                    continue
                }
                install(table, fingerprint: fp.isEmpty ? nil : fp)
                return
            } catch let f as ConnectionFailure {
                state.withLock { s in
                    s.failures[node, default: 0] += 1
                    s.nodeFailures += 1
                }
                errors.append("\(node): \(f)")
            }
        }
        throw RomaClientError.unavailable("no node answered the routing requests (\(errors.joined(separator: "; ")))")
    }

    /// Installs a new table; connections to nodes that left it (and are not seeds) are closed.
    func install(_ table: RoutingTable, fingerprint: String?) {
        let stale: [String] = state.withLock { s in
            let before = Set(s.table?.nodes ?? [])
            s.table = table
            s.fingerprint = fingerprint
            s.tablesInstalled += 1
            let keep = Set(table.nodes).union(seeds.map(\.nodeID))
            for nid in s.failures.keys where !keep.contains(nid) { s.failures[nid] = nil }
            failedNodes.store(s.failures.count, ordering: .relaxed)
            return before.subtracting(keep).sorted()
        }
        guard !stale.isEmpty else { return }
        for c in perLoop.values { c.loop.execute { for nid in stale { c.drop(nid) } } }
    }

    /// Asks the background loop to refresh now (coalesced with a refresh already pending).
    func requestRefresh(force: Bool) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if force { s.forceNext = true }
            guard let w = s.waiter else {
                s.refreshRequested = true
                return nil
            }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    func startRefreshLoop() {
        let task = Task { [weak self] in
            while true {
                guard let client = self else { return }
                guard await client.waitForRefreshTurn() else { return }
                let force = client.state.withLock { s in
                    defer { s.forceNext = false }
                    return s.forceNext
                }
                try? await client.refreshOnce(force: force)
                await client.probeFailedNodes()
                client.state.withLock { $0.refreshRounds += 1 }
            }
        }
        let stillOpen = state.withLock { s in
            if !s.closed { s.refreshTask = task }
            return !s.closed
        }
        if !stillOpen { task.cancel() }
    }

    /// Waits for the refresh interval or a forced refresh; false once the client is closed.
    private func waitForRefreshTurn() async -> Bool {
        let loop = group.next()
        let interval = Self.timeAmount(configuration.refreshInterval)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let generation: Int? = state.withLock { s in
                if s.closed || s.refreshRequested {
                    s.refreshRequested = false
                    return nil
                }
                s.waitGeneration += 1
                s.waiter = c
                return s.waitGeneration
            }
            guard let generation else {
                c.resume()
                return
            }
            loop.scheduleTask(in: interval) { [weak self] in
                guard let self else { return }
                let w = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                    guard s.waitGeneration == generation, let w = s.waiter else { return nil }
                    s.waiter = nil
                    return w
                }
                w?.resume()
            }
        }
        return state.withLock { !$0.closed } && !Task.isCancelled
    }

    /// Sends `mklhash 0` to every failed node of the table; one that answers is healthy again.
    private func probeFailedNodes() async {
        let failed = state.withLock { s in s.failures.filter { $0.value > 0 }.map(\.key) }
        for node in failed {
            if (try? await send(to: node, ByteBuffer(string: "mklhash 0\r\n"), shape: .line)) != nil {
                markHealthy(node)
            }
        }
    }

    // MARK: Helpers

    /// The key token sent on the wire: `key\x1B<hashName>`.
    func keyToken(_ key: String) throws -> String {
        guard Self.isValidToken(key) else { throw RomaClientError.invalidKey(key) }
        return "\(key)\u{1B}\(hashName)"
    }

    static func isValidToken(_ s: String) -> Bool {
        !s.isEmpty && !s.utf8.contains { $0 == 0x20 || $0 == 0x0D || $0 == 0x0A || $0 == 0x1B || $0 == 0 }
    }

    /// A key as the server printed it, without any `\x1B<hash>` suffix.
    static func stripHash(_ key: String) -> String {
        guard let i = key.utf8.firstIndex(of: 0x1B) else { return key }
        return String(key[..<i])
    }

    static func line(_ reply: RomaReply, command: String) throws -> String {
        guard case .line(let l) = reply else { throw RomaClientError.unexpectedReply(command: command, reply: "<values>") }
        return l
    }

    static func failure(command: String, line: String) -> RomaClientError {
        if line.hasPrefix("SERVER_ERROR") { return .serverError(line) }
        if line.hasPrefix("CLIENT_ERROR") { return .clientError(line) }
        return .unexpectedReply(command: command, reply: line)
    }

    static func timeAmount(_ d: Duration) -> TimeAmount {
        let (s, atto) = d.components
        let ns = s.multipliedReportingOverflow(by: 1_000_000_000)
        if ns.overflow { return .nanoseconds(Int64.max) }
        return .nanoseconds(ns.partialValue &+ atto / 1_000_000_000)
    }
}
