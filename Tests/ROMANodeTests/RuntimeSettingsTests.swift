import Foundation
import NIOCore
import Testing
@testable import ROMANode

#if canImport(Glibc)
import Glibc
#endif

/// The runtime settings of R3.6, R6.6 and R9.1: parsing as ROMA does, the shedding rule, dcnice's
/// table, the latency periods and the log rotation periods.
@Suite struct RuntimeSettingsTests {
    @Test func continuousLimitParsesAsRoma() {
        #expect(RuntimeSettings.parseContinuousLimit("200:30:300")! == (200, 30, 300))
        #expect(RuntimeSettings.parseContinuousLimit("0:0:0")! == (0, 0, 0))
        for bad in ["200:30", "a:1:2", "1:101:3", "5:1:4", "1::3", " 1:2:3", "1:2:3 ", "-1:2:3", ""] {
            #expect(RuntimeSettings.parseContinuousLimit(bad) == nil, "\(bad)")
        }
    }

    @Test func sheddingFollowsRomasFormula() {
        let s = RuntimeSettings(config: NodeConfig())
        #expect(s.continuousLimit == (1024, 100, 1024), "memcached's maxconns unless configured")
        #expect(!s.shouldShed(open: 1024))
        #expect(s.shouldShed(open: 1025))
        #expect(s.setContinuousLimit("10:0:11"))
        #expect(!s.shouldShed(open: 10))
        // d = 1, 0 + 100 × 1 / 1 = 100: always
        #expect((0..<200).allSatisfy { _ in s.shouldShed(open: 11) })
        #expect(s.setContinuousLimit("10:0:1010"))
        // d = 1: 100 × 1 / 1000 = 0 (integer arithmetic): never
        #expect(!(0..<200).contains { _ in s.shouldShed(open: 11) })
        #expect(!s.setContinuousLimit("1:2"))
        #expect(s.continuousLimit == (10, 0, 1010), "a refused value changes nothing")
        #expect(s.setContinuousLimit("5:0:5"))
        #expect(s.shouldShed(open: 6), "full == start: every connection over start")
    }

    @Test func dcniceSetsRomasTable() {
        let s = RuntimeSettings(config: NodeConfig())
        #expect(s.copyWaitSeconds == 0, "no pause unless configured or set")
        let want: [Int: (Double, Double, Int)] = [1: (0.001, 0.001, 1000), 2: (0.005, 0.005, 100), 3: (0.01, 0.001, 10),
                                                  4: (0.01, 0.005, 10), 5: (0.01, 0.01, 10)]
        for (p, w) in want.sorted(by: { $0.key < $1.key }) {
            #expect(s.setDcnice(p))
            #expect(s.dcnice.load(ordering: .relaxed) == p)
            #expect(s.copyWaitSeconds == w.0)
            #expect(Double(bitPattern: s.eachVnDumpSleep.load(ordering: .relaxed)) == w.1)
            #expect(s.eachVnDumpSleepCount.load(ordering: .relaxed) == w.2)
        }
        #expect(!s.setDcnice(0) && !s.setDcnice(6))
        #expect(s.dcnice.load(ordering: .relaxed) == 5)
    }

    @Test func configSetsTheStartingValues() throws {
        let c = try nodeConfig(fromFile: """
            CONNECTION_CONTINUOUS_LIMIT: "50:10:60"
            CONNECTION_EXPTIME: 30
            CONNECTION_POOL_MAX: 3
            CONNECTION_EMPOOL_EXPTIME: 0
            LOG_SHIFT_AGE: daily
            LOG_SHIFT_SIZE: 4096
            DATACOPY_STREAM_COPY_WAIT_PARAM: 0.002
            """, ext: "yaml")
        let s = RuntimeSettings(config: c)
        #expect(s.continuousLimit == (50, 10, 60))
        #expect(s.acceptedConnectionExpireTime.load(ordering: .relaxed) == 30)
        #expect(s.copyWaitSeconds == 0.002)
        #expect(c.poolMaxlength == 3 && c.emPoolExpireTime == 0 && c.logShiftAge == "daily" && c.logShiftSize == 4096)
        #expect(throws: ConfigError.self) { try nodeConfig(fromFile: "CONNECTION_CONTINUOUS_LIMIT: '5:1'\n", ext: "yaml") }
        #expect(throws: ConfigError.self) { try nodeConfig(fromFile: "LOG_SHIFT_AGE: yearly\n", ext: "yaml") }
    }

    @Test func poolExpiryTakesAnySeconds() {
        let long = NIODeadline.now() - .seconds(100)
        #expect(PeerPoolSettings.expired(since: long, seconds: 30))
        #expect(!PeerPoolSettings.expired(since: long, seconds: 0), "0: never")
        #expect(!PeerPoolSettings.expired(since: long, seconds: Int.max), "no overflow")
        #expect(!PeerPoolSettings.expired(since: .now(), seconds: 30))
    }

    @Test func latencyPeriodsAverageTheLastTen() {
        var l = LatencyStats()
        l.timeCount = 5
        for i in 0..<12 { #expect(l.note(Double(i) / 1000, command: "get", now: 100) == nil) }
        let line = l.note(0.5, command: "get", now: 106)
        // the last ten: 0.003 … 0.011 and 0.5
        #expect(line == "Latency average[get]: 0.05630000(denominator=10 max=0.50000000 min=0.00000000)")
        #expect(l.note(0.002, command: "get", now: 107) == nil, "a new period began")
        #expect(LatencyStats.f8(1.23456789012) == "1.23456789")
        #expect(LatencyStats.f8(0.000000004) == "0.00000000")
    }

    @Test func logAgesAndPeriods() {
        #expect(LogRotation.Age("10") == .count(10))
        #expect(LogRotation.Age("0") == .count(0))
        #expect(LogRotation.Age("daily") == .period("daily"))
        #expect(LogRotation.Age("yearly") == nil && LogRotation.Age("-1") == nil)
        setenv("TZ", "UTC", 1)
        tzset()
        // 2026-12-06 15:42:17 UTC, a Sunday
        let now = time_t(1_796_571_737)
        #expect(LogRotation.stamp(Int(now)) == "202612061542")
        #expect(LogRotation.stamp(LogRotation.periodEnd(before: now, "min")) == "202612061541")
        #expect(LogRotation.stamp(LogRotation.periodEnd(before: now, "hour")) == "202612061459")
        #expect(LogRotation.stamp(LogRotation.periodEnd(before: now, "daily")) == "202612052359")
        #expect(LogRotation.stamp(LogRotation.periodEnd(before: now, "weekly")) == "202612052359")
        #expect(LogRotation.stamp(LogRotation.periodEnd(before: now, "monthly")) == "202611302359")
    }
}
