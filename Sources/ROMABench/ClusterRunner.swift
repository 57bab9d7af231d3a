import NIOCore
import NIOPosix
import RomaClient
import Synchronization

/// `--cluster`: drives a ROMA cluster through `RomaClient` (client-side routing, per-node
/// connection pools, failover) instead of raw connections to one server.
///
/// Closed loop only: `connections × pipeline` workers each keep one request in flight; the
/// client multiplexes them over its pool, `nodeConnections` pipelined connections per node. Same mix, keys, values, phases (preload,
/// run, verify), warmup, bounds, signals and report as the single-server mode.
struct ClusterRunner: Sendable {
    let options: BenchOptions
    let control: RunControl
    /// The client's event loops (`--threads`); the workers run on them.
    let loops: MultiThreadedEventLoopGroup

    init(options: BenchOptions, control: RunControl) {
        self.options = options
        self.control = control
        loops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
    }

    /// Statistics shared by the workers; each worker flushes its recorded latencies in batches.
    final class SharedStats: Sendable {
        let value = Mutex(StatsSnapshot())
        /// Measured requests issued (for --requests), or keys taken (preload, verify).
        let issued = Atomic<Int>(0)
        /// When the last worker stopped issuing.
        let stopped = Atomic<UInt64>(0)
        func merge(_ batch: inout WorkerBatch) {
            guard !batch.isEmpty else { return }
            value.withLock { s in batch.drain(into: &s) }
        }
    }

    /// A worker's latencies and counters since its last flush (bounded, so memory does not
    /// grow with the number of workers the way one histogram set per worker would).
    struct WorkerBatch {
        var ops: [OpKind] = []
        var latencies: [UInt64] = []
        var marks: [UInt8] = []
        var counters = Counters()
        static let capacity = 256

        var isEmpty: Bool { latencies.isEmpty && counters == Counters() }
        var isFull: Bool { latencies.count >= Self.capacity }

        mutating func record(_ op: OpKind, _ latency: UInt64, marked: Bool, baseline: Bool) {
            ops.append(op)
            latencies.append(latency)
            marks.append((marked ? 1 : 0) | (baseline ? 2 : 0))
        }

        mutating func drain(into s: inout StatsSnapshot) {
            for i in 0..<latencies.count {
                s.overall.record(nanoseconds: latencies[i])
                s.byOp[Int(ops[i].rawValue)].record(nanoseconds: latencies[i])
                if marks[i] & 1 != 0 { s.marked.record(nanoseconds: latencies[i]) }
                if marks[i] & 2 != 0 { s.baseline.record(nanoseconds: latencies[i]) }
            }
            s.counters.add(counters)
            ops.removeAll(keepingCapacity: true)
            latencies.removeAll(keepingCapacity: true)
            marks.removeAll(keepingCapacity: true)
            counters = Counters()
        }
    }

    enum Phase: Sendable { case preload, run, verify }

    /// The seed list: `--seeds`, else `--host:--port`.
    var seeds: [String] {
        options.seeds.isEmpty ? ["\(options.host):\(options.port)"] : options.seeds
    }

    func run(progress: @escaping @Sendable (String) -> Void) async throws -> BenchReport {
        let o = options
        var config = RomaClient.Configuration()
        config.connectionsPerNode = o.nodeConnections
        // Workers run on the client's event loops: each request and its reply stay on one
        // thread, as in the plain runner.
        config.eventLoopGroup = loops
        let client: RomaClient
        do {
            client = try await RomaClient(seeds: seeds, hashName: "roma", timeout: .milliseconds(Int64(o.connectTimeout * 1000)),
                                          configuration: config)
        } catch {
            throw BenchError.connect("cannot reach the cluster through \(seeds.joined(separator: ",")): \(error)")
        }
        let nodes = client.routingTable?.nodes ?? []
        if !o.allowRemote {
            for n in nodes {
                guard let a = NodeAddress(n), Loopback.isLoopbackHost(a.host) else {
                    await client.close()
                    throw BenchError.remote("refusing cluster node \(n): not a loopback address; use --allow-remote")
                }
            }
        }
        progress("routing table of \(nodes.count) node\(nodes.count == 1 ? "" : "s") (\(nodes.joined(separator: " "))) from \(seeds.joined(separator: ","))")
        do {
            let report = try await phases(client: client, nodes: nodes, progress: progress)
            await client.close()
            try? await loops.shutdownGracefully()
            return report
        } catch {
            await client.close()
            try? await loops.shutdownGracefully()
            throw error
        }
    }

    private func phases(client: RomaClient, nodes: [String], progress: @escaping @Sendable (String) -> Void) async throws -> BenchReport {
        let o = options
        let templates = RequestTemplates(keyPrefix: o.keyPrefix, valueSize: o.valueSize)
        let workers = o.connections * o.pipeline
        let capNs = UInt64(BenchLimits.maxSeconds * 1e9)
        let baseSeed = o.seed ?? UInt64(truncatingIfNeeded: nowNanoseconds()) ^ 0x5DEE_CE66_D1CE_4E5B
        var allErrors = ErrorCounts()
        var preloadSummary: PreloadSummary?
        var verifySummary: VerifySummary?
        var snapshot = StatsSnapshot()
        var windowSeconds = 0.0
        var counter: SequenceCounter?

        if o.mode == .preloadOnly || (o.mode == .run && o.preload) {
            progress("preloading \(o.keys) keys of \(o.valueSize) bytes")
            let start = nowNanoseconds()
            let (s, _) = await runPhase(.preload, client: client, templates: templates, workers: max(workers, 32), seed: baseSeed,
                                        start: start, warmupEnd: start, end: start + capNs, counter: nil)
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
            let (s, _) = await runPhase(.verify, client: client, templates: templates, workers: max(workers, 32), seed: baseSeed,
                                        start: start, warmupEnd: start, end: start + capNs, counter: nil)
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
            let start = nowNanoseconds()
            let warmupEnd = start + UInt64(o.warmup * 1e9)
            let end = warmupEnd + UInt64(o.timeLimit * 1e9)
            progress("running \(o.isTimeBounded ? "\(BenchReport.fmt(o.timeLimit)) s" : "\(o.requests ?? 0) requests")"
                     + (o.warmup > 0 ? " after \(BenchReport.fmt(o.warmup)) s warmup" : "")
                     + " with \(workers) concurrent request\(workers == 1 ? "" : "s") through RomaClient")
            let (s, stoppedNs) = await runPhase(.run, client: client, templates: templates, workers: workers, seed: baseSeed,
                                                start: start, warmupEnd: warmupEnd, end: end, counter: counter)
            snapshot = s
            allErrors.add(s.counters.errors)
            windowSeconds = Double(max(stoppedNs, warmupEnd) - warmupEnd) / 1e9
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
            target: "cluster \(seeds.joined(separator: ",")) (\(nodes.count) node\(nodes.count == 1 ? "" : "s"))",
            mode: o.mode, connections: o.connections, threads: o.threads, pipeline: o.pipeline, mix: o.mix, keys: o.keys,
            keyPrefix: o.keyPrefix, keyOrder: o.keyOrder, valueSize: o.valueSize, rate: nil,
            warmupSeconds: o.mode == .run ? o.warmup : 0, requestsTarget: o.requests, durationSeconds: windowSeconds,
            ops: ops, opsPerSec: windowSeconds > 0 ? Double(ops) / windowSeconds : 0,
            latencyMicroseconds: snapshot.overall.summary, latencyMicrosecondsByOp: byOp,
            latencyMicrosecondsMarked: control.mark.wasOpened && o.mode == .run ? snapshot.marked.summary : nil,
            latencyMicrosecondsBaseline: control.baseline.wasOpened && o.mode == .run ? snapshot.baseline.summary : nil,
            gets: c.gets, hits: c.hits, misses: c.misses, sets: c.sets, deletes: c.deletes, deleteMisses: c.deleteMisses,
            errors: allErrors, errorsTotal: allErrors.total, preload: preloadSummary, verify: verifySummary,
            sequentialKeysIssued: counter?.issued, clientCPUSeconds: BenchRunner.cpuSeconds(), stoppedEarly: control.isStopped,
            cluster: ClusterSummary(seeds: seeds, nodes: nodes, nodeFailures: client.nodeFailureCount)
        )
    }

    /// Runs `workers` concurrent request loops until the phase ends; returns the merged
    /// statistics and when the last worker stopped issuing.
    ///
    /// Each worker lives on one of the client's event loops and drives itself with future
    /// callbacks through `RomaClient`'s event-loop API: the next request is issued from the
    /// completion of the previous one, on the same thread, with no task switches in between.
    private func runPhase(_ phase: Phase, client: RomaClient, templates: RequestTemplates, workers: Int, seed: UInt64,
                          start: UInt64, warmupEnd: UInt64, end: UInt64, counter: SequenceCounter?) async -> (StatsSnapshot, UInt64) {
        let shared = SharedStats()
        let loopList = Array(loops.makeIterator())
        var done: [EventLoopFuture<Void>] = []
        for w in 0..<workers {
            let loop = loopList[w % loopList.count]
            let worker = Worker(phase: phase, options: options, control: control, client: client, templates: templates,
                                loop: loop, rng: FastRandom(seed: seed &+ UInt64(w) &* 0x9E37_79B9), shared: shared,
                                warmupEnd: warmupEnd, end: end, counter: counter)
            loop.execute { worker.next() }
            done.append(worker.finished.futureResult)
        }
        for f in done { try? await f.get() }
        return (shared.value.withLock { $0 }, shared.stopped.load(ordering: .relaxed))
    }

    /// One closed-loop request stream on one event loop.
    ///
    /// `@unchecked Sendable`: created on the caller's thread, then used only on `loop` (its
    /// first `next()` is handed over with `loop.execute`, later ones run in future callbacks
    /// of requests made on that loop).
    final class Worker: @unchecked Sendable {
        let phase: Phase
        let options: BenchOptions
        let control: RunControl
        let client: RomaClient
        let templates: RequestTemplates
        let loop: any EventLoop
        var rng: FastRandom
        let shared: SharedStats
        let warmupEnd: UInt64
        let end: UInt64
        let counter: SequenceCounter?
        let finished: EventLoopPromise<Void>
        var batch = WorkerBatch()
        /// Nested `next()` calls (a request that fails at once completes inline).
        private var depth = 0

        init(phase: Phase, options: BenchOptions, control: RunControl, client: RomaClient, templates: RequestTemplates,
             loop: any EventLoop, rng: FastRandom, shared: SharedStats, warmupEnd: UInt64, end: UInt64, counter: SequenceCounter?) {
            self.phase = phase
            self.options = options
            self.control = control
            self.client = client
            self.templates = templates
            self.loop = loop
            self.rng = rng
            self.shared = shared
            self.warmupEnd = warmupEnd
            self.end = end
            self.counter = counter
            self.finished = loop.makePromise()
        }

        private func finish() {
            shared.merge(&batch)
            shared.stopped.max(nowNanoseconds(), ordering: .relaxed)
            finished.succeed(())
        }

        /// Issues the next request, or finishes the worker when the phase is over.
        func next() {
            let o = options
            if control.isStopped { return finish() }
            let now = nowNanoseconds()
            if now >= end { return finish() }
            let measured = now >= warmupEnd
            let op: OpKind
            let key: Int
            switch phase {
            case .preload, .verify:
                key = shared.issued.wrappingAdd(1, ordering: .relaxed).oldValue
                if key >= o.keys { return finish() }
                op = phase == .preload ? .set : .get
            case .run:
                if measured, let requests = o.requests, shared.issued.wrappingAdd(1, ordering: .relaxed).oldValue >= requests {
                    return finish()
                }
                op = o.mix.onlyKind ?? o.mix.pick(rng.next(below: o.mix.total))
                key = counter.map { $0.next() % o.keys } ?? rng.next(below: o.keys)
            }
            let marked = control.mark.isOpen, baseline = control.baseline.isOpen
            let count = measured || phase != .run
            let verify = phase == .verify
            let k = templates.key(key)
            let sent = nowNanoseconds()
            switch op {
            case .get:
                client.get(k, on: loop).assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let v?) where count:
                        batch.counters.hits += 1
                        if verify {
                            if v == templates.value(key) { batch.counters.verified += 1 } else { batch.counters.mismatched += 1 }
                        }
                    case .success(nil) where count:
                        batch.counters.misses += 1
                    case .success:
                        break
                    case .failure(let error):
                        ClusterRunner.count(error, into: &batch.counters)
                    }
                    completed(op, sent: sent, count: count, marked: marked, baseline: baseline)
                }
            case .set:
                client.set(k, templates.value(key), on: loop).assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let r): if r != .stored { batch.counters.errors.notStored += 1 }
                    case .failure(let error): ClusterRunner.count(error, into: &batch.counters)
                    }
                    completed(op, sent: sent, count: count, marked: marked, baseline: baseline)
                }
            case .delete:
                client.delete(k, on: loop).assumeIsolated().whenComplete { [self] result in
                    switch result {
                    case .success(let r): if count && r != .deleted { batch.counters.deleteMisses += 1 }
                    case .failure(let error): ClusterRunner.count(error, into: &batch.counters)
                    }
                    completed(op, sent: sent, count: count, marked: marked, baseline: baseline)
                }
            }
        }

        /// Records a finished request and issues the next one.
        private func completed(_ op: OpKind, sent: UInt64, count: Bool, marked: Bool, baseline: Bool) {
            let latency = nowNanoseconds() - sent
            if count {
                batch.counters.ops += 1
                switch op {
                case .get: batch.counters.gets += 1
                case .set: batch.counters.sets += 1
                case .delete: batch.counters.deletes += 1
                }
                batch.record(op, latency, marked: marked, baseline: baseline)
            } else {
                batch.counters.warmupOps += 1
            }
            if batch.isFull { shared.merge(&batch) }
            depth += 1
            defer { depth -= 1 }
            if depth > 64 {
                loop.execute { self.next() }
            } else {
                next()
            }
        }
    }

    /// Counts a failed request by kind.
    static func count(_ error: any Error, into counters: inout Counters) {
        switch error {
        case let e as RomaClientError:
            switch e {
            case .serverError: counters.errors.serverError += 1
            case .clientError: counters.errors.clientError += 1
            case .unavailable, .closed: counters.errors.connection += 1
            case .unexpectedReply(_, let reply) where reply.hasPrefix("ERROR"): counters.errors.error += 1
            default: counters.errors.unexpected += 1
            }
        default:
            counters.errors.unexpected += 1
        }
    }
}

/// `--cluster`: what the client saw of the cluster.
public struct ClusterSummary: Sendable, Codable, Equatable {
    public var seeds: [String]
    /// Nodes of the routing table fetched at the start.
    public var nodes: [String]
    /// Connection failures and timeouts the client counted against nodes (each made a request
    /// fail over or give up).
    public var nodeFailures: Int

    enum CodingKeys: String, CodingKey {
        case seeds, nodes
        case nodeFailures = "node_failures"
    }
}
