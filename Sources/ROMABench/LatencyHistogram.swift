import Histogram

/// Latencies in nanoseconds, HdrHistogram with 3 significant digits (relative error <= 0.1 %)
/// from 1 ns up to the 1-hour run cap; larger values are clamped to the cap.
public struct LatencyHistogram: Sendable, Equatable {
    public static let highestTrackableNanoseconds: UInt64 = 3_600_000_000_000

    public private(set) var histogram: Histogram<UInt64>
    /// Values above the trackable range (recorded as the maximum).
    public private(set) var clamped: UInt64 = 0

    public init() {
        histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1,
            highestTrackableValue: Self.highestTrackableNanoseconds,
            numberOfSignificantValueDigits: .three
        )
    }

    public var count: UInt64 { histogram.totalCount }

    @inline(__always)
    public mutating func record(nanoseconds: UInt64) {
        if nanoseconds > Self.highestTrackableNanoseconds {
            clamped &+= 1
            histogram.record(Self.highestTrackableNanoseconds)
        } else {
            histogram.record(nanoseconds)
        }
    }

    public mutating func record(nanoseconds: UInt64, count: UInt64) {
        guard count > 0 else { return }
        histogram.record(Swift.min(nanoseconds, Self.highestTrackableNanoseconds), count: count)
    }

    public mutating func add(_ other: LatencyHistogram) {
        histogram.add(other.histogram)
        clamped &+= other.clamped
    }

    public mutating func reset() {
        histogram.reset()
        clamped = 0
    }

    /// The value (ns) at or below which `percentile` % of the recorded values fall; 0 when empty.
    public func nanoseconds(atPercentile percentile: Double) -> UInt64 {
        histogram.totalCount == 0 ? 0 : histogram.valueAtPercentile(percentile)
    }

    public func microseconds(atPercentile percentile: Double) -> Double {
        Double(nanoseconds(atPercentile: percentile)) / 1000
    }

    public var summary: LatencySummary {
        let empty = histogram.totalCount == 0
        return LatencySummary(
            count: histogram.totalCount,
            p50: microseconds(atPercentile: 50),
            p90: microseconds(atPercentile: 90),
            p99: microseconds(atPercentile: 99),
            p99_9: microseconds(atPercentile: 99.9),
            max: empty ? 0 : Double(histogram.maxRecorded) / 1000,
            mean: empty ? 0 : histogram.mean / 1000
        )
    }
}

/// Percentiles in microseconds.
public struct LatencySummary: Sendable, Codable, Equatable {
    public var count: UInt64
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p99_9: Double
    public var max: Double
    public var mean: Double

    enum CodingKeys: String, CodingKey {
        case count, p50, p90, p99, max, mean
        case p99_9 = "p99.9"
    }
}
