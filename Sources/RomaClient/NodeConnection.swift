import NIOCore
import NIOPosix

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

/// What a request's sender hears: the reply, or why there is none. Called on the connection's
/// event loop.
typealias ReplyCallback = (Result<RomaReply, ConnectionFailure>) -> Void

/// One pipelined connection to a node: requests are written in order as they come (flushed once
/// per event-loop turn, so requests made together leave in one write) and each reply goes to
/// the oldest pending request's callback (a callback, not a promise: no future is made per
/// request below the client's public API).
///
/// A connection has one timer, not one per request: it is armed for the oldest request's deadline
/// and, when it fires, either fails the connection (that request is late: the reply stream can
/// no longer be trusted, so every pending request fails with `.timeout`/`.closed` and the
/// connection closes) or re-arms for the new oldest one.
///
/// Loop-bound: NIO calls it on its channel's loop, and `LoopConnections` calls `send` there only.
final class RomaChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let shape: ReplyShape
        let callback: ReplyCallback
        let deadline: NIODeadline
    }

    private var pending = CircularBuffer<Pending>()
    private var parser = ReplyParser()
    private var cumulation: ByteBuffer?
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var flushScheduled = false
    private(set) var isOpen = true

    /// Requests sent and not yet answered.
    var inFlight: Int { pending.count }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Writes `bytes`; `callback` gets the reply. Call on the channel's loop.
    func send(_ bytes: ByteBuffer, shape: ReplyShape, timeout: TimeAmount, _ callback: @escaping ReplyCallback) {
        guard let context, isOpen else {
            callback(.failure(.closed))
            return
        }
        let loop = context.eventLoop
        pending.append(Pending(shape: shape, callback: callback, deadline: .now() + timeout))
        context.write(wrapOutboundOut(bytes), promise: nil)
        if !flushScheduled {
            flushScheduled = true
            loop.assumeIsolated().execute { [self] in
                flushScheduled = false
                if isOpen { self.context?.flush() }
            }
        }
        if timer == nil { armTimer() }
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
                fail(ConnectionFailure.timeout, first: true)
            } else {
                armTimer()
            }
        }
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
                pending.removeFirst()
                // ROMA's unknown-command answer (`ERROR…`, or an empty line first) has more
                // lines than one: the reply stream is no longer in step; the connection goes.
                if case .line(let l) = reply, l.hasPrefix("ERROR") || (l.isEmpty && head.shape != .line) {
                    close()
                    head.callback(.success(reply))
                    return
                }
                head.callback(.success(reply))
                if !isOpen { return }
            }
            if pending.isEmpty && cumulation!.readableBytes > 0 {
                throw RomaProtocolError("unsolicited bytes from the server")
            }
        } catch {
            fail(ConnectionFailure.protocolError("\(error)"), first: false)
            return
        }
        if cumulation!.readableBytes == 0 {
            cumulation = nil
        } else if cumulation!.readerIndex > 64 * 1024 {
            cumulation!.discardReadBytes()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        timer?.cancel()
        timer = nil
        failAll(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(ConnectionFailure.connect("\(error)"), first: false)
    }

    /// Closes the connection (its pending requests fail with `.closed`).
    func close() {
        guard isOpen else { return }
        fail(ConnectionFailure.closed, first: false)
    }

    /// Fails pending requests (the oldest with `error` when `first`, the rest `.closed`; else all
    /// with `error`) and closes the connection.
    private func fail(_ error: ConnectionFailure, first: Bool) {
        isOpen = false
        timer?.cancel()
        timer = nil
        if first, let head = pending.popFirst() {
            head.callback(.failure(error))
            failAll(.closed)
        } else {
            failAll(error)
        }
        context?.close(promise: nil)
    }

    private func failAll(_ error: ConnectionFailure) {
        while let p = pending.popFirst() { p.callback(.failure(error)) }
    }

    static func connect(host: String, port: Int, loop: any EventLoop, timeout: TimeAmount) -> EventLoopFuture<RomaChannelHandler> {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RomaChannelHandler())
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in try channel.pipeline.syncOperations.handler(type: RomaChannelHandler.self) }
            .flatMapErrorThrowing { error -> RomaChannelHandler in throw ConnectionFailure.connect("\(error)") }
    }
}

/// The client's connections made on one event loop: per node up to `size` pipelined
/// connections, made on first use and kept. A request goes to an idle connection, else to a new
/// one while the node has fewer than `size`, else to the least busy one. Requests issued on this
/// loop (a loop-bound task, or a future callback) are written without changing threads, and their
/// replies complete on the same thread.
///
/// `@unchecked Sendable`: the client shares it between threads only to hand work to its loop
/// (`execute`/`flatSubmit`); its state is touched on that loop alone.
final class LoopConnections: @unchecked Sendable {
    let loop: any EventLoop
    let size: Int

    private final class Node {
        let host: String
        let port: Int
        var handlers: [RomaChannelHandler] = []
        var connecting: [EventLoopFuture<RomaChannelHandler>] = []
        init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private var nodes: [String: Node] = [:]
    private var closed = false

    init(loop: any EventLoop, size: Int) {
        self.loop = loop
        self.size = max(1, size)
    }

    /// Sends `bytes` to node `nid` (`host_port`); `callback` gets the reply. On the loop only.
    func send(_ nid: String, _ bytes: ByteBuffer, shape: ReplyShape, timeout: TimeAmount, _ callback: @escaping ReplyCallback) {
        if closed { return callback(.failure(.closed)) }
        let node: Node
        if let n = nodes[nid] {
            node = n
        } else {
            guard let a = NodeAddress(nid) else { return callback(.failure(.connect("bad node id '\(nid)'"))) }
            node = Node(host: a.host, port: a.port)
            nodes[nid] = node
        }
        var best: RomaChannelHandler?
        var bestLoad = Int.max
        var dead = false
        for h in node.handlers {
            guard h.isOpen else { dead = true; continue }
            let load = h.inFlight
            if load < bestLoad { best = h; bestLoad = load }
            if load == 0 { break }
        }
        if dead { node.handlers.removeAll { !$0.isOpen } }
        if let best, bestLoad == 0 || node.handlers.count + node.connecting.count >= size {
            return best.send(bytes, shape: shape, timeout: timeout, callback)
        }
        let f: EventLoopFuture<RomaChannelHandler>
        if node.handlers.count + node.connecting.count >= size, let first = node.connecting.first {
            // Every slot is still connecting: wait for the first one.
            f = first
        } else {
            f = RomaChannelHandler.connect(host: node.host, port: node.port, loop: loop, timeout: timeout)
            node.connecting.append(f)
            f.assumeIsolated().whenComplete { [self] result in
                node.connecting.removeAll { $0 === f }
                if case .success(let h) = result {
                    if closed || nodes[nid] !== node { h.close() } else { node.handlers.append(h) }
                }
            }
        }
        f.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let h): h.send(bytes, shape: shape, timeout: timeout, callback)
            case .failure(let e): callback(.failure(e as? ConnectionFailure ?? .connect("\(e)")))
            }
        }
    }

    /// Closes the connections to `nid` (it left the routing table).
    func drop(_ nid: String) {
        guard let node = nodes.removeValue(forKey: nid) else { return }
        for h in node.handlers { h.close() }
        for f in node.connecting { f.whenSuccess { $0.close() } }
    }

    /// Closes everything and refuses new requests.
    func closeAll() {
        closed = true
        for nid in Array(nodes.keys) { drop(nid) }
    }

    /// Open connections to `nid` on this loop.
    func openConnections(_ nid: String) -> Int {
        nodes[nid]?.handlers.filter(\.isOpen).count ?? 0
    }
}
