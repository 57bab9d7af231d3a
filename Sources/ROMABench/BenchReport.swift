import Foundation

/// The preload phase (`--preload`, `--preload-only`).
public struct PreloadSummary: Sendable, Codable, Equatable {
    public var keys: Int
    public var seconds: Double
    public var setsPerSec: Double
    public var errors: ErrorCounts
    public var errorsTotal: UInt64

    enum CodingKeys: String, CodingKey {
        case keys, seconds, errors
        case setsPerSec = "sets_per_sec"
        case errorsTotal = "errors_total"
    }
}

/// `--verify`: every key `0..<keys` read back.
public struct VerifySummary: Sendable, Codable, Equatable {
    public var keys: Int
    /// Present with exactly the value roma-bench wrote.
    public var ok: UInt64
    /// Not found (a lost write, if the key was acknowledged).
    public var missing: UInt64
    /// Found with different bytes.
    public var mismatched: UInt64
    /// Keys not checked because of errors (see `errors`).
    public var unchecked: UInt64
}

/// Everything roma-bench reports; `--json` prints it as JSON.
public struct BenchReport: Sendable, Codable, Equatable {
    public var tool = "roma-bench"
    public var target: String
    public var mode: BenchMode
    public var connections: Int
    public var threads: Int
    public var pipeline: Int
    public var mix: Mix
    public var keys: Int
    public var keyPrefix: String
    public var keyOrder: KeyOrder
    public var valueSize: Int
    /// Open-loop target rate (requests/s over all connections); nil for closed loop.
    public var rate: Double?
    public var warmupSeconds: Double
    /// `--requests` if given.
    public var requestsTarget: Int?
    /// The measured window.
    public var durationSeconds: Double
    /// Replies to requests issued in the measured window.
    public var ops: UInt64
    public var opsPerSec: Double
    public var latencyMicroseconds: LatencySummary
    public var latencyMicrosecondsByOp: [String: LatencySummary]
    /// Requests issued while the mark was set (SIGUSR1 toggles it); nil if it never was.
    public var latencyMicrosecondsMarked: LatencySummary?
    /// Requests issued inside the baseline window (SIGUSR2), when one was opened.
    public var latencyMicrosecondsBaseline: LatencySummary?
    public var gets: UInt64
    public var hits: UInt64
    public var misses: UInt64
    public var sets: UInt64
    public var deletes: UInt64
    public var deleteMisses: UInt64
    /// Over the whole run, warmup and preload included.
    public var errors: ErrorCounts
    public var errorsTotal: UInt64
    public var preload: PreloadSummary?
    public var verify: VerifySummary?
    /// `--key-order sequential`: keys `0..<n` (mod `keys`) were issued.
    public var sequentialKeysIssued: Int?
    /// roma-bench's own CPU time (user + system), to show it is not the bottleneck.
    public var clientCPUSeconds: Double
    public var stoppedEarly: Bool
    /// `--cluster`: seeds, the routing table's nodes, failovers.
    public var cluster: ClusterSummary? = nil

    enum CodingKeys: String, CodingKey {
        case tool, target, mode, cluster, connections, threads, pipeline, mix, keys, rate, ops, gets, hits, misses, sets, deletes, errors, preload, verify
        case keyPrefix = "key_prefix"
        case keyOrder = "key_order"
        case valueSize = "value_size"
        case warmupSeconds = "warmup_s"
        case requestsTarget = "requests_target"
        case durationSeconds = "duration_s"
        case opsPerSec = "ops_per_sec"
        case latencyMicroseconds = "latency_us"
        case latencyMicrosecondsByOp = "latency_us_by_op"
        case latencyMicrosecondsMarked = "latency_us_marked"
        case latencyMicrosecondsBaseline = "latency_us_baseline"
        case deleteMisses = "delete_misses"
        case errorsTotal = "errors_total"
        case sequentialKeysIssued = "sequential_keys_issued"
        case clientCPUSeconds = "client_cpu_s"
        case stoppedEarly = "stopped_early"
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func fmt(_ v: Double, _ decimals: Int = 1) -> String {
        String(format: "%.\(decimals)f", v)
    }

    static func latencyLine(_ s: LatencySummary) -> String {
        "p50 \(fmt(s.p50))  p90 \(fmt(s.p90))  p99 \(fmt(s.p99))  p99.9 \(fmt(s.p99_9))  max \(fmt(s.max))  mean \(fmt(s.mean))"
    }

    public func text() -> String {
        var lines: [String] = []
        let loop = rate.map { "open loop at \(Self.fmt($0, 0)) req/s" } ?? "closed loop"
        lines.append("roma-bench \(target): \(connections) connection\(connections == 1 ? "" : "s"), \(threads) thread\(threads == 1 ? "" : "s"), pipeline \(pipeline), \(loop)")
        if let cluster {
            lines.append("cluster via RomaClient: \(cluster.nodes.count) node\(cluster.nodes.count == 1 ? "" : "s") (\(cluster.nodes.joined(separator: " "))), node failures \(cluster.nodeFailures)")
        }
        lines.append("mode \(mode.rawValue), mix get:set:delete \(mix.get):\(mix.set):\(mix.delete), \(keys) keys (\(keyOrder.rawValue), prefix '\(keyPrefix)'), \(valueSize)-byte values, warmup \(Self.fmt(warmupSeconds)) s")
        if let preload {
            lines.append("preload: \(preload.keys) keys in \(Self.fmt(preload.seconds, 2)) s (\(Self.fmt(preload.setsPerSec, 0)) sets/s), errors \(preload.errorsTotal)")
        }
        if let verify {
            lines.append("verify: \(verify.keys) keys: ok \(verify.ok), missing \(verify.missing), mismatched \(verify.mismatched), unchecked \(verify.unchecked)")
        }
        if mode != .preloadOnly {
            lines.append("ops: \(ops) in \(Self.fmt(durationSeconds, 2)) s = \(Self.fmt(opsPerSec)) ops/s")
            lines.append("latency (µs): \(Self.latencyLine(latencyMicroseconds))")
            for op in OpKind.allCases {
                if let s = latencyMicrosecondsByOp[op.name], s.count > 0, latencyMicrosecondsByOp.count > 1 {
                    lines.append("  \(op.name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(Self.latencyLine(s))  (\(s.count))")
                }
            }
            if let m = latencyMicrosecondsMarked {
                lines.append("  marked  \(Self.latencyLine(m))  (\(m.count))")
            }
            if let b = latencyMicrosecondsBaseline {
                lines.append("  baseline \(Self.latencyLine(b))  (\(b.count))")
            }
            lines.append("gets \(gets) (hits \(hits), misses \(misses)), sets \(sets), deletes \(deletes) (not found \(deleteMisses))")
        }
        if let issued = sequentialKeysIssued { lines.append("sequential keys issued: \(issued)") }
        let e = errors
        lines.append("errors: \(errorsTotal) (ERROR \(e.error), CLIENT_ERROR \(e.clientError), SERVER_ERROR \(e.serverError), NOT_STORED \(e.notStored), unexpected \(e.unexpected), connection \(e.connection), unanswered \(e.unanswered))")
        lines.append("client cpu: \(Self.fmt(clientCPUSeconds, 2)) s\(stoppedEarly ? "  (stopped early by signal)" : "")")
        return lines.joined(separator: "\n")
    }
}
