import NIOCore
import NIOPosix
import Synchronization

/// A request travelling down the channel pipeline: the encoded bytes, the reply shape and the
/// promise the reply completes.
struct RequestEnvelope: Sendable {
    var bytes: ByteBuffer
    var shape: ReplyShape
    var promise: EventLoopPromise<RomaReply>
}

/// Failures of one connection, before the client decides whether to fail over.
enum ConnectionFailure: Error, Sendable, CustomStringConvertible {
    case connect(String)
    case closed
    case timeout
    case protocolError(String)

    var description: String {
        switch self {
        case .connect(let m): return "cannot connect: \(m)"
        case .closed: return "connection closed"
        case .timeout: return "timed out"
        case .protocolError(let m): return m
        }
    }
}

/// Pipelined request/reply handler: requests are written in order and their shapes queued;
/// replies are parsed incrementally and complete the oldest pending promise.
///
/// Only used on its channel's event loop (NIO handler rules), so it needs no locking.
final class RomaChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RequestEnvelope
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<(shape: ReplyShape, promise: EventLoopPromise<RomaReply>)>()
    private var parser = ReplyParser()
    private var cumulation: ByteBuffer?
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if closed {
            request.promise.fail(ConnectionFailure.closed)
            promise?.fail(ConnectionFailure.closed)
            return
        }
        pending.append((request.shape, request.promise))
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        do {
            while let head = pending.first {
                guard let reply = try parser.parse(&cumulation!, expecting: head.shape) else { break }
                pending.removeFirst().promise.succeed(reply)
            }
            if pending.isEmpty && cumulation!.readableBytes > 0 {
                throw RomaProtocolError("unsolicited bytes from the server")
            }
        } catch {
            fail(context: context, error: ConnectionFailure.protocolError("\(error)"))
            return
        }
        if cumulation!.readableBytes == 0 {
            cumulation = nil
        } else if cumulation!.readerIndex > 64 * 1024 {
            cumulation!.discardReadBytes()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        failAll(ConnectionFailure.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context: context, error: ConnectionFailure.connect("\(error)"))
    }

    private func fail(context: ChannelHandlerContext, error: Error) {
        closed = true
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: Error) {
        while let p = pending.popFirst() { p.promise.fail(error) }
    }
}

/// One pooled TCP connection to a node.
final class NodeConnection: Sendable {
    let channel: Channel
    /// Requests sent and not yet answered (for picking the least busy connection).
    let inFlight = Atomic<Int>(0)

    init(channel: Channel) { self.channel = channel }

    var isActive: Bool { channel.isActive }

    static func connect(host: String, port: Int, group: EventLoopGroup, timeout: TimeAmount) async throws -> NodeConnection {
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RomaChannelHandler())
                }
            }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            return NodeConnection(channel: channel)
        } catch {
            throw ConnectionFailure.connect("\(error)")
        }
    }

    /// Sends `bytes` and waits for a reply of `shape`. On timeout the connection is closed
    /// (its other pipelined requests fail with `.closed`), as the reply stream is then unusable.
    func request(_ bytes: ByteBuffer, shape: ReplyShape, timeout: TimeAmount) async throws -> RomaReply {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: RomaReply.self)
        let channel = self.channel
        inFlight.wrappingAdd(1, ordering: .relaxed)
        defer { inFlight.wrappingSubtract(1, ordering: .relaxed) }
        let timer = loop.scheduleTask(in: timeout) {
            promise.fail(ConnectionFailure.timeout)
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        channel.writeAndFlush(RequestEnvelope(bytes: bytes, shape: shape, promise: promise)).whenFailure { error in
            promise.fail(ConnectionFailure.closed)
        }
        return try await promise.futureResult.get()
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// A small pool of connections to one node. Requests go to the least busy open connection;
/// a new one is opened while every open one is busy and the pool is below its size.
final class NodePool: Sendable {
    let nodeID: String
    let host: String
    let port: Int
    let size: Int
    private let group: EventLoopGroup
    private let state = Mutex<State>(State())

    private struct State {
        var connections: [NodeConnection] = []
        var connecting = 0
        /// Connections being made per event loop.
        var connectingOn: [ObjectIdentifier: Int] = [:]
        var closed = false
    }

    init(nodeID: String, host: String, port: Int, size: Int, group: EventLoopGroup) {
        self.nodeID = nodeID
        self.host = host
        self.port = port
        self.size = max(1, size)
        self.group = group
    }

    private enum Pick {
        case use(NodeConnection)
        case connect
        case closed
    }

    /// A connection for one request (an existing idle one, a new one, or the least busy one).
    /// Called on one of the group's event loops (a task preferring an `EventLoopTaskExecutor`),
    /// it uses and makes connections of that loop only, so the request never changes threads.
    func acquire(timeout: TimeAmount) async throws -> NodeConnection {
        let here = MultiThreadedEventLoopGroup.currentEventLoop
        let pick: Pick = state.withLock { s in
            if s.closed { return .closed }
            if s.connections.contains(where: { !$0.isActive }) { s.connections.removeAll { !$0.isActive } }
            let connecting = here.map { s.connectingOn[ObjectIdentifier($0)] ?? 0 } ?? s.connecting
            var best: NodeConnection?
            var bestLoad = Int.max
            var mine = 0
            for c in s.connections where here == nil || c.channel.eventLoop === here! {
                mine += 1
                let load = c.inFlight.load(ordering: .relaxed)
                if load < bestLoad { best = c; bestLoad = load }
                if load == 0 { break }
            }
            if let best, bestLoad == 0 || mine + connecting >= size {
                return .use(best)
            }
            s.connecting += 1
            if let here { s.connectingOn[ObjectIdentifier(here), default: 0] += 1 }
            return .connect
        }
        switch pick {
        case .use(let c): return c
        case .closed: throw ConnectionFailure.closed
        case .connect:
            let c: NodeConnection
            do {
                c = try await NodeConnection.connect(host: host, port: port, group: here ?? group, timeout: timeout)
            } catch {
                state.withLock { s in
                    s.connecting -= 1
                    if let here { s.connectingOn[ObjectIdentifier(here), default: 1] -= 1 }
                }
                throw error
            }
            let keep = state.withLock { s in
                s.connecting -= 1
                if let here { s.connectingOn[ObjectIdentifier(here), default: 1] -= 1 }
                if s.closed { return false }
                s.connections.append(c)
                return true
            }
            if !keep {
                c.close()
                throw ConnectionFailure.closed
            }
            return c
        }
    }

    /// Closes every connection (e.g. after an I/O error, so the next request reconnects).
    func reset() {
        let old = state.withLock { s in
            defer { s.connections = [] }
            return s.connections
        }
        for c in old { c.close() }
    }

    /// Closes every connection and refuses new ones.
    func close() {
        let old = state.withLock { s in
            s.closed = true
            defer { s.connections = [] }
            return s.connections
        }
        for c in old { c.close() }
    }

    /// Number of open connections (for tests and diagnostics).
    var openConnections: Int { state.withLock { $0.connections.filter(\.isActive).count } }
}
