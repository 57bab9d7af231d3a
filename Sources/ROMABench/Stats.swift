/// Errors by reply kind. Counted over the whole run (warmup included).
public struct ErrorCounts: Sendable, Codable, Equatable {
    /// `ERROR` (unknown command; ROMA also `ERROR: …`).
    public var error: UInt64 = 0
    /// `CLIENT_ERROR …`
    public var clientError: UInt64 = 0
    /// `SERVER_ERROR …`
    public var serverError: UInt64 = 0
    /// `NOT_STORED` to a set.
    public var notStored: UInt64 = 0
    /// Any other reply, or a reply kind that does not fit the request (the connection is closed).
    public var unexpected: UInt64 = 0
    /// Connections that failed or were closed by the server.
    public var connection: UInt64 = 0
    /// Requests never answered (connection lost, or no reply within the drain timeout).
    public var unanswered: UInt64 = 0

    public init() {}

    public var total: UInt64 { error + clientError + serverError + notStored + unexpected + connection + unanswered }

    public mutating func add(_ o: ErrorCounts) {
        error += o.error
        clientError += o.clientError
        serverError += o.serverError
        notStored += o.notStored
        unexpected += o.unexpected
        connection += o.connection
        unanswered += o.unanswered
    }

    enum CodingKeys: String, CodingKey {
        case error = "ERROR"
        case clientError = "CLIENT_ERROR"
        case serverError = "SERVER_ERROR"
        case notStored = "NOT_STORED"
        case unexpected
        case connection
        case unanswered
    }
}

/// Counters of one phase. Operation counts cover the measured window (after warmup).
public struct Counters: Sendable, Equatable {
    public var ops: UInt64 = 0
    public var warmupOps: UInt64 = 0
    public var gets: UInt64 = 0
    public var hits: UInt64 = 0
    public var misses: UInt64 = 0
    public var sets: UInt64 = 0
    public var deletes: UInt64 = 0
    public var deleteMisses: UInt64 = 0
    /// `--verify`: values equal to what roma-bench wrote / different.
    public var verified: UInt64 = 0
    public var mismatched: UInt64 = 0
    public var errors = ErrorCounts()

    public init() {}

    public mutating func add(_ o: Counters) {
        ops += o.ops
        warmupOps += o.warmupOps
        gets += o.gets
        hits += o.hits
        misses += o.misses
        sets += o.sets
        deletes += o.deletes
        deleteMisses += o.deleteMisses
        verified += o.verified
        mismatched += o.mismatched
        errors.add(o.errors)
    }
}

/// Everything measured in one phase, merged over connections and event loops.
public struct StatsSnapshot: Sendable {
    public var overall = LatencyHistogram()
    /// Per operation kind, indexed by `OpKind.rawValue`.
    public var byOp = [LatencyHistogram(), LatencyHistogram(), LatencyHistogram()]
    /// Requests issued while the mark was set (`BenchRunner.toggleMark`, SIGUSR1).
    public var marked = LatencyHistogram()
    /// Requests issued while the baseline window was open (`BenchRunner.toggleBaseline`, SIGUSR2).
    public var baseline = LatencyHistogram()
    public var counters = Counters()

    public init() {}

    public mutating func add(_ o: StatsSnapshot) {
        overall.add(o.overall)
        marked.add(o.marked)
        baseline.add(o.baseline)
        for k in 0..<byOp.count { byOp[k].add(o.byOp[k]) }
        counters.add(o.counters)
    }
}

/// Statistics shared by the connections of one event loop. Only touched on that loop
/// (handlers get it in their channel initializer, which runs on the loop; the runner reads and
/// resets it with `eventLoop.submit`, wrapped in `NIOLoopBound`).
final class LoopStats {
    var snapshot = StatsSnapshot()

    func reset() { snapshot = StatsSnapshot() }

    @inline(__always)
    func record(_ op: OpKind, latency: UInt64, marked: Bool = false, baseline: Bool = false) {
        snapshot.overall.record(nanoseconds: latency)
        snapshot.byOp[Int(op.rawValue)].record(nanoseconds: latency)
        if marked { snapshot.marked.record(nanoseconds: latency) }
        if baseline { snapshot.baseline.record(nanoseconds: latency) }
    }
}
