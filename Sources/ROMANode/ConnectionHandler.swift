import NIOCore
import ROMAProtocol

/// Per-connection state the commands may change.
struct Session {
    /// The connection's default hash name (`defhash`, R3.17).
    var defaultHash = "roma"
    /// A confirmation prompt waiting for its answer line (`balse`, `shutdown_self`).
    var prompt: Prompt?

    enum Prompt { case balse, shutdown, shutdownSelf }
}

/// What the dispatcher asks the connection to do after a request.
enum Outcome {
    /// Go on with the next request.
    case next
    /// Send what is buffered, then close (`quit`, a refused prompt).
    case close
    /// Stop processing until the future delivers the reply bytes, then go on.
    case deferred(EventLoopFuture<ByteBuffer>)
    /// Send what is buffered, close, and stop the node (`balse`, `shutdown_self`).
    case closeAndStopNode(String)
    /// The connection now carries a vnode stream (`spushv`) until its terminator.
    case stream(VnodeStreamReceiver)
}

/// One client connection: connection → parse → dispatch (route + storage) → reply, all in this
/// handler, replies gathered in one buffer and flushed once per read batch.
///
/// Event-loop bound: NIO calls it only on its channel's loop.
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let node: Node
    private let dispatcher: Dispatcher
    private var parser: RequestParser
    private var input: ByteBuffer?
    private var output: ByteBuffer
    private var session = Session()
    private var paused = false
    /// The client is not reading its replies: stop reading and parsing until it catches up.
    private var writeBlocked = false
    private var closed = false
    private var shuttingDown = false
    private var context: ChannelHandlerContext?
    private var dataTimeout: Scheduled<Void>?
    private var drainTimer: Scheduled<Void>?
    /// A vnode stream being received (`spushv`), if any.
    private var stream: VnodeStreamReceiver?

    init(node: Node) {
        self.node = node
        self.dispatcher = Dispatcher(node: node)
        self.parser = RequestParser(limits: node.config.limits)
        self.output = ByteBufferAllocator().buffer(capacity: 0)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        dispatcher.cache.loop = context.eventLoop
        output = context.channel.allocator.buffer(capacity: 1024)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !node.register(context.channel) {
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        dataTimeout?.cancel()
        drainTimer?.cancel()
        node.unregister(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if input == nil || input!.readableBytes == 0 {
            input = bytes
        } else {
            input!.writeBuffer(&bytes)
        }
        process(context: context)
        if shuttingDown { scheduleDrainClose(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOutput(context: context)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Parses and executes everything buffered, until input runs out or a request defers.
    private func process(context: ChannelHandlerContext) {
        guard var buffer = input else { return }
        input = nil
        defer {
            if buffer.readableBytes > 0 {
                // Keep the unread tail; compact when most of the buffer is consumed.
                if buffer.readerIndex > 64 * 1024 { buffer.discardReadBytes() }
                input = buffer
            }
            updateDataTimeout(context: context)
        }
        while !paused && !closed && !writeBlocked {
            if let s = stream {
                do {
                    guard let reply = try s.consume(&buffer) else {
                        if s.more {
                            // Let the loop's other connections in, then go on.
                            context.eventLoop.assumeIsolated().execute { [self] in
                                guard !closed else { return }
                                process(context: context)
                                flushOutput(context: context)
                            }
                        }
                        return
                    }
                    stream = nil
                    node.logger.info("vnode \(s.vnode) of \(s.storage.name) received: \(s.applied) records stored, \(s.refused) older than ours kept out")
                    output.writeLine(reply)
                } catch {
                    node.logger.error("vnode stream \(s.vnode) broken: \(error); closing the connection")
                    output.writeLine("SERVER_ERROR \(error)")
                    _ = apply(.close, context: context)
                    return
                }
                continue
            }
            if let prompt = session.prompt {
                guard let answer = parser.nextRawLine(&buffer) else { return }
                session.prompt = nil
                let outcome = dispatcher.answer(prompt, line: answer, node: node, out: &output)
                if !apply(outcome, context: context) { return }
                continue
            }
            guard let event = parser.next(&buffer) else { return }
            let outcome: Outcome
            switch event {
            case .error(let line):
                output.writeLine(line)
                continue
            case .fatal(let line):
                output.writeLine(line)
                outcome = .close
            case .request(let request):
                outcome = dispatcher.execute(request, session: &session, out: &output)
            }
            if !apply(outcome, context: context) { return }
            // Large replies: hand them to the socket now rather than growing one huge buffer.
            if output.readableBytes >= 256 * 1024 { flushOutput(context: context) }
        }
    }

    /// Applies an outcome; false when processing must stop for now.
    private func apply(_ outcome: Outcome, context: ChannelHandlerContext) -> Bool {
        switch outcome {
        case .next:
            return true
        case .close:
            closeAfterFlush(context: context)
            return false
        case .stream(let s):
            stream = s
            return true
        case .closeAndStopNode(let reason):
            closeAfterFlush(context: context)
            node.shutdown(reason: reason)
            return false
        case .deferred(let future):
            paused = true
            flushOutput(context: context)
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                paused = false
                switch result {
                case .success(var reply): output.writeBuffer(&reply)
                case .failure(let error): output.writeLine("SERVER_ERROR \(error)")
                }
                guard !closed else { return }
                process(context: context)
                flushOutput(context: context)
            }
            return false
        }
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        if output.readableBytes > 0 {
            let out = output
            output = context.channel.allocator.buffer(capacity: 0)
            context.writeAndFlush(wrapOutboundOut(out)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func flushOutput(context: ChannelHandlerContext) {
        guard output.readableBytes > 0, !closed else { return }
        let out = output
        output = context.channel.allocator.buffer(capacity: 1024)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        if !context.channel.isWritable && !writeBlocked {
            // Backpressure: replies pile up unread, so read no more requests for now.
            writeBlocked = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && writeBlocked {
            writeBlocked = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            process(context: context)
            flushOutput(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// R3.2 with a real timer: a data block that stalls for longer than the read timeout closes
    /// the connection (nothing of it is stored).
    private func updateDataTimeout(context: ChannelHandlerContext) {
        if (parser.isAwaitingData || stream != nil) && !closed {
            dataTimeout?.cancel()
            // A vnode stream may pause longer (ROMA: 10 s × spushv_read_timeout).
            let seconds = node.config.dataReadTimeout * (stream != nil ? 10 : 1)
            dataTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { [self] in
                guard parser.isAwaitingData || stream != nil, !closed else { return }
                node.logger.info("closing connection: data block not completed within \(seconds) s")
                closeAfterFlush(context: context)
            }
        } else if let t = dataTimeout {
            t.cancel()
            dataTimeout = nil
        }
    }

    // MARK: - Graceful shutdown

    /// Called by the node: answer what was already received, then close once the client has been
    /// quiet for a moment (at most the node's grace period).
    func beginShutdown() {
        guard let context, !closed else { return }
        shuttingDown = true
        process(context: context)
        flushOutput(context: context)
        scheduleDrainClose(context: context)
    }

    private func scheduleDrainClose(context: ChannelHandlerContext) {
        drainTimer?.cancel()
        drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(150)) { [self] in
            guard !paused else { scheduleDrainClose(context: context); return }
            closeAfterFlush(context: context)
        }
    }
}
