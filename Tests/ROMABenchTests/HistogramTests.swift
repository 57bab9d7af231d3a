import Testing
@testable import ROMABench

@Suite("Latency histogram")
struct HistogramTests {
    /// HdrHistogram with 3 significant digits: a reported value is within 0.1 % of the true one.
    func close(_ value: Double, _ expected: Double) -> Bool {
        abs(value - expected) <= expected * 0.001 + 0.001
    }

    @Test func emptyIsZero() {
        let h = LatencyHistogram()
        let s = h.summary
        #expect(s.count == 0)
        #expect(s.p50 == 0 && s.p99 == 0 && s.p99_9 == 0 && s.max == 0 && s.mean == 0)
    }

    @Test func uniformDistribution() {
        // 1 µs … 10 000 µs, one value per µs.
        var h = LatencyHistogram()
        for us in 1...10_000 { h.record(nanoseconds: UInt64(us) * 1000) }
        let s = h.summary
        #expect(s.count == 10_000)
        #expect(close(s.p50, 5000))
        #expect(close(s.p90, 9000))
        #expect(close(s.p99, 9900))
        #expect(close(s.p99_9, 9990))
        #expect(close(s.max, 10_000))
        #expect(close(s.mean, 5000.5))
    }

    @Test func tailIsNotAveragedAway() {
        // 990 fast replies, 10 slow ones: p99 is still fast, p99.9 is the stall.
        var h = LatencyHistogram()
        h.record(nanoseconds: 100_000, count: 990)
        h.record(nanoseconds: 50_000_000, count: 10)
        let s = h.summary
        #expect(close(s.p50, 100))
        #expect(close(s.p90, 100))
        #expect(close(s.p99, 100))
        #expect(close(s.p99_9, 50_000))
        #expect(close(s.max, 50_000))
        #expect(close(s.mean, (990 * 100 + 10 * 50_000) / 1000))
    }

    @Test func percentileBoundary() {
        // 99 values of 1 ms and 1 of 2 ms: p99 is 1 ms, anything above is 2 ms.
        var h = LatencyHistogram()
        h.record(nanoseconds: 1_000_000, count: 99)
        h.record(nanoseconds: 2_000_000)
        #expect(close(h.microseconds(atPercentile: 99), 1000))
        #expect(close(h.microseconds(atPercentile: 99.5), 2000))
        #expect(close(h.microseconds(atPercentile: 100), 2000))
    }

    @Test func mergingEqualsRecordingTogether() {
        var a = LatencyHistogram()
        var b = LatencyHistogram()
        var all = LatencyHistogram()
        var rng = FastRandom(seed: 7)
        for i in 0..<50_000 {
            let v = UInt64(rng.next(below: 5_000_000) + 1)
            if i % 3 == 0 { a.record(nanoseconds: v) } else { b.record(nanoseconds: v) }
            all.record(nanoseconds: v)
        }
        a.add(b)
        #expect(a.count == all.count)
        for p in [50.0, 90, 99, 99.9, 100] {
            #expect(a.nanoseconds(atPercentile: p) == all.nanoseconds(atPercentile: p))
        }
    }

    @Test func exponentialTail() {
        // Exponential with mean 200 µs: p50 = ln 2 · 200, p99 = ln 100 · 200, p99.9 = ln 1000 · 200.
        var h = LatencyHistogram()
        let n = 1_000_000
        for i in 0..<n {
            let u = (Double(i) + 0.5) / Double(n)  // deterministic quantiles
            h.record(nanoseconds: UInt64(-log(1 - u) * 200_000))
        }
        func within(_ v: Double, _ e: Double) -> Bool { abs(v - e) <= e * 0.002 }
        #expect(within(h.microseconds(atPercentile: 50), 0.6931 * 200))
        #expect(within(h.microseconds(atPercentile: 99), 4.6052 * 200))
        #expect(within(h.microseconds(atPercentile: 99.9), 6.9078 * 200))
    }

    @Test func valuesAboveTheCapAreClamped() {
        var h = LatencyHistogram()
        h.record(nanoseconds: LatencyHistogram.highestTrackableNanoseconds * 2)
        #expect(h.count == 1)
        #expect(h.clamped == 1)
        #expect(h.nanoseconds(atPercentile: 100) >= LatencyHistogram.highestTrackableNanoseconds * 999 / 1000)
    }

    @Test func snapshotMergeAddsCounters() {
        var a = StatsSnapshot()
        var b = StatsSnapshot()
        a.counters.ops = 3
        a.counters.errors.notStored = 1
        b.counters.ops = 4
        b.counters.errors.connection = 2
        b.byOp[Int(OpKind.set.rawValue)].record(nanoseconds: 1000)
        a.add(b)
        #expect(a.counters.ops == 7)
        #expect(a.counters.errors.total == 3)
        #expect(a.byOp[Int(OpKind.set.rawValue)].count == 1)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
