#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ROMAProtocol

/// Per-connection state the commands may change.
struct Session {
    /// The connection's default hash name (`defhash`, R3.17).
    var defaultHash = Session.initialHash
    /// The default hash of a new connection (ROMA's `@defhash`).
    static let initialHash = "roma"
    /// A confirmation prompt waiting for its answer line (`balse`, `shutdown_self`).
    var prompt: Prompt?
    /// The client's address (`RTTABLE_SUB_NID` chooses the node ids it sees by it).
    var clientAddress: String?

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
    /// The request's effect is in place here and only its reply waits (a primary write waiting
    /// for its replicas): go on with the next requests; the reply is sent in its turn once the
    /// future delivers it.
    case replicating(EventLoopFuture<ByteBuffer>)
    /// Send what is buffered, close, and stop the node (`shutdown_self`, `rbalse`).
    case closeAndStopNode(String)
    /// Send the reply the future delivers (in its turn), close, and stop the node (`balse` and
    /// `shutdown`, whose reply waits for the other nodes' answers to `rbalse`/`rshutdown`).
    case replyThenStopNode(EventLoopFuture<ByteBuffer>, String)
    /// The connection now carries a vnode stream (`spushv`) until its terminator.
    case stream(VnodeStreamReceiver)
    /// The connection sends a file (`fileseed file`, a division file for a joining node), then
    /// goes on with the next request.
    case sendFile(FileSend)
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
    /// The command of the request being executed (named by a `hilatency` warning).
    private var lastCommand: Command?
    /// When the client last sent something (`accepted_connection_expire_time`).
    private var lastAccess = NIODeadline.now()
    /// Records of the stream are being stored off the loop (reading is paused).
    private var streamBusy = false
    /// Leading bytes of the input known to hold no complete record (the part of one): the
    /// stream waits for more before it hands the input off again.
    private var streamHeld = 0
    /// Replies not sent yet because an earlier one (`.replicating`) is still waiting, in request
    /// order: nil bytes = still waiting. While it is not empty, new replies queue behind it.
    private var queued = CircularBuffer<QueuedReply>()
    /// Replies still waiting in `queued`.
    private var waiting = 0
    /// At most this many replies wait at once per connection; then reading pauses.
    static let maxWaiting = 128
    /// Close (or close and stop the node) once the queued replies are out.
    private var closeWhenDrained: String??
    /// Flushes at the end of the event-loop turn (`flushSoon`).
    private let turnFlush = FlushAtTurnEnd()

    private final class QueuedReply {
        var bytes: ByteBuffer?
        init(_ bytes: ByteBuffer?) { self.bytes = bytes }
    }

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
        session.clientAddress = context.channel.remoteAddress?.ipAddress
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
        lastAccess = .now()
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
        while !paused && !closed && !writeBlocked && waiting < Self.maxWaiting && closeWhenDrained == nil {
            let mark = output.writerIndex
            defer { if !queued.isEmpty { queueOutput(from: mark) } }
            if let s = stream {
                // The records go to storage on a background thread, not on this loop (a vnode
                // stream shares its loop with client connections); reading pauses meanwhile.
                if !streamBusy && buffer.readableBytes > streamHeld {
                    applyStream(s, buffer, context: context)
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                }
                return
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
                lastCommand = request.command
                // Timed only while the latency statistics are on (a deferred reply is timed in `apply`).
                let started = node.settings.latencyOn.load(ordering: .relaxed) ? NIODeadline.now() : nil
                outcome = dispatcher.execute(request, session: &session, out: &output)
                if let started, case .next = outcome {
                    node.noteLatencyStatistics(lastCommand, seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9)
                }
            }
            if !apply(outcome, context: context) { return }
            // R3.6: over the continuous limit, a client command may be the connection's last.
            if let c = lastCommand, c.isDataCommand, !c.isPeerForm, node.settings.shouldShed(open: node.openConnections) {
                lastCommand = nil
                output.writeStaticString("ERROR\r\n")
                node.logger.warning("Connection count > \(node.settings.continuousLimit.start):closed")
                _ = apply(.close, context: context)
                return
            }
            // Large replies: hand them to the socket now rather than growing one huge buffer.
            if output.readableBytes >= 256 * 1024 { flushOutput(context: context) }
        }
    }

    /// Stores the complete records of `chunk` on a background thread; then goes on with what is
    /// left (a partial record, bytes after the terminator) and what arrived meanwhile.
    private func applyStream(_ s: VnodeStreamReceiver, _ chunk: ByteBuffer, context: ChannelHandlerContext) {
        streamBusy = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        node.background(on: context.eventLoop, onStreamPool: true) { () throws -> StreamStep in
            var b = chunk
            let reply = try s.consume(&b, limit: Int.max)
            return StreamStep(reply: reply, rest: b)
        }.assumeIsolated().whenComplete { [self] result in
            streamBusy = false
            if !writeBlocked && !closed { context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
            switch result {
            case .success(let step):
                var rest = step.rest
                // What is left is less than one record (or, after the terminator, requests).
                streamHeld = step.reply == nil ? rest.readableBytes : 0
                if var newer = input, newer.readableBytes > 0 { rest.writeBuffer(&newer) }
                input = rest.readableBytes > 0 ? rest : nil
                if let reply = step.reply {
                    stream = nil
                    node.logger.info("vnode \(s.vnode) of \(s.storage.name) received: \(s.applied) records stored, \(s.refused) older than ours kept out")
                    node.pulls.withLockedValue { $0.received[UInt64(s.vnode)] = Node.monotonicNow() }
                    output.writeLine(reply)
                }
            case .failure(let error):
                node.logger.error("vnode stream \(s.vnode) broken: \(error); closing the connection")
                stream = nil
                output.writeLine("SERVER_ERROR \(error)")
                closeAfterFlush(context: context)
                return
            }
            guard !closed else { return }
            process(context: context)
            flushOutput(context: context)
        }
    }

    private struct StreamStep: Sendable {
        let reply: String?
        let rest: ByteBuffer
    }

    /// Moves the replies written to `output` since `mark` into the queue (an earlier reply is
    /// still waiting).
    private func queueOutput(from mark: Int) {
        guard output.writerIndex > mark, let tail = output.getSlice(at: mark, length: output.writerIndex - mark) else { return }
        output.moveWriterIndex(to: mark)
        queued.append(QueuedReply(tail))
    }

    /// A waiting reply arrived: send what is now in order, and go on reading if we had stopped.
    private func drainQueue(context: ChannelHandlerContext) {
        while let head = queued.first, var bytes = head.bytes {
            queued.removeFirst()
            output.writeBuffer(&bytes)
        }
        guard !closed else { return }
        if queued.isEmpty, let reason = closeWhenDrained {
            closeWhenDrained = nil
            closeAfterFlush(context: context)
            if let reason { node.shutdown(reason: reason) }
            return
        }
        process(context: context)
        flushSoon(context: context)
    }

    /// Flushes at the end of this event-loop turn: replies that complete together (the replica
    /// answers or forwarded replies one read from a peer brought) leave in one write.
    private func flushSoon(context: ChannelHandlerContext) {
        turnFlush.request(on: context.eventLoop) { [self] in flushOutput(context: context) }
    }

    /// Applies an outcome; false when processing must stop for now.
    private func apply(_ outcome: Outcome, context: ChannelHandlerContext) -> Bool {
        switch outcome {
        case .next:
            return true
        case .replicating(let future):
            let slot = QueuedReply(nil)
            queued.append(slot)
            waiting += 1
            let (started, command) = (NIODeadline.now(), lastCommand)
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                node.noteLatency(command, since: started)
                waiting -= 1
                switch result {
                case .success(let reply): slot.bytes = reply
                case .failure(let error):
                    var b = ByteBuffer()
                    b.writeLine("SERVER_ERROR \(error)")
                    slot.bytes = b
                }
                drainQueue(context: context)
            }
            return true
        case .replyThenStopNode(let future, let reason):
            // Set first: a future already complete drains the queue inside apply(.replicating).
            closeWhenDrained = .some(reason)
            _ = apply(.replicating(future), context: context)
            return false
        case .close where !queued.isEmpty:
            closeWhenDrained = .some(nil)
            return false
        case .closeAndStopNode(let reason) where !queued.isEmpty:
            closeWhenDrained = .some(reason)
            return false
        case .close:
            closeAfterFlush(context: context)
            return false
        case .stream(let s):
            stream = s
            streamHeld = 0
            return true
        case .sendFile(let file):
            let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
            let stop = apply(.deferred(promise.futureResult), context: context)
            let channel = context.channel
            node.background {
                do { try file.start(on: channel).cascade(to: promise) } catch { promise.fail(error) }
            }
            return stop
        case .closeAndStopNode(let reason):
            closeAfterFlush(context: context)
            node.shutdown(reason: reason)
            return false
        case .deferred(let future):
            paused = true
            flushOutput(context: context)
            // Behind replies still waiting, this one takes its place in the queue too.
            let slot: QueuedReply? = queued.isEmpty ? nil : QueuedReply(nil)
            if let slot { queued.append(slot) }
            // A future already complete (a relayed command on a node without peers) would run
            // this inside the current `process`, whose requests are out of `input` meanwhile:
            // the continuation then waits for the next loop turn.
            var inline = true
            defer { inline = false }
            let (started, command) = (NIODeadline.now(), lastCommand)
            future.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                node.noteLatency(command, since: started)
                if inline {
                    context.eventLoop.assumeIsolated().execute { [self] in resumeDeferred(result, slot: slot, context: context) }
                } else {
                    resumeDeferred(result, slot: slot, context: context)
                }
            }
            return false
        }
    }

    /// The reply of a `.deferred` outcome arrived: send it (in its turn), then go on reading.
    private func resumeDeferred(_ result: Result<ByteBuffer, any Error>, slot: QueuedReply?, context: ChannelHandlerContext) {
        paused = false
        var reply: ByteBuffer
        switch result {
        case .success(let r): reply = r
        case .failure(let error):
            reply = ByteBuffer()
            reply.writeLine("SERVER_ERROR \(error)")
        }
        if let slot {
            slot.bytes = reply
            drainQueue(context: context)
            return
        }
        output.writeBuffer(&reply)
        guard !closed else { return }
        process(context: context)
        flushSoon(context: context)
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
            if !streamBusy { context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
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
            // A vnode stream may pause longer: `spushv_read_timeout` times as long (ROMA's 10 s × 100).
            let seconds = node.config.dataReadTimeout * (stream != nil ? Double(node.settings.spushvReadTimeout.load(ordering: .relaxed)) : 1)
            // At most about 30 years: a setting that large means never, and must not overflow.
            dataTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(min(seconds * 1000, 1e12)))) { [self] in
                guard parser.isAwaitingData || stream != nil, !closed else { return }
                // Records being stored are not a stalled stream: look again after them.
                if streamBusy { return updateDataTimeout(context: context) }
                node.logger.info("closing connection: data block not completed within \(seconds) s")
                closeAfterFlush(context: context)
            }
        } else if let t = dataTimeout {
            t.cancel()
            dataTimeout = nil
        }
    }

    /// R3.6's sweep: closes the connection when the client sent nothing for longer than
    /// `seconds` and nothing of it is still being answered or received.
    func closeIfIdle(longerThan seconds: Int) {
        guard let context, !closed, !paused, queued.isEmpty, stream == nil, !parser.isAwaitingData,
              NIODeadline.now() - lastAccess > .seconds(Int64(min(seconds, 1 << 31))) else { return }
        let peer = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        node.logger.info("connection expired from \(peer),lastcmd = \(lastCommand?.name ?? "")")
        closeAfterFlush(context: context)
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
            guard !paused && queued.isEmpty else { scheduleDrainClose(context: context); return }
            closeAfterFlush(context: context)
        }
    }
}
