import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// ROMA's settings that setter commands change while the node runs (R3.6, R5.8, R6.6, R9.1),
/// read where they act. Each starts from the configuration (`NodeConfig`).
final class RuntimeSettings: Sendable {
    // MARK: Connections (R3.6)

    /// `CONNECTION_CONTINUOUS_LIMIT` / `set_continuous_limit start:rate:full`, packed:
    /// start in bits 0–27, full in 28–55, rate in 56–63.
    private let continuous: Synchronization.Atomic<UInt64>
    /// `CONNECTION_EXPTIME` / `set_accepted_connection_expire_time`: an accepted connection idle
    /// for longer than this many seconds is closed by the 10 s sweep; 0 = never.
    let acceptedConnectionExpireTime: Synchronization.Atomic<Int>

    // MARK: Vnode copies (R5.8, R6.6)

    /// `set_routing_trans_timeout`: a copy whose transaction is older than this (seconds, a
    /// Double's bits) is given up and its transaction dropped.
    let routingTransTimeout = Atomic<UInt64>((10800.0).bitPattern)
    /// As `stat` shows it: ROMA's integer default, then the Float the setter stored.
    let routingTransTimeoutShown = NIOLockedValueBox("10800")
    /// `set_spushv_read_timeout`: a vnode stream being received may stall for this many times
    /// the data read timeout before its connection is closed.
    let spushvReadTimeout = Atomic<Int>(100)
    /// `set_reqpushv_timeout_count`: a copy asked for (join, recover, release, balance) is awaited
    /// for this many 0.1 s polls before it counts as failed.
    let reqpushvTimeoutCount = Atomic<Int>(300)
    /// `dcnice 1…5` and what it sets (ROMA's three parameters). `streamCopyWaitParam` (seconds,
    /// a Double's bits) is the pause after each 64 KiB chunk of a vnode stream this node sends;
    /// 0 unless configured (`DATACOPY_STREAM_COPY_WAIT_PARAM`) or set by `dcnice`.
    let dcnice = Atomic<Int>(3)
    let streamCopyWaitParam: Synchronization.Atomic<UInt64>
    let eachVnDumpSleep = Atomic<UInt64>((0.001).bitPattern)
    let eachVnDumpSleepCount = Atomic<Int>(100)

    // MARK: Latency statistics (R9.1)

    let latency = NIOLockedValueBox(LatencyStats())
    /// Requests are timed for `latency`: a count period is set and some command is checked.
    let latencyOn = Atomic<Bool>(false)

    init(config: NodeConfig) {
        let ccl = RuntimeSettings.parseContinuousLimit(config.continuousLimit)
            ?? RuntimeSettings.parseContinuousLimit(RuntimeSettings.defaultContinuousLimit)!
        continuous = Atomic(RuntimeSettings.pack(ccl))
        acceptedConnectionExpireTime = Atomic(max(0, config.connectionExpireTime))
        streamCopyWaitParam = Atomic(max(0, config.streamCopyWaitParam).bitPattern)
    }

    // MARK: Continuous limit

    static let defaultContinuousLimit = "1024:100:1024"

    /// `start:rate:full` as ROMA accepts it (`^\d+:\d+:\d+$`, rate ≤ 100, start ≤ full), or nil.
    static func parseContinuousLimit(_ s: String) -> (start: Int, rate: Int, full: Int)? {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) else { return nil }
        let v = parts.map { Int($0) ?? Int.max }
        guard v[1] <= 100, v[0] <= v[2], v[2] < 1 << 28 else { return nil }
        return (v[0], v[1], v[2])
    }

    private static func pack(_ c: (start: Int, rate: Int, full: Int)) -> UInt64 {
        UInt64(c.start) | UInt64(c.full) << 28 | UInt64(c.rate) << 56
    }

    var continuousLimit: (start: Int, rate: Int, full: Int) {
        let v = continuous.load(ordering: .relaxed)
        return (Int(v & 0xfff_ffff), Int(v >> 56), Int((v >> 28) & 0xfff_ffff))
    }

    /// Sets it from `start:rate:full`; false (unchanged) when ROMA would refuse it.
    func setContinuousLimit(_ s: String) -> Bool {
        guard let c = RuntimeSettings.parseContinuousLimit(s) else { return false }
        continuous.store(RuntimeSettings.pack(c), ordering: .relaxed)
        return true
    }

    /// R3.6 after a client command on one of `open` connections: whether to answer `ERROR` and
    /// close (ROMA's integer arithmetic; `full == start` closes every connection over `start`).
    func shouldShed(open: Int) -> Bool {
        let v = continuous.load(ordering: .relaxed)
        let start = Int(v & 0xfff_ffff)
        let d = open - start
        guard d > 0 else { return false }
        let rate = Int(v >> 56), full = Int((v >> 28) & 0xfff_ffff)
        guard full > start else { return true }
        return Int.random(in: 0..<100) < rate + (100 - rate) * d / (full - start)
    }

    var copyWaitSeconds: Double { Double(bitPattern: streamCopyWaitParam.load(ordering: .relaxed)) }

    /// `dcnice p` (ROMA's table): false for a level outside 1…5.
    func setDcnice(_ p: Int) -> Bool {
        let table: [Int: (Double, Double, Int)] = [1: (0.001, 0.001, 1000), 2: (0.005, 0.005, 100), 3: (0.01, 0.001, 10),
                                                   4: (0.01, 0.005, 10), 5: (0.01, 0.01, 10)]
        guard let (wait, sleep, count) = table[p] else { return false }
        dcnice.store(p, ordering: .relaxed)
        streamCopyWaitParam.store(wait.bitPattern, ordering: .relaxed)
        eachVnDumpSleep.store(sleep.bitPattern, ordering: .relaxed)
        eachVnDumpSleepCount.store(count, ordering: .relaxed)
        return true
    }
}

/// ROMA's latency statistics (`set_latency_avg_calc_rule`): for each checked command, the last
/// ten reply times and the period's maximum and minimum, logged at debug level as
/// `Latency average[<cmd>]: …` once `timeCount` seconds have passed since the period began.
struct LatencyStats {
    var log = false
    var commands: [String] = ["get", "set", "delete"]
    /// Seconds per period, or nil (`false` in `stat`): nothing is measured.
    var timeCount: Int?
    var data: [String: Period] = [:]

    struct Period {
        var last: [Double] = []
        var max = 0.0
        var min = 99_999.0
        var began: Int
    }

    /// Notes one reply time; returns the line to log when the period is over.
    mutating func note(_ seconds: Double, command: String, now: Int) -> String? {
        var p = data[command] ?? Period(began: now)
        if p.last.count >= 10 { p.last.removeFirst() }
        p.last.append(seconds)
        p.max = Swift.max(p.max, seconds)
        p.min = Swift.min(p.min, seconds)
        var line: String?
        if let t = timeCount, now - p.began > t {
            let avg = p.last.reduce(0, +) / Double(p.last.count)
            line = "Latency average[\(command)]: \(LatencyStats.f8(avg))(denominator=\(p.last.count) max=\(LatencyStats.f8(p.max)) min=\(LatencyStats.f8(p.min)))"
            p = Period(began: now)
        }
        data[command] = p
        return line
    }

    /// `%.8f`.
    static func f8(_ x: Double) -> String {
        let scaled = (x * 1e8).rounded()
        let whole = Int(scaled / 1e8)
        let frac = Int(scaled) - whole * 100_000_000
        let digits = String(frac)
        return "\(whole).\(String(repeating: "0", count: 8 - digits.count))\(digits)"
    }
}
