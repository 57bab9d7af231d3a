import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ROMAProtocol
import Synchronization

/// Why a request to another node failed.
public enum PeerError: Error, CustomStringConvertible, Sendable {
    /// No connection could be made (refused, unreachable, connect timeout).
    case connect(String, String)
    /// No complete reply within the timeout.
    case timeout(String)
    /// The connection closed before the reply.
    case closed(String)
    /// The reply was not of the expected shape.
    case protocolError(String, String)

    public var description: String {
        switch self {
        case let .connect(n, m): return "cannot connect to \(n): \(m)"
        case let .timeout(n): return "no reply from \(n) within the peer timeout"
        case let .closed(n): return "connection to \(n) closed"
        case let .protocolError(n, m): return "bad reply from \(n): \(m)"
        }
    }
}

/// Connections to the other nodes: per (event loop, peer) a pool of connections made on first
/// use and kept, one request at a time on each. Every request has a timeout; a timeout closes
/// its connection (a late reply could no longer be matched).
final class PeerClient: Sendable {
    let group: MultiThreadedEventLoopGroup
    let timeout: TimeAmount
    /// `switch_dns_caching`: the addresses peers' host names resolved to, when on.
    let addresses = PeerAddressCache()
    /// ROMA's pool settings (`set_connection_pool_*`, `set_emconnection_pool_*`).
    let settings: PeerPoolSettings
    private let perLoop: [ObjectIdentifier: LoopPeers]

    init(group: MultiThreadedEventLoopGroup, timeout: TimeAmount, settings: PeerPoolSettings = PeerPoolSettings()) {
        self.group = group
        self.timeout = timeout
        self.settings = settings
        var m: [ObjectIdentifier: LoopPeers] = [:]
        for loop in group.makeIterator() {
            m[ObjectIdentifier(loop)] = LoopPeers(loop: loop, timeout: timeout, addresses: addresses, settings: settings)
        }
        perLoop = m
    }

    /// Sends `request` to node `nid` (`host_port`) and completes with its reply, on `loop` (which
    /// must be one of the group's loops; the connection used is that loop's own).
    ///
    /// `pipelined`: on the loop's one pipelined connection to the peer, for requests the peer
    /// answers at once (replica writes): many in flight, written together once per loop turn.
    /// Otherwise on a pooled connection of its own (a forwarded write may wait at the peer for
    /// the peer's replicas, and must not hold up anything else meanwhile).
    func request(_ nid: String, _ request: ByteBuffer, kind: PeerReplyKind, on loop: any EventLoop,
                 timeout: TimeAmount? = nil, pipelined: Bool = false) -> EventLoopFuture<PeerReply> {
        guard let peers = perLoop[ObjectIdentifier(loop)] else {
            // Not one of ours: run on one of the group's loops and hop back.
            let l = group.next()
            return l.flatSubmit { self.request(nid, request, kind: kind, on: l, timeout: timeout, pipelined: pipelined) }.hop(to: loop)
        }
        let t = timeout ?? self.timeout
        if loop.inEventLoop {
            return pipelined ? peers.sendPipelined(nid, request, kind: kind, timeout: t) : peers.send(nid, request, kind: kind, timeout: t)
        }
        return loop.flatSubmit {
            pipelined ? peers.sendPipelined(nid, request, kind: kind, timeout: t) : peers.send(nid, request, kind: kind, timeout: t)
        }
    }

    /// A one-line request (`whoami`, `rset …`), from any thread.
    func line(_ nid: String, _ text: String, timeout: TimeAmount? = nil) -> EventLoopFuture<String> {
        var b = ByteBufferAllocator().buffer(capacity: text.utf8.count)
        b.writeString(text)
        let loop = group.next()
        return request(nid, b, kind: .line, on: loop, timeout: timeout).flatMapThrowing { reply in
            guard let s = reply.lineString else { throw PeerError.protocolError(nid, "expected one line") }
            return s
        }
    }

    /// Closes every connection to `nid` (it left, or its host failed).
    func disconnect(_ nid: String) {
        for p in perLoop.values { p.loop.execute { p.drop(nid) } }
    }

    /// Closes everything (node shutdown).
    func closeAll() {
        for p in perLoop.values { p.loop.execute { p.dropAll() } }
    }
}

/// ROMA's connection pool settings, as `stat connection.*` shows them:
/// - `pool_maxlength` (`CONNECTION_POOL_MAX`, 5): idle exclusive connections kept per peer (and
///   event loop); one freed beyond that is closed;
/// - `pool_expire_time` (`CONNECTION_POOL_EXPTIME`, 30 s): an idle exclusive connection older
///   than this is closed instead of reused (0: never);
/// - `EMpool_maxlength` (`CONNECTION_EMPOOL_MAX`, 15): exclusive connections open at once per
///   peer and event loop; further requests wait for one to come free;
/// - `EMpool_expire_time` (`CONNECTION_EMPOOL_EXPTIME`, 30 s): the pipelined connection is closed
///   and made again when it was idle for longer (0: never).
final class PeerPoolSettings: Sendable {
    let poolMaxlength: Synchronization.Atomic<Int>
    let poolExpireTime: Synchronization.Atomic<Int>
    let emPoolMaxlength: Synchronization.Atomic<Int>
    let emPoolExpireTime: Synchronization.Atomic<Int>

    init(poolMaxlength: Int = 5, poolExpireTime: Int = 30, emPoolMaxlength: Int = 15, emPoolExpireTime: Int = 30) {
        self.poolMaxlength = Atomic(poolMaxlength)
        self.poolExpireTime = Atomic(poolExpireTime)
        self.emPoolMaxlength = Atomic(emPoolMaxlength)
        self.emPoolExpireTime = Atomic(emPoolExpireTime)
    }

    /// Whether a connection idle since `since` has outlived `seconds` (0: never).
    static func expired(since: NIODeadline, seconds: Int, now: NIODeadline? = nil) -> Bool {
        seconds > 0 && (now ?? .now()) - since > .seconds(Int64(min(seconds, 1 << 31)))
    }
}

/// The connections of one event loop: per peer a pool of connections, each carrying one request
/// at a time (as ROMA's own pools do). A request that waits on something slow at the peer (a
/// forwarded write waiting for its replicas) then holds up only its own connection; the others,
/// and new ones up to `EMpool_maxlength`, carry the rest. Requests beyond that wait for a free one.
/// Loop-confined: every method runs on `loop`.
/// `@unchecked Sendable`: `PeerClient` shares the object between threads only to hand it to its
/// own loop (`loop.execute`/`flatSubmit`); its state is touched on that loop alone.
final class LoopPeers: @unchecked Sendable {
    let loop: any EventLoop
    let addresses: PeerAddressCache
    let timeout: TimeAmount
    let settings: PeerPoolSettings
    private var maxPerPeer: Int { max(1, settings.emPoolMaxlength.load(ordering: .relaxed)) }

    private struct Waiter {
        let request: ByteBuffer
        let kind: PeerReplyKind
        let timeout: TimeAmount
        let promise: EventLoopPromise<PeerReply>
        let since: NIODeadline
    }

    private final class Pool {
        var idle: [(handler: PeerChannelHandler, since: NIODeadline)] = []
        var open = 0
        var waiters = CircularBuffer<Waiter>()
    }

    private var pools: [String: Pool] = [:]

    private enum Slot {
        case connecting(EventLoopFuture<PeerChannelHandler>, UInt64)
        case ready(PeerChannelHandler)
    }
    /// The pipelined connection per peer.
    private var pipes: [String: Slot] = [:]
    private var attempts: UInt64 = 0

    func sendPipelined(_ nid: String, _ request: ByteBuffer, kind: PeerReplyKind, timeout: TimeAmount) -> EventLoopFuture<PeerReply> {
        loop.preconditionInEventLoop()
        switch pipes[nid] {
        case .ready(let h) where h.isOpen && !h.idleLonger(than: settings.emPoolExpireTime.load(ordering: .relaxed)):
            return h.send(request, kind: kind, timeout: timeout)
        case .ready(let h) where h.isOpen:
            h.close()  // idle past EMpool_expire_time: a new connection below
            pipes[nid] = nil
            return sendPipelined(nid, request, kind: kind, timeout: timeout)
        case .connecting(let f, _):
            return f.flatMap { h in h.send(request, kind: kind, timeout: timeout) }
        default:
            attempts &+= 1
            let attempt = attempts
            let f = connect(nid)
            pipes[nid] = .connecting(f, attempt)
            f.assumeIsolated().whenComplete { [self] result in
                guard case .connecting(_, let a) = pipes[nid], a == attempt else { return }
                switch result {
                case .success(let h): pipes[nid] = .ready(h)
                case .failure: pipes[nid] = nil  // the next request tries again
                }
            }
            return f.flatMap { h in h.send(request, kind: kind, timeout: timeout) }
        }
    }

    init(loop: any EventLoop, timeout: TimeAmount, addresses: PeerAddressCache, settings: PeerPoolSettings) {
        self.loop = loop
        self.timeout = timeout
        self.addresses = addresses
        self.settings = settings
    }

    func send(_ nid: String, _ request: ByteBuffer, kind: PeerReplyKind, timeout: TimeAmount) -> EventLoopFuture<PeerReply> {
        loop.preconditionInEventLoop()
        let pool = pools[nid] ?? { let p = Pool(); pools[nid] = p; return p }()
        let expire = settings.poolExpireTime.load(ordering: .relaxed)
        let now = NIODeadline.now()
        while let (h, since) = pool.idle.popLast() {
            if h.isOpen && !PeerPoolSettings.expired(since: since, seconds: expire, now: now) {
                return run(nid, pool, h, request, kind, timeout)
            }
            h.close()
            pool.open -= 1
        }
        let promise = loop.makePromise(of: PeerReply.self)
        pool.waiters.append(Waiter(request: request, kind: kind, timeout: timeout, promise: promise, since: .now()))
        if pool.open < maxPerPeer {
            pool.open += 1
            connect(nid).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let h):
                    release(nid, pool, h)
                case .failure(let error):
                    pool.open -= 1
                    // Nobody can be served by this connection: fail what waits (each would try
                    // the same unreachable peer).
                    let all = pool.waiters
                    pool.waiters.removeAll()
                    for w in all { w.promise.fail(error) }
                }
            }
        }
        return promise.futureResult
    }

    /// Sends on `h` and gives it back to the pool when the reply (or failure) came.
    private func run(_ nid: String, _ pool: Pool, _ h: PeerChannelHandler, _ request: ByteBuffer,
                     _ kind: PeerReplyKind, _ timeout: TimeAmount) -> EventLoopFuture<PeerReply> {
        let f = h.send(request, kind: kind, timeout: timeout)
        f.assumeIsolated().whenComplete { [self] _ in release(nid, pool, h) }
        return f
    }

    /// A connection is free: serve the oldest waiter still in time, or keep it idle.
    private func release(_ nid: String, _ pool: Pool, _ h: PeerChannelHandler) {
        if pools[nid] !== pool {
            h.close()  // the peer was dropped meanwhile
            return
        }
        guard h.isOpen else {
            pool.open -= 1
            if !pool.waiters.isEmpty, pool.open < maxPerPeer {
                // Replace the lost connection for those still waiting.
                pool.open += 1
                connect(nid).assumeIsolated().whenComplete { [self] r in
                    if case .success(let nh) = r { release(nid, pool, nh) } else {
                        pool.open -= 1
                        let all = pool.waiters
                        pool.waiters.removeAll()
                        for w in all { w.promise.fail(PeerError.connect(nid, "reconnect failed")) }
                    }
                }
            }
            return
        }
        while let w = pool.waiters.popFirst() {
            let waited = NIODeadline.now() - w.since
            if waited >= w.timeout {
                w.promise.fail(PeerError.timeout(nid))
                continue
            }
            run(nid, pool, h, w.request, w.kind, w.timeout - waited).cascade(to: w.promise)
            return
        }
        guard pool.idle.count < max(1, settings.poolMaxlength.load(ordering: .relaxed)), pool.open <= maxPerPeer else {
            h.close()  // beyond pool_maxlength idle (or EMpool_maxlength open): not kept
            pool.open -= 1
            return
        }
        pool.idle.append((h, .now()))
    }

    private func connect(_ nid: String) -> EventLoopFuture<PeerChannelHandler> {
        guard let (host, port) = PeerAddress.split(nid) else {
            return loop.makeFailedFuture(PeerError.connect(nid, "not a node id (host_port)"))
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(PeerChannelHandler(nid: nid))
                }
            }
        let addresses = self.addresses
        let cached = addresses.address(of: nid)
        return (cached.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(host: host, port: port))
            .flatMapThrowing { ch in
                if cached == nil, let a = ch.remoteAddress { addresses.remember(nid, a) }
                return try ch.pipeline.syncOperations.handler(type: PeerChannelHandler.self)
            }
            .flatMapErrorThrowing { error -> PeerChannelHandler in throw PeerError.connect(nid, "\(error)") }
    }

    func drop(_ nid: String) {
        switch pipes.removeValue(forKey: nid) {
        case .ready(let h): h.close()
        case .connecting(let f, _): f.whenSuccess { $0.close() }
        case nil: break
        }
        guard let pool = pools.removeValue(forKey: nid) else { return }
        for (h, _) in pool.idle { h.close() }
        let all = pool.waiters
        pool.waiters.removeAll()
        for w in all { w.promise.fail(PeerError.closed(nid)) }
    }

    func dropAll() {
        for nid in Set(pools.keys).union(pipes.keys) { drop(nid) }
    }
}

/// Splits a node id `host_port` at its last `_`.
enum PeerAddress {
    static func split(_ nid: String) -> (String, Int)? {
        guard let i = nid.lastIndex(of: "_"), let port = Int(nid[nid.index(after: i)...]), port > 0, port < 65536 else {
            return nil
        }
        return (String(nid[..<i]), port)
    }
}

/// One connection to another node: writes requests as they come and completes their promises in
/// order as replies arrive. Event-loop bound (NIO calls it on its channel's loop only).
///
/// One timer per connection, not per request: armed for the oldest request's deadline; when it
/// fires, that request is late (the connection fails: a late reply could no longer be matched)
/// or it re-arms for the new oldest one.
final class PeerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let kind: PeerReplyKind
        let promise: EventLoopPromise<PeerReply>
        let deadline: NIODeadline
    }

    let nid: String
    private var context: ChannelHandlerContext?
    private var pending = CircularBuffer<Pending>()
    private var input: ByteBuffer?
    private(set) var isOpen = true
    private let turnFlush = FlushAtTurnEnd()
    private var timer: Scheduled<Void>?
    /// When the last reply arrived or request left (for `EMpool_expire_time`).
    private var lastUse = NIODeadline.now()

    init(nid: String) { self.nid = nid }

    /// Nothing in flight and no use for longer than `seconds` (0: never).
    func idleLonger(than seconds: Int) -> Bool {
        pending.isEmpty && PeerPoolSettings.expired(since: lastUse, seconds: seconds)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func send(_ request: ByteBuffer, kind: PeerReplyKind, timeout: TimeAmount) -> EventLoopFuture<PeerReply> {
        guard let context, isOpen else {
            return (self.context?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()).makeFailedFuture(PeerError.closed(nid))
        }
        let promise = context.eventLoop.makePromise(of: PeerReply.self)
        lastUse = .now()
        pending.append(Pending(kind: kind, promise: promise, deadline: lastUse + timeout))
        if timer == nil { armTimer() }
        context.write(wrapOutboundOut(request), promise: nil)
        // One flush per loop turn: requests made while the loop handles one batch of reads go
        // out in one write.
        turnFlush.request(on: context.eventLoop) { [self] in if isOpen { self.context?.flush() } }
        return promise.futureResult
    }

    private func armTimer() {
        guard let context, let head = pending.first else {
            timer = nil
            return
        }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: head.deadline) { [self] in
            timer = nil
            guard let head = pending.first else { return }
            if head.deadline <= .now() {
                fail(PeerError.timeout(nid))
            } else {
                armTimer()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if input == nil || input!.readableBytes == 0 { input = bytes } else { input!.writeBuffer(&bytes) }
        while let head = pending.first, var buf = input {
            let reply: PeerReply?
            do {
                reply = try PeerReplyDecoder.decode(head.kind, &buf)
            } catch {
                fail(PeerError.protocolError(nid, "\(error)"))
                return
            }
            input = buf
            guard let reply else { break }
            _ = pending.removeFirst()
            if case .line(let line) = reply, PeerChannelHandler.endsTheStream(line) {
                // The connection goes first, so the head's callbacks see it closed and do not
                // give it back to a pool.
                fail(PeerError.protocolError(nid, "stream out of step after the reply '\(String(buffer: line))'"))
                if line.readableBytes == 0 {
                    head.promise.fail(PeerError.protocolError(nid, "an empty line (how Ruby ROMA starts its reply to a command it does not know)"))
                } else {
                    head.promise.succeed(reply)
                }
                return
            }
            head.promise.succeed(reply)
        }
        if let b = input, b.readableBytes == 0 { input = nil } else if pending.isEmpty && input != nil {
            // Bytes nobody asked for: the stream is out of step.
            fail(PeerError.protocolError(nid, "unexpected bytes"))
        }
    }

    /// Whether after this reply line the rest of the stream can no longer be matched to requests.
    ///
    /// Ruby ROMA answers a command it does not know (any peer command while it is starting, for
    /// one) with two lines, or with four starting with an empty one
    /// (`\r\nERROR: 'rset' is not roma command.\r\nDid you mean this?\r\n\tset\r\n`), and then reads
    /// the data block of a storage command as one more command, answered the same way. After
    /// `CLIENT_ERROR` it may likewise have left the data block unread. So an empty line, or one
    /// starting with `ERROR` or `CLIENT_ERROR`, closes the connection: its request gets the reply
    /// (an empty line: a failure), the requests behind it fail as on a closed connection (a
    /// replica write is then queued for retry), and nothing is matched to a stray line.
    static func endsTheStream(_ line: ByteBuffer) -> Bool {
        let v = line.readableBytesView
        return v.isEmpty || v.starts(with: "ERROR".utf8) || v.starts(with: "CLIENT_ERROR".utf8)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(PeerError.closed(nid))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(PeerError.closed(nid))
    }

    /// Fails everything waiting and closes the connection.
    private func fail(_ error: PeerError) {
        isOpen = false
        timer?.cancel()
        timer = nil
        let all = pending
        pending.removeAll()
        for p in all { p.promise.fail(error) }
        context?.close(promise: nil)
    }

    func close() {
        guard isOpen else { return }
        fail(PeerError.closed(nid))
    }
}

/// `switch_dns_caching` (ROMA's DNS cache): while on, a connection to a peer goes to the address
/// its host name resolved to the first time, without resolving it again; off (the default, as
/// ROMA) forgets them, so a peer's name is looked up on every new connection.
final class PeerAddressCache: Sendable {
    private let state = NIOLockedValueBox<(on: Bool, addresses: [String: SocketAddress])>((false, [:]))

    var isOn: Bool { state.withLockedValue { $0.on } }

    func set(_ on: Bool) {
        state.withLockedValue { $0 = (on, on ? $0.addresses : [:]) }
    }

    func address(of nid: String) -> SocketAddress? {
        state.withLockedValue { $0.on ? $0.addresses[nid] : nil }
    }

    func remember(_ nid: String, _ address: SocketAddress) {
        state.withLockedValue { if $0.on { $0.addresses[nid] = address } }
    }

    var count: Int { state.withLockedValue { $0.addresses.count } }
}
