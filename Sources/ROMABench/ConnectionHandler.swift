import NIOCore
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Monotonic clock shared with `NIODeadline` (timers and timestamps use the same time base).
@inline(__always)
func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// A small, fast PRNG (SplitMix64); one per connection, so no locking.
struct FastRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (Lemire's multiply-high; bias below 2^-32 for our bounds).
    @inline(__always)
    mutating func next(below bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

/// The next key for `--key-order sequential`, shared by every connection.
final class SequenceCounter: Sendable {
    private let value = Atomic<Int>(0)

    @inline(__always)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }

    var issued: Int { value.load(ordering: .relaxed) }
}

/// What one connection does in one phase. Times are `nowNanoseconds()` values.
struct PhaseSpec: Sendable {
    enum Kind: Sendable { case preload, run, verify }

    var kind: Kind
    var connectionIndex: Int
    var connectionCount: Int
    var pipeline: Int
    var mix: Mix
    var keys: Int
    var keyOrder: KeyOrder
    var counter: SequenceCounter?
    /// Measured requests this connection may issue (nil: time-bounded only).
    var quota: Int?
    var startNs: UInt64
    var warmupEndNs: UInt64
    /// No request is issued at or after this time.
    var endNs: UInt64
    /// Open loop: nanoseconds between this connection's intended send times.
    var intervalNs: Double?
    var firstOffsetNs: Double
    var drainTimeoutNs: UInt64
    var seed: UInt64
    var control: RunControl
}

struct ConnectionPhaseResult: Sendable {
    var issuedMeasured: Int = 0
    var lastReplyNs: UInt64 = 0
    /// When this connection stopped issuing (end of its measured window).
    var stoppedNs: UInt64 = 0
    var quotaDone = false
    /// The channel was closed and its handler removed before the phase started.
    var handlerGone = false
}

/// One benchmark connection: issues requests from pre-encoded templates, keeps up to
/// `pipeline` of them in flight, parses replies in place from the receive buffer and records
/// each latency in the event loop's `LoopStats`. Lives entirely on its channel's event loop.
final class BenchConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let stats: LoopStats
    private let templates: RequestTemplates
    private var context: ChannelHandlerContext?
    private var out: ByteBuffer
    private var pendingBytes: ByteBuffer

    // In-flight requests, oldest first (a ring of `pipeline` slots).
    private var pSend: [UInt64] = []
    private var pTag: [UInt8] = []
    private var pKey: [Int] = []
    private var pHead = 0
    private var pCount = 0

    private var spec: PhaseSpec?
    private var promise: EventLoopPromise<ConnectionPhaseResult>?
    private var rng = FastRandom(seed: 1)
    private var issuedMeasured = 0
    private var issuedTotal = 0
    private var stopped = false
    private var stoppedNs: UInt64 = 0
    private var lastReplyNs: UInt64 = 0
    private var quotaDone = false
    private var nextIntended = 0
    private var tickScheduled = false
    private var endTask: Scheduled<Void>?
    private var drainTask: Scheduled<Void>?
    private var tickTask: Scheduled<Void>?
    private var isClosed = false
    private var closingOnPurpose = false
    private var verifying = false

    private static let measuredBit: UInt8 = 0x80
    private static let markedBit: UInt8 = 0x40
    private static let baselineBit: UInt8 = 0x20
    private var control: RunControl?

    /// `--log-slow-us` in nanoseconds; 0 = off.
    private let slowNs: UInt64

    init(stats: LoopStats, templates: RequestTemplates, logSlowMicroseconds: Int? = nil) {
        self.stats = stats
        self.templates = templates
        self.slowNs = logSlowMicroseconds.map { UInt64($0) * 1000 } ?? 0
        let allocator = ByteBufferAllocator()
        out = allocator.buffer(capacity: 16 * 1024)
        pendingBytes = allocator.buffer(capacity: 0)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        if spec != nil {
            if !closingOnPurpose { stats.snapshot.counters.errors.connection += 1 }
            dropPending()
            finish()
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let now = nowNanoseconds()
        var incoming = unwrapInboundIn(data)
        let fatal: Bool
        if pendingBytes.readableBytes == 0 {
            fatal = process(&incoming, now: now)
            if incoming.readableBytes > 0 { pendingBytes = incoming }
        } else {
            pendingBytes.writeBuffer(&incoming)
            fatal = process(&pendingBytes, now: now)
            if pendingBytes.readableBytes == 0 {
                pendingBytes.clear()
            } else if pendingBytes.readerIndex > 64 * 1024 {
                pendingBytes.discardReadBytes()
            }
        }
        if fatal {
            closeOnPurpose()
            return
        }
        guard spec != nil else { return }
        if !stopped {
            issueMore(now: now)
        } else if pCount == 0 {
            finish()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush()
    }

    // MARK: Phase control (called on the event loop)

    /// Starts a phase; the future completes when every issued request is answered (or lost).
    func start(_ newSpec: PhaseSpec, eventLoop: EventLoop) -> EventLoopFuture<ConnectionPhaseResult> {
        let promise = eventLoop.makePromise(of: ConnectionPhaseResult.self)
        guard !isClosed, context != nil else {
            stats.snapshot.counters.errors.connection += 1
            promise.succeed(ConnectionPhaseResult(stoppedNs: newSpec.startNs))
            return promise.futureResult
        }
        spec = newSpec
        control = newSpec.control
        verifying = newSpec.kind == .verify
        self.promise = promise
        rng = FastRandom(seed: newSpec.seed)
        issuedMeasured = 0
        issuedTotal = 0
        stopped = false
        stoppedNs = 0
        lastReplyNs = 0
        quotaDone = false
        nextIntended = 0
        tickScheduled = false
        if pSend.count != newSpec.pipeline {
            pSend = [UInt64](repeating: 0, count: newSpec.pipeline)
            pTag = [UInt8](repeating: 0, count: newSpec.pipeline)
            pKey = [Int](repeating: 0, count: newSpec.pipeline)
        }
        pHead = 0
        pCount = 0
        let isolated = eventLoop.assumeIsolated()
        endTask = isolated.scheduleTask(deadline: .uptimeNanoseconds(newSpec.endNs)) { [self] in
            self.endTask = nil
            if !self.stopped { self.stopIssuing(at: newSpec.endNs) }
            self.flush()
        }
        issueMore(now: nowNanoseconds())
        flush()
        return promise.futureResult
    }

    /// Stops issuing now (SIGINT); outstanding replies are still awaited.
    func stopEarly() {
        guard spec != nil, !stopped else { return }
        stopIssuing(at: nowNanoseconds())
        flush()
    }

    func closeOnPurpose() {
        closingOnPurpose = true
        context?.close(promise: nil)
    }

    // MARK: Issuing

    @inline(__always)
    /// The next key to request, or nil (and issuing stopped) when the request quota or the key
    /// sequence is exhausted.
    private func nextKeyWithinQuota(_ spec: PhaseSpec, measured: Bool, now: UInt64) -> Int? {
        if measured, let quota = spec.quota, issuedMeasured >= quota {
            quotaDone = true
            stopIssuing(at: now)
            return nil
        }
        guard let key = nextKey(spec) else {
            quotaDone = true
            stopIssuing(at: now)
            return nil
        }
        return key
    }

    private func nextKey(_ spec: PhaseSpec) -> Int? {
        switch spec.kind {
        case .preload, .verify:
            let k = spec.connectionIndex + issuedTotal * spec.connectionCount
            return k < spec.keys ? k : nil
        case .run:
            switch spec.keyOrder {
            case .random:
                return rng.next(below: spec.keys)
            case .sequential:
                return (spec.counter?.next() ?? issuedTotal) % spec.keys
            }
        }
    }

    @inline(__always)
    private func nextOp(_ spec: PhaseSpec) -> OpKind {
        switch spec.kind {
        case .preload: return .set
        case .verify: return .get
        case .run:
            if let only = spec.mix.onlyKind { return only }
            return spec.mix.pick(rng.next(below: spec.mix.total))
        }
    }

    private func issueMore(now: UInt64) {
        guard let spec, !stopped else { return }
        if spec.control.isStopped {
            stopIssuing(at: now)
            return
        }
        if let interval = spec.intervalNs {
            issueDueOpenLoop(spec, interval: interval, now: now)
        } else {
            fillClosedLoop(spec, now: now)
        }
    }

    private func fillClosedLoop(_ spec: PhaseSpec, now: UInt64) {
        if now >= spec.endNs {
            stopIssuing(at: spec.endNs)
            return
        }
        let measured = now >= spec.warmupEndNs
        while pCount < spec.pipeline {
            guard let key = nextKeyWithinQuota(spec, measured: measured, now: now) else { return }
            issue(nextOp(spec), key: key, sendNs: now, measured: measured)
        }
    }

    private func issueDueOpenLoop(_ spec: PhaseSpec, interval: Double, now: UInt64) {
        while pCount < spec.pipeline {
            let intended = spec.startNs &+ UInt64(spec.firstOffsetNs + Double(nextIntended) * interval)
            if intended >= spec.endNs {
                stopIssuing(at: spec.endNs)
                return
            }
            if intended > now {
                scheduleTick(at: intended)
                return
            }
            let measured = intended >= spec.warmupEndNs
            guard let key = nextKeyWithinQuota(spec, measured: measured, now: now) else { return }
            // Latency counts from the intended send time: a late send (server stalled, window
            // full) is charged to the server, not hidden (no coordinated omission).
            issue(nextOp(spec), key: key, sendNs: intended, measured: measured)
            nextIntended += 1
        }
        // Window full: the next reply calls back here.
    }

    private func scheduleTick(at deadline: UInt64) {
        guard !tickScheduled, let context else { return }
        tickScheduled = true
        tickTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) { [self] in
            self.tickScheduled = false
            self.tickTask = nil
            self.issueMore(now: nowNanoseconds())
            self.flush()
        }
    }

    @inline(__always)
    private func issue(_ op: OpKind, key: Int, sendNs: UInt64, measured: Bool) {
        templates.write(op, key: key, into: &out)
        let slot = (pHead + pCount) % pSend.count
        pSend[slot] = sendNs
        let marked = control?.mark.isOpen == true ? Self.markedBit : 0
        let baseline = control?.baseline.isOpen == true ? Self.baselineBit : 0
        pTag[slot] = op.rawValue | (measured ? Self.measuredBit : 0) | marked | baseline
        pKey[slot] = key
        pCount += 1
        issuedTotal += 1
        if measured { issuedMeasured += 1 }
    }

    private func flush() {
        guard out.readableBytes > 0, let context else { return }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        // The channel usually writes the bytes synchronously and drops its reference, so the
        // same storage is reused for the next batch; if not, the next write copies on write.
        out.clear()
    }

    private func stopIssuing(at time: UInt64) {
        guard !stopped, let spec else { return }
        stopped = true
        stoppedNs = time
        tickTask?.cancel()
        tickTask = nil
        tickScheduled = false
        if pCount == 0 {
            finish()
            return
        }
        guard drainTask == nil, let context else { return }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(spec.drainTimeoutNs))
        drainTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.drainTask = nil
            guard self.spec != nil else { return }
            // No reply in time: the reply stream is no longer trustworthy, drop the connection.
            self.dropPending()
            self.finish()
            self.closeOnPurpose()
        }
    }

    private func dropPending() {
        stats.snapshot.counters.errors.unanswered += UInt64(pCount)
        pCount = 0
        pHead = 0
    }

    private func finish() {
        guard spec != nil else { return }
        endTask?.cancel()
        endTask = nil
        drainTask?.cancel()
        drainTask = nil
        tickTask?.cancel()
        tickTask = nil
        tickScheduled = false
        let result = ConnectionPhaseResult(
            issuedMeasured: issuedMeasured,
            lastReplyNs: lastReplyNs,
            stoppedNs: stopped ? stoppedNs : nowNanoseconds(),
            quotaDone: quotaDone
        )
        spec = nil
        let p = promise
        promise = nil
        p?.succeed(result)
    }

    // MARK: Replies

    /// Handles every complete reply in `buffer`; returns true if the stream is broken.
    private func process(_ buffer: inout ByteBuffer, now: UInt64) -> Bool {
        var fatal = false
        let consumed = buffer.withUnsafeReadableBytes { raw -> Int in
            var offset = 0
            while let reply = ReplyParser.parse(raw, from: offset) {
                if !handle(reply, raw: raw, at: offset, now: now) {
                    fatal = true
                    offset += reply.length
                    break
                }
                offset += reply.length
            }
            return offset
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        return fatal
    }

    /// Accounts one reply to the oldest in-flight request; false if the stream is broken.
    @inline(__always)
    private func handle(_ reply: ParsedReply, raw: UnsafeRawBufferPointer, at offset: Int, now: UInt64) -> Bool {
        guard pCount > 0 else {
            // A reply nobody asked for.
            stats.snapshot.counters.errors.unexpected += 1
            return false
        }
        let sendNs = pSend[pHead]
        let tag = pTag[pHead]
        let key = pKey[pHead]
        pHead += 1
        if pHead == pSend.count { pHead = 0 }
        pCount -= 1

        let op = OpKind(rawValue: tag & 0x3) ?? .get
        let measured = tag & Self.measuredBit != 0
        var inSync = true
        var c = stats.snapshot.counters
        switch reply.kind {
        case .value where op == .get:
            if measured { c.hits += 1 }
            if verifying {
                let data = UnsafeRawBufferPointer(rebasing: raw[(offset + reply.valueOffset)..<(offset + reply.valueOffset + reply.valueLength)])
                if templates.valueMatches(key: key, data) { c.verified += 1 } else { c.mismatched += 1 }
            }
        case .end where op == .get:
            if measured { c.misses += 1 }
        case .stored where op == .set:
            break
        case .deleted where op == .delete:
            break
        case .notFound where op == .delete:
            if measured { c.deleteMisses += 1 }
        case .notStored where op == .set:
            c.errors.notStored += 1
        case .error:
            c.errors.error += 1
        case .clientError:
            c.errors.clientError += 1
        case .serverError:
            c.errors.serverError += 1
        case .exists, .notStored, .notFound:
            // A known single-line reply that does not fit the request: count it, stay in sync.
            c.errors.unexpected += 1
        case .value, .end, .stored, .deleted, .unexpected:
            c.errors.unexpected += 1
            inSync = false
        }
        if measured {
            c.ops += 1
            switch op {
            case .get: c.gets += 1
            case .set: c.sets += 1
            case .delete: c.deletes += 1
            }
            lastReplyNs = now
        } else {
            c.warmupOps += 1
        }
        stats.snapshot.counters = c
        if measured {
            stats.record(op, latency: now > sendNs ? now - sendNs : 0, marked: tag & Self.markedBit != 0,
                         baseline: tag & Self.baselineBit != 0)
            if slowNs > 0, now > sendNs, now - sendNs > slowNs { logSlow(sentAt: sendNs, latency: now - sendNs) }
        }
        return inSync
    }

    /// `slow <send time: CLOCK_MONOTONIC ns> <latency µs>` on stderr, one write per line, so that
    /// slow requests can be lined up with a kernel trace (ftrace's `mono` clock) taken meanwhile.
    private func logSlow(sentAt: UInt64, latency: UInt64) {
        let line = "slow \(sentAt) \(latency / 1000)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
    }
}
