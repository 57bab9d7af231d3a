import Foundation
import Testing
@testable import ROMAStorage

/// R2.7 per-command clock effects, R2.2/R2.3 tombstones and expiry, R3.11, R3.13 — on both engines.
@Suite("Storage commands (R2.7) on memory and TokyoCabinet")
struct StorageCommandTests {
    static let engines = EngineChoice.allCases
    /// An expire time that has passed at T0.
    static let past: UInt32 = T0 - 1

    // MARK: set

    @Test("set on absent key: clock 0, physical now, expire and vnode stored", arguments: engines)
    func setAbsent(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.put("k", "v1", vn: 6, expire: T0 + 100) == .stored)
            #expect(try s.header("k", vn: 6) == RecordHeader(vnode: 6, physical: T0, logical: 0, expire: T0 + 100))
            #expect(try s.fetch("k", vn: 6) == "v1")
            #expect(try s.mainRaw("k", vn: 6) == hdr(6, logical: 0, expire: T0 + 100).bytes + b("v1"))
        }
    }

    @Test("set on existing key: clock old+1, new physical, value and expire replaced", arguments: engines)
    func setExisting(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "v1", expire: T0 + 100)
            try s.put("k", "v2", expire: RecordHeader.noExpire, now: T0 + 5)
            #expect(try s.header("k") == hdr(physical: T0 + 5, logical: 1, expire: RecordHeader.noExpire))
            try s.put("k", "v3", now: T0 + 6)
            #expect(try s.header("k")?.logical == 2)
            #expect(try s.fetch("k", now: T0 + 6) == "v3")
        }
    }

    @Test("set continues the clock of a tombstone and of an expired record", arguments: engines)
    func setOverDeadRecords(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.injectMain("dead", hdr(logical: 7, expire: 0))
            try s.injectMain("old", hdr(physical: T0 - 50, logical: 9, expire: Self.past), "x")
            #expect(try s.put("dead", "a") == .stored)
            #expect(try s.put("old", "b") == .stored)
            #expect(try s.header("dead")?.logical == 8)
            #expect(try s.header("old")?.logical == 10)
            #expect(try s.fetch("dead") == "a")
            #expect(try s.fetch("old") == "b")
        }
    }

    @Test("store gives the header it wrote (what a primary replicates), and none when it wrote nothing", arguments: engines)
    func storeGivesTheWrittenHeader(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            func store(_ mode: StoreMode, _ key: String, _ value: String, now: UInt32) throws -> (StoreResult, RecordHeader?) {
                var written: RecordHeader?
                let r = try Array(key.utf8).withUnsafeBytes { k in
                    try Array(value.utf8).withUnsafeBytes { v in
                        try s.store(mode, vn: 3, key: k, value: v, expire: T0 + 100, now: now, written: &written)
                    }
                }
                return (r, written)
            }
            let first = try store(.set, "k", "v1", now: T0)
            #expect(first.0 == .stored)
            #expect(first.1 == (try s.header("k", vn: 3)))
            let second = try store(.replace, "k", "v2", now: T0 + 1)
            #expect(second.1 == (try s.header("k", vn: 3)))
            #expect(second.1?.logical == 1)
            let refused = try store(.add, "k", "v3", now: T0 + 2)
            #expect(refused.0 == .notStored)
            #expect(refused.1 == nil)
            #expect(try s.fetch("k", vn: 3, now: T0 + 2) == "v2")
        }
    }

    @Test("set on clock 0xffffffff wraps to 0", arguments: engines)
    func setClockWrap(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.injectMain("k", hdr(logical: 0xFFFF_FFFF), "x")
            try s.put("k", "y")
            #expect(try s.header("k")?.logical == 0)
        }
    }

    // MARK: add

    @Test("add: stores on absent/tombstone/expired, NOT_STORED on live", arguments: engines)
    func add(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.put(.add, "new", "a") == .stored)
            #expect(try s.header("new")?.logical == 0)

            #expect(try s.put(.add, "new", "b", now: T0 + 1) == .notStored)
            #expect(try s.fetch("new") == "a")
            #expect(try s.header("new") == hdr(logical: 0))   // nothing written

            try s.injectMain("dead", hdr(logical: 3, expire: 0))
            #expect(try s.put(.add, "dead", "c") == .stored)
            #expect(try s.header("dead")?.logical == 4)

            try s.injectMain("old", hdr(physical: T0 - 9, logical: 11, expire: Self.past), "zzz")
            #expect(try s.put(.add, "old", "d", expire: T0 + 60) == .stored)
            #expect(try s.header("old") == hdr(logical: 12, expire: T0 + 60))
            #expect(try s.fetch("old") == "d")
        }
    }

    // MARK: replace / append / prepend

    @Test("replace/append/prepend need a live record; nothing is written otherwise",
          arguments: engines, [StoreMode.replace, .append, .prepend])
    func needLive(engine: EngineChoice, mode: StoreMode) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.put(mode, "absent", "v") == .notStored)
            #expect(try s.header("absent") == nil)

            let tomb = hdr(physical: T0 - 3, logical: 4, expire: 0)
            try s.injectMain("dead", tomb)
            #expect(try s.put(mode, "dead", "v") == .notStored)
            #expect(try s.header("dead") == tomb)

            let expired = hdr(physical: T0 - 3, logical: 5, expire: Self.past)
            try s.injectMain("old", expired, "x")
            #expect(try s.put(mode, "old", "v") == .notStored)
            #expect(try s.header("old") == expired)
            #expect(try s.mainRaw("old") == expired.bytes + b("x"))
        }
    }

    @Test("replace: clock old+1, value and expire replaced", arguments: engines)
    func replace(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "old", expire: T0 + 100)
            #expect(try s.put(.replace, "k", "new", expire: T0 + 5, now: T0 + 1) == .stored)
            #expect(try s.header("k") == hdr(physical: T0 + 1, logical: 1, expire: T0 + 5))
            #expect(try s.fetch("k", now: T0 + 1) == "new")
        }
    }

    @Test("append/prepend concatenate and take the NEW expire time", arguments: engines)
    func appendPrepend(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "mid", expire: RecordHeader.noExpire)
            #expect(try s.put(.append, "k", "END", expire: T0 + 50, now: T0 + 1) == .stored)
            #expect(try s.fetch("k", now: T0 + 1) == "midEND")
            #expect(try s.header("k") == hdr(physical: T0 + 1, logical: 1, expire: T0 + 50))
            #expect(try s.put(.prepend, "k", "BEG", expire: T0 + 70, now: T0 + 2) == .stored)
            #expect(try s.fetch("k", now: T0 + 2) == "BEGmidEND")
            #expect(try s.header("k") == hdr(physical: T0 + 2, logical: 2, expire: T0 + 70))
            // A "never" new expire replaces a finite old one.
            #expect(try s.put(.append, "k", "!", expire: RecordHeader.noExpire, now: T0 + 3) == .stored)
            #expect(try s.header("k")?.expire == RecordHeader.noExpire)
        }
    }

    @Test("append/prepend with binary and empty values", arguments: engines)
    func appendBinary(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            let key: [UInt8] = [0x00, 0xFF, 0x1B, 0x41]
            #expect(try s.putBytes(key, []) == .stored)
            #expect(try s.putBytes(.append, key, [0x00, 0x0D, 0x0A]) == .stored)
            #expect(try s.putBytes(.prepend, key, [0xFF]) == .stored)
            #expect(try s.putBytes(.append, key, []) == .stored)
            #expect(try s.fetchBytes(key) == [0xFF, 0x00, 0x0D, 0x0A])
        }
    }

    // MARK: cas

    @Test("cas: NOT_FOUND unless live; EXISTS on clock mismatch; STORED with clock+1", arguments: engines)
    func cas(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.casPut("absent", "v", unique: 0) == .notFound)
            #expect(try s.header("absent") == nil)

            try s.injectMain("dead", hdr(logical: 4, expire: 0))
            #expect(try s.casPut("dead", "v", unique: 4) == .notFound)
            try s.injectMain("old", hdr(logical: 5, expire: Self.past), "x")
            #expect(try s.casPut("old", "v", unique: 5) == .notFound)
            #expect(try s.header("old")?.logical == 5)

            try s.put("k", "v0", expire: T0 + 100)
            try s.put("k", "v1", expire: T0 + 100)   // clock 1
            #expect(try s.casPut("k", "bad", unique: 0) == .exists)
            #expect(try s.casPut("k", "bad", unique: 2) == .exists)
            #expect(try s.fetch("k") == "v1")
            #expect(try s.header("k")?.logical == 1)

            #expect(try s.casPut("k", "v2", unique: 1, expire: T0 + 9, now: T0 + 1) == .stored)
            #expect(try s.header("k") == hdr(physical: T0 + 1, logical: 2, expire: T0 + 9))
            #expect(try s.fetch("k", now: T0 + 1) == "v2")
            #expect(try s.casPut("k", "v3", unique: 1) == .exists)
        }
    }

    @Test("cas unique across the clock wrap", arguments: engines)
    func casWrap(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.injectMain("k", hdr(logical: 0xFFFF_FFFF), "x")
            #expect(try s.casPut("k", "y", unique: 0xFFFF_FFFF) == .stored)
            #expect(try s.header("k")?.logical == 0)
            #expect(try s.casPut("k", "z", unique: 0) == .stored)
            #expect(try s.header("k")?.logical == 1)
        }
    }

    // MARK: delete

    @Test("delete of a live record writes a header-only tombstone with clock old+1", arguments: engines)
    func deleteLive(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "value", vn: 5, expire: T0 + 100)
            try s.put("k", "value", vn: 5, expire: T0 + 100)   // clock 1
            #expect(try s.remove("k", vn: 5, now: T0 + 2) == true)
            let tomb = RecordHeader(vnode: 5, physical: T0 + 2, logical: 2, expire: 0)
            #expect(try s.header("k", vn: 5) == tomb)
            #expect(try s.mainRaw("k", vn: 5) == tomb.bytes)            // 16 bytes, no value
            #expect(try s.fetch("k", vn: 5, now: T0 + 2) == nil)
        }
    }

    @Test("delete of a tombstone returns false and writes nothing", arguments: engines)
    func deleteTombstone(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "v")
            #expect(try s.remove("k", now: T0 + 1) == true)
            let tomb = try #require(try s.header("k"))
            #expect(try s.remove("k", now: T0 + 30) == false)
            #expect(try s.header("k") == tomb)                  // same physical, same clock
            #expect(try s.mainRaw("k") == tomb.bytes)
        }
    }

    @Test("delete of a never-existing key writes a tombstone with clock 0 and returns false", arguments: engines)
    func deleteNeverExisting(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.remove("ghost", vn: 3) == false)
            #expect(try s.header("ghost", vn: 3) == RecordHeader(vnode: 3, physical: T0, logical: 0, expire: 0))
            #expect(try s.mainRaw("ghost", vn: 3)?.count == 16)
            // and a second delete finds the tombstone: false, nothing written
            #expect(try s.remove("ghost", vn: 3, now: T0 + 1) == false)
            #expect(try s.header("ghost", vn: 3)?.physical == T0)
        }
    }

    @Test("delete of an expired record writes a tombstone with clock old+1 and returns false", arguments: engines)
    func deleteExpired(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "v", expire: T0 + 10)
            #expect(try s.remove("k", now: T0 + 11) == false)
            #expect(try s.header("k") == hdr(physical: T0 + 11, logical: 1, expire: 0))
            #expect(try s.mainRaw("k")?.count == 16)
        }
    }

    @Test("a deleted key can be added again and continues the clock", arguments: engines)
    func addAfterDelete(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "v")
            _ = try s.remove("k")
            #expect(try s.put(.add, "k", "again") == .stored)
            #expect(try s.header("k")?.logical == 2)
            #expect(try s.fetch("k") == "again")
        }
    }

    // MARK: incr / decr

    @Test("incr/decr need a live record; nothing is written otherwise", arguments: engines)
    func incrNeedsLive(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.counter("absent", "1") == nil)
            #expect(try s.header("absent") == nil)
            try s.injectMain("dead", hdr(logical: 2, expire: 0))
            #expect(try s.counter("dead", "1", decrement: true) == nil)
            #expect(try s.header("dead")?.logical == 2)
            try s.put("old", "5", expire: T0 + 1)
            #expect(try s.counter("old", "1", now: T0 + 2) == nil)
            #expect(try s.header("old")?.logical == 0)
        }
    }

    @Test("incr/decr arithmetic through the storage (R3.11)", arguments: engines, [
        ("0", "1", false, "1"),
        ("18446744073709551615", "1", false, "0"),
        ("12ab", "1", false, "13"),
        ("abc", "1", false, "1"),
        ("0", "18446744073709551616", false, "0"),
        ("5", "10", true, "0"),
        ("5", "-3", true, "8"),
        ("-7", "2", false, "0"),
        ("", "9", false, "9"),
        (" 41 apples", "1", false, "42"),
    ] as [(String, String, Bool, String)])
    func incrArithmetic(engine: EngineChoice, c: (String, String, Bool, String)) throws {
        let (old, delta, decrement, expected) = c
        try withStorage(engine) { (s, _) throws in
            try s.put("n", old, expire: T0 + 1000)
            let r = try s.counter("n", delta, decrement: decrement, now: T0 + 1)
            #expect(r.map(String.init) == expected)
            #expect(try s.fetch("n", now: T0 + 1) == expected)
            // clock old+1, physical now, expire KEPT
            #expect(try s.header("n") == hdr(physical: T0 + 1, logical: 1, expire: T0 + 1000))
        }
    }

    @Test("incr keeps the never-expire time and counts up", arguments: engines)
    func incrSequence(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("n", "10")
            for i in 1...20 { #expect(try s.counter("n", "2") == UInt64(10 + 2 * i)) }
            for i in 1...5 { #expect(try s.counter("n", "7", decrement: true) == UInt64(50 - 7 * i)) }
            #expect(try s.header("n") == hdr(logical: 25, expire: RecordHeader.noExpire))
            #expect(try s.fetch("n") == "15")
        }
    }

    // MARK: set_expt / touch

    @Test("set_expt: live only, clock old+1, value kept, expire replaced", arguments: engines)
    func setExpire(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.touch("absent", expire: T0 + 5) == false)
            #expect(try s.header("absent") == nil)
            try s.injectMain("dead", hdr(logical: 3, expire: 0))
            #expect(try s.touch("dead", expire: T0 + 5) == false)
            #expect(try s.header("dead")?.expire == 0)
            try s.put("old", "x", expire: T0 + 1)
            #expect(try s.touch("old", expire: T0 + 500, now: T0 + 2) == false)
            #expect(try s.header("old")?.expire == T0 + 1)

            try s.put("k", "keep me", expire: T0 + 10)
            #expect(try s.touch("k", expire: T0 + 1000, now: T0 + 3) == true)
            #expect(try s.header("k") == hdr(physical: T0 + 3, logical: 1, expire: T0 + 1000))
            #expect(try s.fetch("k", now: T0 + 500) == "keep me")
            // shortening to the past expires it
            #expect(try s.touch("k", expire: T0 + 3 - 1, now: T0 + 3) == true)
            #expect(try s.fetch("k", now: T0 + 3) == nil)
        }
    }

    // MARK: reads, expiry, empty values

    @Test("get treats tombstones and expired records as absent; rawHeader shows them", arguments: engines)
    func readsAndExpiry(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "v", expire: T0 + 10)
            #expect(try s.fetch("k", now: T0 + 10) == "v")     // now == expt: still live
            #expect(try s.fetch("k", now: T0 + 11) == nil)     // now > expt: expired
            #expect(try s.header("k")?.expire == T0 + 10)
            #expect(try s.liveHeader("k", now: T0 + 11) == nil)
            #expect(try s.put(.add, "k", "w", now: T0 + 11) == .stored)
            #expect(try s.fetch("k", now: T0 + 11) == "w")

            try s.put("neg", "v", expire: Expiry.convert(-1, now: T0))
            #expect(try s.fetch("neg") == nil)
            #expect(try s.fetch("missing") == nil)
            #expect(try s.header("missing") == nil)
        }
    }

    @Test("empty values are stored and read back as empty, not absent (R3.13)", arguments: engines)
    func emptyValue(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(try s.put("e", "") == .stored)
            #expect(try s.fetchBytes(b("e")) == [])
            #expect(try s.mainRaw("e")?.count == 16)
            #expect(try s.header("e")?.isTombstone == false)
            #expect(try s.put(.append, "e", "x") == .stored)
            #expect(try s.fetch("e") == "x")
        }
    }

    @Test("binary keys and values round-trip; keys are distinct per vnode division", arguments: engines)
    func binary(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            var rng = SplitMix64(seed: 5)
            var expected: [(key: [UInt8], vn: UInt32, value: [UInt8])] = []
            for i in 0..<300 {
                let key = (0..<Int.random(in: 1...40, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) } + b("#\(i)")
                let value = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
                expected.append((key, UInt32(i), value))
                try s.putBytes(key, value, vn: UInt32(i))
            }
            for e in expected {
                #expect(try s.fetchBytes(e.key, vn: e.vn) == e.value)
            }
            #expect(s.totalRecords == 300)
        }
    }

    @Test("large value (1 MiB) round-trips", arguments: engines)
    func largeValue(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            let v = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            #expect(try s.putBytes(b("big"), v) == .stored)
            #expect(try s.fetchBytes(b("big")) == v)
            #expect(try s.putBytes(.append, b("big"), v) == .stored)
            #expect(try s.fetchBytes(b("big"))?.count == 2 << 20)
        }
    }

    // MARK: deleteAll

    @Test("deleteAll tombstones live records only and returns their count", arguments: engines)
    func deleteAll(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<25 { try s.put("k\(i)", "v\(i)", vn: UInt32(i)) }
            try s.put("exp", "v", vn: 1, expire: T0 - 1)
            _ = try s.remove("gone", vn: 2)
            let goneBefore = try s.header("gone", vn: 2)
            #expect(try s.deleteAll(now: T0 + 1, batch: 4) == 25)
            for i in 0..<25 {
                #expect(try s.fetch("k\(i)", vn: UInt32(i), now: T0 + 1) == nil)
                #expect(try s.header("k\(i)", vn: UInt32(i)) == hdr(UInt32(i), physical: T0 + 1, logical: 1, expire: 0))
                #expect(try s.mainRaw("k\(i)", vn: UInt32(i))?.count == 16)
            }
            #expect(try s.header("exp", vn: 1)?.expire == T0 - 1)   // expired: not counted, not rewritten
            #expect(try s.header("gone", vn: 2) == goneBefore)
            #expect(try s.deleteAll(now: T0 + 2) == 0)
        }
    }

    // MARK: introspection

    @Test("record counts and states", arguments: engines)
    func introspection(engine: EngineChoice) throws {
        try withStorage(engine, divnum: 3) { (s, dir) throws in
            #expect(s.states == [.normal, .normal, .normal])
            for i in 0..<10 { try s.put("k\(i)", "v", vn: UInt32(i)) }
            #expect(s.recordCount(ofDivision: 0) == 4)   // vn 0,3,6,9
            #expect(s.recordCount(ofDivision: 1) == 3)
            #expect(s.recordCount(ofDivision: 2) == 3)
            #expect(s.totalRecords == 10)
            switch engine {
            case .memory:
                #expect(s.directory == nil)
                #expect(s.path(ofDivision: 0) == nil)
                #expect(s.statusLogPath == nil)
                #expect(s.engine.className == "RubyHashStorage")
            case .tc:
                #expect(s.directory == dir!.path)
                #expect(s.path(ofDivision: 2) == dir!.file("2.tc"))
                #expect(s.cachePath(ofDivision: 2) == dir!.file("2.cache.tc"))
                #expect(s.engine.className == "TCStorage")
                #expect(s.fileSize(ofDivision: 0) > 0)
                for i in 0..<3 { #expect(dir!.exists("\(i).tc")) }
                #expect(dir!.exists("lock"))
            }
        }
    }

    @Test("invalid divnum is refused")
    func badDivnum() {
        #expect(throws: StorageError.self) {
            try HashStorage(name: "roma", directory: nil, divnum: 0, engine: .memory, divisionOf: { _ in 0 })
        }
    }

    // MARK: TC persistence

    @Test("TC: data, tombstones and clocks persist across close/reopen; lock removed at close")
    func tcPersistence() throws {
        let dir = TempDir("persist")
        defer { dir.remove() }
        do {
            let s = try openStorage(.tc, dir: dir)
            try s.put("a", "1", vn: 1)
            try s.put("a", "2", vn: 1)
            try s.put("b", "", vn: 2, expire: T0 + 99)
            _ = try s.remove("c", vn: 3)
            try s.close()
            #expect(!dir.exists("lock"))
            try s.close()   // idempotent
        }
        let s = try openStorage(.tc, dir: dir)
        defer { try? s.close() }
        #expect(try s.fetch("a", vn: 1) == "2")
        #expect(try s.header("a", vn: 1)?.logical == 1)
        #expect(try s.fetchBytes(b("b"), vn: 2) == [])
        #expect(try s.header("b", vn: 2)?.expire == T0 + 99)
        #expect(try s.header("c", vn: 3)?.isTombstone == true)
        #expect(s.states == [.normal, .normal, .normal, .normal])
        #expect(s.openNotes.isEmpty)
    }

    @Test("TC: a directory written with a larger divnum is refused")
    func tcDivnumShrink() throws {
        let dir = TempDir("divnum")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir, divnum: 4)
        try s.close()
        #expect(throws: StorageError.self) { try openStorage(.tc, dir: dir, divnum: 2) }
        #expect(!dir.exists("lock"))   // refused before taking the lock
        let again = try openStorage(.tc, dir: dir, divnum: 4)
        try again.close()
    }

    @Test("TC: options are applied (compressed database still round-trips)")
    func tcOptions() throws {
        let dir = TempDir("opts")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir, divnum: 2, options: try TCOptions(parsing: "bnum=1000#opts=ld#rcnum=10#xmsiz=1048576#dfunit=10"))
        defer { try? s.close() }
        let v = String(repeating: "compressible ", count: 500)
        try s.put("k", v)
        #expect(try s.fetch("k") == v)
        // Passes over the file (vnode keys, in slices of 3) read the records decompressed.
        for i in 0..<20 { try s.put("p\(i)", "\(i)" + v, vn: UInt32(5 + i % 2)) }
        let keys = try s.keys(ofVnode: 5, slice: 3).map { String(decoding: $0, as: UTF8.self) }.sorted()
        #expect(keys == (0..<20).filter { $0 % 2 == 0 }.map { "p\($0)" }.sorted())
        let engine = try #require(s.divisions[1].main as? TCEngine)
        var seen = 0
        var cursor: [UInt8]?
        repeat {
            cursor = try engine.forEach(after: cursor, limit: 4) { k, raw in
                let h = RecordHeader(decoding: raw)
                let value = String(decoding: raw[RecordHeader.size...], as: UTF8.self)
                // Division 1 holds the odd vnode's ten records.
                #expect(String(decoding: k, as: UTF8.self).hasPrefix("p"))
                #expect(h?.vnode == 5)
                #expect(value.hasSuffix(v))
                seen += 1
            }
        } while cursor != nil
        #expect(seen == 10 && engine.recordCount == 10)
    }

    // MARK: concurrency

    @Test("concurrent writers on distinct keys lose nothing", arguments: engines)
    func concurrentWriters(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            let group = DispatchGroup()
            for t in 0..<4 {
                DispatchQueue.global().async(group: group) {
                    for i in 0..<300 {
                        _ = try? s.put("t\(t)", "\(i)", vn: UInt32(t))
                        _ = try? s.counter("shared", "1", vn: 9)
                    }
                }
            }
            try s.put("shared", "0", vn: 9)
            group.wait()
            for t in 0..<4 {
                #expect(try s.fetch("t\(t)", vn: UInt32(t)) == "299")
                #expect(try s.header("t\(t)", vn: UInt32(t))?.logical == 299)
            }
            // incr before the initial set may have failed (NOT_FOUND); afterwards none is lost:
            let n = try #require(try s.fetch("shared", vn: 9).flatMap { Int($0) })
            #expect(n <= 1200)
            #expect(try s.header("shared", vn: 9)?.logical == UInt32(n))
        }
    }
}
