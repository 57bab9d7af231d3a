import Testing
@testable import ROMABench

@Suite("Mix parsing")
struct MixTests {
    @Test func getSet() throws {
        let m = try Mix(parsing: "90:10")
        #expect(m == Mix(get: 90, set: 10, delete: 0))
        #expect(m.total == 100)
        #expect(m.description == "90:10")
        #expect(m.onlyKind == nil)
    }

    @Test func withDeletes() throws {
        let m = try Mix(parsing: "80:10:10")
        #expect(m == Mix(get: 80, set: 10, delete: 10))
        #expect(m.description == "80:10:10")
    }

    @Test func singleKinds() throws {
        #expect(try Mix(parsing: "0:1").onlyKind == .set)
        #expect(try Mix(parsing: "1:0").onlyKind == .get)
        #expect(try Mix(parsing: "0:0:5").onlyKind == .delete)
        #expect(try Mix(parsing: "100:0:0").onlyKind == .get)
    }

    @Test(arguments: ["", "90", "90:", ":10", "a:b", "-1:2", "0:0", "0:0:0", "1:2:3:4", "90:10:", " 90:10", "9.5:1", "1:2000000", "+1:2"])
    func rejects(_ text: String) {
        #expect(throws: BenchOptionError.self) { try Mix(parsing: text) }
    }

    @Test func pickFollowsWeights() throws {
        let m = try Mix(parsing: "90:10:5")
        #expect(m.pick(0) == .get)
        #expect(m.pick(89) == .get)
        #expect(m.pick(90) == .set)
        #expect(m.pick(99) == .set)
        #expect(m.pick(100) == .delete)
        #expect(m.pick(104) == .delete)
    }

    @Test func randomDrawsMatchMix() throws {
        let m = try Mix(parsing: "90:10")
        var rng = FastRandom(seed: 42)
        var sets = 0
        let n = 200_000
        for _ in 0..<n where m.pick(rng.next(below: m.total)) == .set { sets += 1 }
        let share = Double(sets) / Double(n)
        #expect(abs(share - 0.10) < 0.005)
    }
}

@Suite("Loopback check")
struct LoopbackTests {
    @Test(arguments: ["127.0.0.1", "127.255.255.254", "127.0.1.1", "localhost", "LOCALHOST", "localhost.",
                      "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"])
    func loopback(_ host: String) {
        #expect(Loopback.isLoopbackHost(host))
    }

    @Test(arguments: ["10.0.0.1", "128.0.0.1", "126.255.255.255", "0.0.0.0", "192.168.1.1", "example.com",
                      "localhost.example.com", "::", "::2", "::ffff:10.0.0.1", "127.1", "", "fe80::1", "127.0.0.1.nip.io"])
    func remote(_ host: String) {
        #expect(!Loopback.isLoopbackHost(host))
    }

    @Test func optionsRefuseRemoteUnlessAllowed() throws {
        var o = BenchOptions()
        o.host = "10.1.2.3"
        #expect(throws: BenchOptionError.self) { try o.validate() }
        o.allowRemote = true
        try o.validate()
    }
}

@Suite("Option bounds")
struct BoundsTests {
    func rejects(_ change: (inout BenchOptions) -> Void) -> Bool {
        var o = BenchOptions()
        change(&o)
        do { try o.validate(); return false } catch { return true }
    }

    @Test func defaultsAreValidAndBounded() throws {
        let o = BenchOptions()
        try o.validate()
        #expect(o.timeLimit == 10)
        #expect(o.isTimeBounded)
        #expect(o.port == 12000)
        #expect(o.threads == 1)
    }

    @Test func requestsOnlyStillHasTheHardTimeCap() {
        var o = BenchOptions()
        o.requests = 1000
        #expect(!o.isTimeBounded)
        #expect(o.timeLimit == BenchLimits.maxSeconds)
        o.warmup = 5
        #expect(o.timeLimit == BenchLimits.maxSeconds - 5)
        o.duration = 3
        #expect(o.isTimeBounded)
        #expect(o.timeLimit == 3)
    }

    @Test func logSlowBounds() throws {
        #expect(rejects { $0.logSlowMicroseconds = 0 })
        #expect(rejects { $0.logSlowMicroseconds = -5 })
        #expect(rejects { $0.logSlowMicroseconds = 60_000_001 })
        var o = BenchOptions()
        o.logSlowMicroseconds = 500
        try o.validate()
    }

    @Test func durationBounds() {
        #expect(rejects { $0.duration = 0 })
        #expect(rejects { $0.duration = -1 })
        #expect(rejects { $0.duration = 3600.5 })
        #expect(rejects { $0.duration = .infinity })
        #expect(rejects { $0.duration = .nan })
        #expect(!rejects { $0.duration = 3600 })
        #expect(!rejects { $0.duration = 0.1 })
        #expect(rejects { $0.duration = 3000; $0.warmup = 601 })
        #expect(rejects { $0.warmup = -1 })
    }

    @Test func countBounds() {
        #expect(rejects { $0.requests = 0 })
        #expect(rejects { $0.requests = -5 })
        #expect(!rejects { $0.requests = 1 })
        #expect(rejects { $0.requests = BenchLimits.maxRequests + 1 })
        #expect(rejects { $0.connections = 0 })
        #expect(rejects { $0.connections = BenchLimits.maxConnections + 1 })
        #expect(rejects { $0.threads = 0 })
        #expect(rejects { $0.pipeline = 0 })
        #expect(rejects { $0.pipeline = BenchLimits.maxPipeline + 1 })
        #expect(rejects { $0.keys = 0 })
        #expect(rejects { $0.keys = BenchLimits.maxKeys + 1 })
        #expect(rejects { $0.valueSize = -1 })
        #expect(rejects { $0.valueSize = (1 << 20) + 1 })
        #expect(!rejects { $0.valueSize = 0 })
        #expect(rejects { $0.rate = 0 })
        #expect(rejects { $0.rate = -10 })
        #expect(!rejects { $0.rate = 2000 })
        #expect(rejects { $0.port = 0 })
        #expect(rejects { $0.port = 70000 })
        #expect(rejects { $0.keyPrefix = "has space" })
        #expect(rejects { $0.keyPrefix = String(repeating: "k", count: 201) })
        #expect(!rejects { $0.keyPrefix = "" })
    }

    @Test func modeCombinations() {
        #expect(rejects { $0.mode = .verify; $0.preload = true })
        #expect(rejects { $0.mode = .preloadOnly; $0.rate = 100 })
        #expect(!rejects { $0.mode = .verify })
    }
}

@Suite("Cluster options")
struct ClusterOptionTests {
    @Test func seedsAreCheckedForLoopback() throws {
        var o = BenchOptions()
        o.cluster = true
        o.seeds = ["127.0.0.1:10001", "localhost_10002"]
        try o.validate()
        o.seeds = ["10.0.0.1:10001"]
        #expect(throws: BenchOptionError.self) { try o.validate() }
        o.allowRemote = true
        try o.validate()
        o.seeds = ["nohostport"]
        #expect(throws: BenchOptionError.self) { try o.validate() }
    }

    @Test func openLoopAndSlowLogAreRefused() {
        var o = BenchOptions()
        o.cluster = true
        o.rate = 1000
        #expect(throws: BenchOptionError.self) { try o.validate() }
        o.rate = nil
        o.logSlowMicroseconds = 100
        #expect(throws: BenchOptionError.self) { try o.validate() }
    }

    @Test func concurrencyIsBounded() {
        var o = BenchOptions()
        o.cluster = true
        o.connections = 200
        o.pipeline = 100
        #expect(throws: BenchOptionError.self) { try o.validate() }
    }
}
