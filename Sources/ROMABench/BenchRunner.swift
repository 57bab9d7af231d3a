import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum BenchError: Error, CustomStringConvertible {
    case connect(String)
    case remote(String)

    public var description: String {
        switch self {
        case .connect(let m): return m
        case .remote(let m): return m
        }
    }
}

/// A window opened and closed from outside the event loops (a signal): requests issued while it
/// is open are also recorded in a histogram of their own.
final class ControlWindow: Sendable {
    private let openFlag = Atomic<Bool>(false)
    private let toggles = Atomic<Int>(0)

    @inline(__always)
    var isOpen: Bool { openFlag.load(ordering: .relaxed) }
    /// Whether it was ever opened (the report then has its histogram).
    var wasOpened: Bool { toggles.load(ordering: .relaxed) > 0 }

    /// Opens or closes it; returns whether it is now open.
    func toggle() -> Bool {
        _ = toggles.wrappingAdd(1, ordering: .relaxed)
        return !openFlag.logicalXor(true, ordering: .relaxed).oldValue
    }
}

/// Flags the runner sets from outside the event loops (signals); connections read them.
final class RunControl: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    /// SIGUSR1: reported as `latency_us_marked` (e.g. the time a snapshot ran).
    let mark = ControlWindow()
    /// SIGUSR2: reported as `latency_us_baseline` (e.g. the time just before each snapshot).
    let baseline = ControlWindow()

    /// `requestStop`: connections stop issuing.
    var isStopped: Bool { stopFlag.load(ordering: .relaxed) }
    func stop() { stopFlag.store(true, ordering: .relaxed) }
}

/// Connects, runs the phases (preload, run or verify) and builds the report.
public final class BenchRunner: Sendable {
    public let options: BenchOptions
    private let control = RunControl()
    private let channels = Mutex<[Channel]>([])
    private let stopRequests = Atomic<Int>(0)

    public init(options: BenchOptions) {
        self.options = options
    }

    /// Stops the load now (SIGINT/SIGTERM): outstanding replies are awaited, the report covers
    /// the time until now. Returns how many times a stop was requested.
    @discardableResult
    public func requestStop() -> Int {
        let n = stopRequests.wrappingAdd(1, ordering: .relaxed).newValue
        control.stop()
        let current = channels.withLock { $0 }
        for channel in current {
            channel.eventLoop.execute {
                (try? channel.pipeline.syncOperations.handler(type: BenchConnectionHandler.self))?.stopEarly()
            }
        }
        return n
    }

    /// Opens or closes the marked window (SIGUSR1): requests issued inside it are also reported
    /// as `latency_us_marked`, e.g. to isolate the latency while a snapshot runs. Returns whether
    /// the window is now open.
    @discardableResult
    public func toggleMark() -> Bool {
        control.mark.toggle()
    }

    /// Opens or closes the baseline window (SIGUSR2): requests issued inside it are also reported
    /// as `latency_us_baseline`. Returns whether the window is now open.
    @discardableResult
    public func toggleBaseline() -> Bool {
        control.baseline.toggle()
    }

    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> BenchReport {
        try options.validate()
        let o = options
        if o.cluster || !o.seeds.isEmpty {
            return try await ClusterRunner(options: o, control: control).run(progress: progress)
        }
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(o.host, port: o.port)
        } catch {
            throw BenchError.connect("cannot resolve \(o.host): \(error)")
        }
        if !o.allowRemote {
            guard let ip = address.ipAddress, Loopback.isLoopbackHost(ip) else {
                throw BenchError.remote("refusing \(o.host) (\(address.ipAddress ?? "?")): not a loopback address; use --allow-remote")
            }
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: o.threads)
        do {
            let report = try await runOn(group: group, address: address, progress: progress)
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func runOn(group: MultiThreadedEventLoopGroup, address: SocketAddress, progress: @escaping @Sendable (String) -> Void) async throws -> BenchReport {
        let o = options
        let templates = RequestTemplates(keyPrefix: o.keyPrefix, valueSize: o.valueSize)
        var loops: [EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        var loopStats: [NIOLoopBound<LoopStats>] = []
        for loop in loops {
            loopStats.append(try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get())
        }

        // Connect every connection (round-robin over the event loops).
        var connects: [EventLoopFuture<Channel>] = []
        for i in 0..<o.connections {
            let loopIndex = i % loops.count
            let bound = loopStats[loopIndex]
            let bootstrap = ClientBootstrap(group: loops[loopIndex])
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.milliseconds(Int64(o.connectTimeout * 1000)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            BenchConnectionHandler(stats: bound.value, templates: templates, logSlowMicroseconds: o.logSlowMicroseconds))
                    }
                }
            connects.append(bootstrap.connect(to: address))
        }
        var connected: [Channel] = []
        var connectError: Error?
        for f in connects {
            do { connected.append(try await f.get()) } catch { connectError = connectError ?? error }
        }
        channels.withLock { $0 = connected }
        defer {
            for ch in connected { ch.close(promise: nil) }
        }
        if let connectError {
            throw BenchError.connect("cannot connect to \(o.host):\(o.port): \(connectError)")
        }
        progress("connected \(connected.count) connection\(connected.count == 1 ? "" : "s") to \(o.host):\(o.port)")

        let capNs = UInt64(BenchLimits.maxSeconds * 1e9)
        let drainNs = UInt64(o.drainTimeout * 1e9)
        let baseSeed = o.seed ?? UInt64(truncatingIfNeeded: nowNanoseconds()) ^ 0x5DEE_CE66_D1CE_4E5B
        var allErrors = ErrorCounts()
        var preloadSummary: PreloadSummary?
        var verifySummary: VerifySummary?
        var snapshot = StatsSnapshot()
        var windowSeconds = 0.0
        var counter: SequenceCounter?

        // Preload: set every key once (strided over the connections, deep pipeline).
        if o.mode == .preloadOnly || (o.mode == .run && o.preload) {
            progress("preloading \(o.keys) keys of \(o.valueSize) bytes")
            let start = nowNanoseconds()
            let depth = max(o.pipeline, 32)
            let (s, _) = try await runPhase(connected, loops: loops, stats: loopStats) { i in
                PhaseSpec(kind: .preload, connectionIndex: i, connectionCount: connected.count, pipeline: depth, mix: o.mix,
                          keys: o.keys, keyOrder: .sequential, counter: nil, quota: nil, startNs: start, warmupEndNs: start,
                          endNs: start + capNs, intervalNs: nil, firstOffsetNs: 0, drainTimeoutNs: drainNs, seed: baseSeed &+ UInt64(i),
                          control: self.control)
            }
            let seconds = Double(nowNanoseconds() - start) / 1e9
            preloadSummary = PreloadSummary(keys: o.keys, seconds: seconds, setsPerSec: seconds > 0 ? Double(s.counters.sets) / seconds : 0,
                                            errors: s.counters.errors, errorsTotal: s.counters.errors.total)
            allErrors.add(s.counters.errors)
            progress("preloaded \(o.keys) keys in \(BenchReport.fmt(seconds, 2)) s, errors \(s.counters.errors.total)")
            if o.mode == .preloadOnly { snapshot = s; windowSeconds = seconds }
        }

        if o.mode == .verify && !control.isStopped {
            progress("verifying \(o.keys) keys")
            let start = nowNanoseconds()
            let depth = max(o.pipeline, 32)
            let (s, _) = try await runPhase(connected, loops: loops, stats: loopStats) { i in
                PhaseSpec(kind: .verify, connectionIndex: i, connectionCount: connected.count, pipeline: depth, mix: o.mix,
                          keys: o.keys, keyOrder: .sequential, counter: nil, quota: nil, startNs: start, warmupEndNs: start,
                          endNs: start + capNs, intervalNs: nil, firstOffsetNs: 0, drainTimeoutNs: drainNs, seed: baseSeed &+ UInt64(i),
                          control: self.control)
            }
            windowSeconds = Double(nowNanoseconds() - start) / 1e9
            snapshot = s
            allErrors.add(s.counters.errors)
            let checked = s.counters.verified + s.counters.mismatched + s.counters.misses
            verifySummary = VerifySummary(keys: o.keys, ok: s.counters.verified, missing: s.counters.misses,
                                          mismatched: s.counters.mismatched,
                                          unchecked: UInt64(o.keys) > checked ? UInt64(o.keys) - checked : 0)
        }

        if o.mode == .run && !control.isStopped {
            if o.keyOrder == .sequential { counter = SequenceCounter() }
            let seq = counter
            let start = nowNanoseconds()
            let warmupEnd = start + UInt64(o.warmup * 1e9)
            let end = warmupEnd + UInt64(o.timeLimit * 1e9)
            let n = connected.count
            var interval: Double?
            if let rate = o.rate { interval = 1e9 * Double(n) / rate }
            progress("running \(o.isTimeBounded ? "\(BenchReport.fmt(o.timeLimit)) s" : "\(o.requests ?? 0) requests")"
                     + (o.warmup > 0 ? " after \(BenchReport.fmt(o.warmup)) s warmup" : ""))
            let (s, results) = try await runPhase(connected, loops: loops, stats: loopStats) { i in
                var quota: Int?
                if let requests = o.requests { quota = requests / n + (i < requests % n ? 1 : 0) }
                return PhaseSpec(kind: .run, connectionIndex: i, connectionCount: n, pipeline: o.pipeline, mix: o.mix,
                                 keys: o.keys, keyOrder: o.keyOrder, counter: seq, quota: quota, startNs: start, warmupEndNs: warmupEnd,
                                 endNs: end, intervalNs: interval, firstOffsetNs: (interval ?? 0) * Double(i) / Double(n),
                                 drainTimeoutNs: drainNs, seed: baseSeed &+ UInt64(i) &* 0x9E37_79B9, control: self.control)
            }
            snapshot = s
            allErrors.add(s.counters.errors)
            // The measured window: from the end of warmup to when issuing stopped (time bound or
            // signal), or to the last reply when every connection finished its request quota.
            let allQuotasDone = !results.isEmpty && results.allSatisfy(\.quotaDone)
            var windowEnd: UInt64
            if allQuotasDone {
                windowEnd = results.map(\.lastReplyNs).max() ?? warmupEnd
            } else {
                windowEnd = results.map(\.stoppedNs).max() ?? end
            }
            if windowEnd < warmupEnd { windowEnd = warmupEnd }
            windowSeconds = Double(windowEnd - warmupEnd) / 1e9
        }

        let c = snapshot.counters
        var byOp: [String: LatencySummary] = [:]
        if o.mode != .preloadOnly {
            for op in OpKind.allCases where snapshot.byOp[Int(op.rawValue)].count > 0 {
                byOp[op.name] = snapshot.byOp[Int(op.rawValue)].summary
            }
        }
        let ops = o.mode == .preloadOnly ? c.sets : c.ops
        return BenchReport(
            target: "\(o.host):\(o.port)",
            mode: o.mode,
            connections: o.connections,
            threads: o.threads,
            pipeline: o.pipeline,
            mix: o.mix,
            keys: o.keys,
            keyPrefix: o.keyPrefix,
            keyOrder: o.keyOrder,
            valueSize: o.valueSize,
            rate: o.rate,
            warmupSeconds: o.mode == .run ? o.warmup : 0,
            requestsTarget: o.requests,
            durationSeconds: windowSeconds,
            ops: ops,
            opsPerSec: windowSeconds > 0 ? Double(ops) / windowSeconds : 0,
            latencyMicroseconds: snapshot.overall.summary,
            latencyMicrosecondsByOp: byOp,
            latencyMicrosecondsMarked: control.mark.wasOpened && o.mode == .run ? snapshot.marked.summary : nil,
            latencyMicrosecondsBaseline: control.baseline.wasOpened && o.mode == .run ? snapshot.baseline.summary : nil,
            gets: c.gets,
            hits: c.hits,
            misses: c.misses,
            sets: c.sets,
            deletes: c.deletes,
            deleteMisses: c.deleteMisses,
            errors: allErrors,
            errorsTotal: allErrors.total,
            preload: preloadSummary,
            verify: verifySummary,
            sequentialKeysIssued: counter?.issued,
            clientCPUSeconds: Self.cpuSeconds(),
            stoppedEarly: control.isStopped
        )
    }

    /// Starts one phase on every connection and waits until all are done; returns the merged
    /// statistics of every event loop and each connection's result.
    private func runPhase(
        _ channels: [Channel], loops: [EventLoop], stats: [NIOLoopBound<LoopStats>],
        spec: (Int) -> PhaseSpec
    ) async throws -> (StatsSnapshot, [ConnectionPhaseResult]) {
        for (loop, s) in zip(loops, stats) {
            try await loop.submit { s.value.reset() }.get()
        }
        var futures: [EventLoopFuture<ConnectionPhaseResult>] = []
        for (i, channel) in channels.enumerated() {
            let phase = spec(i)
            futures.append(channel.eventLoop.flatSubmit {
                guard let handler = try? channel.pipeline.syncOperations.handler(type: BenchConnectionHandler.self) else {
                    return channel.eventLoop.makeSucceededFuture(ConnectionPhaseResult(stoppedNs: phase.startNs, handlerGone: true))
                }
                return handler.start(phase, eventLoop: channel.eventLoop)
            })
        }
        var results: [ConnectionPhaseResult] = []
        for f in futures { results.append(try await f.get()) }
        var merged = StatsSnapshot()
        for (loop, s) in zip(loops, stats) {
            merged.add(try await loop.submit { s.value.snapshot }.get())
        }
        // A channel whose handler is gone (closed and torn down) counts as a connection error.
        merged.counters.errors.connection += UInt64(results.filter(\.handlerGone).count)
        return (merged, results)
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        #if canImport(Glibc)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
        let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return 0 }
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}
