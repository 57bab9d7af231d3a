import Foundation
import Testing
@testable import ROMAStorage

/// The safecopy state machine (R7.1-R7.9) and the port's crash recovery of leftover caches.
/// Division of a key = vn % 4 in these tests; division 1 is the one snapshotted.
@Suite("Safecopy state machine (R7)")
struct SafecopyTests {
    static let engines = EngineChoice.allCases

    /// Drives division `i` through the whole cycle.
    private func fullCycle(_ s: HashStorage, _ i: Int) throws {
        try s.beginSafecopy(division: i)
        try s.flush(division: i)
        try s.beginCacheCleaning(division: i)
        try s.cleanCache(division: i)
    }

    @Test("transitions normal → flushing → flushed → cachecleaning → normal", arguments: engines)
    func cycleStates(engine: EngineChoice) throws {
        try withStorage(engine) { (s, dir) throws in
            #expect(s.states == [.normal, .normal, .normal, .normal])
            #expect(!s.hasCache(ofDivision: 1))
            try s.beginSafecopy(division: 1)
            #expect(s.states == [.normal, .safecopyFlushing, .normal, .normal])
            #expect(s.hasCache(ofDivision: 1))
            if let dir { #expect(dir.exists("1.cache.tc")) }
            try s.flush(division: 1)
            #expect(s.states[1] == .safecopyFlushed)
            try s.beginCacheCleaning(division: 1)
            #expect(s.states[1] == .cachecleaning)
            try s.cleanCache(division: 1)
            #expect(s.states == [.normal, .normal, .normal, .normal])
            #expect(!s.hasCache(ofDivision: 1))
            if let dir { #expect(!dir.exists("1.cache.tc")) }
            // a second cycle works as well
            try fullCycle(s, 1)
            #expect(s.states[1] == .normal)
        }
    }

    @Test("writes in flushing/flushed go to the cache; the main engine does not change (R7.4)", arguments: engines)
    func writesGoToCache(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("a", "a0", vn: 1)
            try s.put("b", "b0", vn: 1)
            try s.put("c", "10", vn: 1)
            try s.put("d", "d0", vn: 1)
            let mainBefore = try ["a", "b", "c", "d", "new"].map { try s.mainRaw($0, vn: 1) }

            try s.beginSafecopy(division: 1)
            try s.put("a", "a1", vn: 1, now: T0 + 1)                 // set
            #expect(try s.remove("b", vn: 1, now: T0 + 1) == true)   // delete
            #expect(try s.counter("c", "5", vn: 1, now: T0 + 1) == 15)
            try s.flush(division: 1)
            #expect(try s.put(.append, "d", "+", vn: 1, now: T0 + 2) == .stored)
            #expect(try s.touch("d", expire: T0 + 500, vn: 1, now: T0 + 2))
            try s.put("new", "n", vn: 1, now: T0 + 2)
            #expect(try s.put(.add, "a", "x", vn: 1, now: T0 + 2) == .notStored)

            // main untouched
            #expect(try ["a", "b", "c", "d", "new"].map { try s.mainRaw($0, vn: 1) } == mainBefore)
            #expect(s.recordCount(ofDivision: 1) == 4)
            // cache holds the new records, clocks continue from main (R7.4)
            #expect(try s.cacheHeader("a", vn: 1) == hdr(1, physical: T0 + 1, logical: 1))
            #expect(try s.cacheRaw("b", vn: 1) == hdr(1, physical: T0 + 1, logical: 1, expire: 0).bytes)
            #expect(try s.cacheHeader("d", vn: 1) == hdr(1, physical: T0 + 2, logical: 2, expire: T0 + 500))
            #expect(try s.cacheHeader("new", vn: 1)?.logical == 0)
            #expect(s.cacheCount(ofDivision: 1) == 5)
            // reads see the newest state (R7.3: cache first, else main)
            #expect(try s.fetch("a", vn: 1, now: T0 + 2) == "a1")
            #expect(try s.fetch("b", vn: 1, now: T0 + 2) == nil)
            #expect(try s.fetch("c", vn: 1, now: T0 + 2) == "15")
            #expect(try s.fetch("d", vn: 1, now: T0 + 2) == "d0+")
            #expect(try s.fetch("new", vn: 1, now: T0 + 2) == "n")

            // cleaning merges everything into main and drops the cache
            try s.beginCacheCleaning(division: 1)
            try s.cleanCache(division: 1)
            #expect(try s.mainHeader("a", vn: 1) == hdr(1, physical: T0 + 1, logical: 1))
            #expect(try s.mainRaw("a", vn: 1) == hdr(1, physical: T0 + 1, logical: 1).bytes + b("a1"))
            #expect(try s.mainRaw("b", vn: 1) == hdr(1, physical: T0 + 1, logical: 1, expire: 0).bytes)
            #expect(try s.fetch("c", vn: 1, now: T0 + 3) == "15")
            #expect(try s.fetch("d", vn: 1, now: T0 + 3) == "d0+")
            #expect(try s.mainHeader("d", vn: 1)?.expire == T0 + 500)
            #expect(try s.fetch("new", vn: 1, now: T0 + 3) == "n")
            #expect(s.recordCount(ofDivision: 1) == 5)
        }
    }

    @Test("other divisions keep writing to main during a division's safecopy", arguments: engines)
    func otherDivisionsUnaffected(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.beginSafecopy(division: 1)
            try s.put("k0", "v", vn: 0)
            try s.put("k2", "v", vn: 2)
            #expect(try s.mainHeader("k0", vn: 0) != nil)
            #expect(try s.mainHeader("k2", vn: 2) != nil)
            #expect(!s.hasCache(ofDivision: 0) && !s.hasCache(ofDivision: 2))
            try s.put("k1", "v", vn: 1)
            #expect(try s.mainHeader("k1", vn: 1) == nil)
            #expect(try s.cacheHeader("k1", vn: 1) != nil)
        }
    }

    @Test("reads in cachecleaning: one side only, or main when its clock is newer, else cache (R7.3)", arguments: engines)
    func readsInCacheCleaning(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("mainOnly", "m", vn: 1)
            try s.put("both", "m", vn: 1)
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            try s.put("cacheOnly", "c", vn: 1)
            try s.put("both", "c", vn: 1)         // cache clk 1 vs main clk 0
            try s.beginCacheCleaning(division: 1)
            #expect(try s.fetch("mainOnly", vn: 1) == "m")
            #expect(try s.fetch("cacheOnly", vn: 1) == "c")
            #expect(try s.fetch("both", vn: 1) == "c")
            // main newer: use main
            try s.injectMain("both", hdr(1, logical: 2), "m2", vn: 1)
            #expect(try s.fetch("both", vn: 1) == "m2")
            // equal clocks: cache (main only when strictly newer)
            try s.injectMain("both", hdr(1, logical: 1), "m1", vn: 1)
            #expect(try s.fetch("both", vn: 1) == "c")
            // ring comparison: main 0 is newer than cache 0xffffffff
            try s.injectCache("ring", hdr(1, logical: 0xFFFF_FFFF), "c", vn: 1)
            try s.injectMain("ring", hdr(1, logical: 0), "m", vn: 1)
            #expect(try s.fetch("ring", vn: 1) == "m")
            // a newer cache tombstone hides a live main record
            try s.injectCache("dead", hdr(1, logical: 5, expire: 0), vn: 1)
            try s.injectMain("dead", hdr(1, logical: 4), "alive", vn: 1)
            #expect(try s.fetch("dead", vn: 1) == nil)
        }
    }

    @Test("writes in cachecleaning go to main and continue the cache's clock (R7.4)", arguments: engines)
    func writesInCacheCleaning(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.put("k", "v0", vn: 1)
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            try s.put("k", "v1", vn: 1, now: T0 + 1)     // cache clk 1
            try s.beginCacheCleaning(division: 1)
            try s.put("k", "v2", vn: 1, now: T0 + 2)     // main clk 2
            #expect(try s.mainHeader("k", vn: 1) == hdr(1, physical: T0 + 2, logical: 2))
            #expect(try s.cacheHeader("k", vn: 1)?.logical == 1)
            #expect(try s.fetch("k", vn: 1, now: T0 + 2) == "v2")
            try s.cleanCache(division: 1)
            // newest wins: the older cache record is not merged over the newer main one
            #expect(try s.fetch("k", vn: 1, now: T0 + 2) == "v2")
            #expect(try s.mainHeader("k", vn: 1)?.logical == 2)
            #expect(s.states[1] == .normal)
        }
    }

    @Test("cache merge follows R2.9 (logical clock within 300 s, physical time beyond)", arguments: engines)
    func mergeRule(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            // 1. cache newer clock → accepted
            try s.injectMain("newerClock", hdr(1, physical: T0, logical: 3), "main", vn: 1)
            try s.injectCache("newerClock", hdr(1, physical: T0, logical: 4), "cache", vn: 1)
            // 2. main newer clock, physical within 300 s → main kept
            try s.injectMain("mainWins", hdr(1, physical: T0, logical: 9), "main", vn: 1)
            try s.injectCache("mainWins", hdr(1, physical: T0 + 299, logical: 8), "cache", vn: 1)
            // 3. equal clocks within 300 s → main kept (cmp <= 0 rejects)
            try s.injectMain("equal", hdr(1, physical: T0, logical: 9), "main", vn: 1)
            try s.injectCache("equal", hdr(1, physical: T0 + 10, logical: 9), "cache", vn: 1)
            // 4. main newer clock but cache physically >= 300 s newer → cache accepted
            try s.injectMain("physical", hdr(1, physical: T0, logical: 9), "main", vn: 1)
            try s.injectCache("physical", hdr(1, physical: T0 + 300, logical: 1), "cache", vn: 1)
            // 5. not in main → accepted, physical clock preserved
            try s.injectCache("fresh", hdr(1, physical: T0 - 1000, logical: 77, expire: T0 + 9), "cache", vn: 1)
            // 6. cache tombstone → header-only tombstone in main
            try s.injectMain("tomb", hdr(1, physical: T0, logical: 1), "main", vn: 1)
            try s.injectCache("tomb", hdr(1, physical: T0 + 1, logical: 2, expire: 0), vn: 1)
            // 7. ring: cache clock 0 follows main 0xffffffff
            try s.injectMain("ring", hdr(1, physical: T0, logical: 0xFFFF_FFFF), "main", vn: 1)
            try s.injectCache("ring", hdr(1, physical: T0, logical: 0), "cache", vn: 1)

            try s.beginCacheCleaning(division: 1)
            try s.cleanCache(division: 1)
            #expect(s.states[1] == .normal)
            #expect(try s.mainRaw("newerClock", vn: 1) == hdr(1, physical: T0, logical: 4).bytes + b("cache"))
            #expect(try s.mainRaw("mainWins", vn: 1) == hdr(1, physical: T0, logical: 9).bytes + b("main"))
            #expect(try s.mainRaw("equal", vn: 1) == hdr(1, physical: T0, logical: 9).bytes + b("main"))
            #expect(try s.mainRaw("physical", vn: 1) == hdr(1, physical: T0 + 300, logical: 1).bytes + b("cache"))
            #expect(try s.mainRaw("fresh", vn: 1) == hdr(1, physical: T0 - 1000, logical: 77, expire: T0 + 9).bytes + b("cache"))
            #expect(try s.mainRaw("tomb", vn: 1) == hdr(1, physical: T0 + 1, logical: 2, expire: 0).bytes)
            #expect(try s.mainRaw("ring", vn: 1) == hdr(1, physical: T0, logical: 0).bytes + b("cache"))
        }
    }

    @Test("a cache tombstone carrying stray value bytes is merged as header only (R2.9)", arguments: engines)
    func tombstoneWithBytes(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            let d = s.div(1)
            let t = hdr(1, logical: 3, expire: 0)
            try d.lock.withLock { try d.cache!.put(key: b("t"), value: t.bytes + b("junk")) }
            try s.beginCacheCleaning(division: 1)
            try s.cleanCache(division: 1)
            #expect(try s.mainRaw("t", vn: 1) == t.bytes)
        }
    }

    @Test("cache cleaning drains caches larger than one batch", arguments: engines)
    func largeCache(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<50 { try s.put("k\(i)", "old", vn: 1) }
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            for i in 0..<357 { try s.put("k\(i)", "new\(i)", vn: 1, now: T0 + 1) }
            #expect(s.cacheCount(ofDivision: 1) == 357)
            try s.beginCacheCleaning(division: 1)
            try s.cleanCache(division: 1, batch: 100)
            #expect(s.states[1] == .normal)
            #expect(s.recordCount(ofDivision: 1) == 357)
            for i in 0..<357 {
                #expect(try s.fetch("k\(i)", vn: 1, now: T0 + 1) == "new\(i)")
                #expect(try s.mainHeader("k\(i)", vn: 1)?.logical == (i < 50 ? 1 : 0))
            }
        }
    }

    @Test("deleteAll during safecopy tombstones in the cache only", arguments: engines)
    func deleteAllInSafecopy(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<8 { try s.put("k\(i)", "v", vn: UInt32(i)) }
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            try s.put("k9", "v", vn: 9)    // division 1, cache only
            #expect(try s.deleteAll(now: T0 + 1) == 9)
            for i in [1, 5] {
                #expect(try s.mainHeader("k\(i)", vn: UInt32(i)) == hdr(UInt32(i), logical: 0))
                #expect(try s.cacheHeader("k\(i)", vn: UInt32(i))?.isTombstone == true)
            }
            #expect(try s.mainHeader("k0", vn: 0)?.isTombstone == true)
            for i in 0..<10 { #expect(try s.fetch("k\(i)", vn: UInt32(i), now: T0 + 1) == nil) }
            try s.beginCacheCleaning(division: 1)
            try s.cleanCache(division: 1)
            #expect(try s.mainHeader("k1", vn: 1)?.isTombstone == true)
            #expect(try s.mainHeader("k9", vn: 9)?.isTombstone == true)
        }
    }

    // MARK: refusals (R7.1, R7.10)

    @Test("refused transitions change nothing", arguments: engines)
    func refusals(engine: EngineChoice) throws {
        try withStorage(engine) { (s, dir) throws in
            let log = { dir.flatMap { $0.text("status.log.1") } ?? "" }
            // out of range
            #expect(throws: HashStorage.SafecopyRefusal.divisionOutOfRange) { try s.beginSafecopy(division: 4) }
            #expect(throws: HashStorage.SafecopyRefusal.divisionOutOfRange) { try s.beginSafecopy(division: -1) }
            #expect(throws: HashStorage.SafecopyRefusal.divisionOutOfRange) { try s.beginCacheCleaning(division: 4) }
            #expect(throws: HashStorage.SafecopyRefusal.divisionOutOfRange) { try s.beginCacheCleaning(division: -1) }
            // normal: only beginSafecopy is allowed
            #expect(throws: HashStorage.SafecopyRefusal.notFlushed(1)) { try s.beginCacheCleaning(division: 1) }
            try s.flush(division: 1)                         // no-op in normal
            try s.cleanCache(division: 1)                    // no-op in normal
            #expect(s.states[1] == .normal)
            #expect(log() == "")
            #expect(!s.hasCache(ofDivision: 1))

            try s.beginSafecopy(division: 1)
            let afterBegin = log()
            // flushing: no second safecopy, no cleaning before the flush
            #expect(throws: HashStorage.SafecopyRefusal.notNormal(1)) { try s.beginSafecopy(division: 1) }
            #expect(throws: HashStorage.SafecopyRefusal.notFlushed(1)) { try s.beginCacheCleaning(division: 1) }
            #expect(throws: HashStorage.SafecopyRefusal.self) { try s.beginSafecopyAll() }
            try s.cleanCache(division: 1)                    // no-op: not cachecleaning
            #expect(s.states[1] == .safecopyFlushing)
            #expect(log() == afterBegin)

            try s.flush(division: 1)
            let afterFlush = log()
            try s.flush(division: 1)                         // no-op: already flushed
            #expect(throws: HashStorage.SafecopyRefusal.notNormal(1)) { try s.beginSafecopy(division: 1) }
            try s.put("k", "v", vn: 1)
            try s.cleanCache(division: 1)                    // no-op: not cachecleaning
            #expect(s.states[1] == .safecopyFlushed)
            #expect(s.cacheCount(ofDivision: 1) == 1)
            #expect(log() == afterFlush)

            try s.beginCacheCleaning(division: 1)
            let afterCleaning = log()
            #expect(throws: HashStorage.SafecopyRefusal.notNormal(1)) { try s.beginSafecopy(division: 1) }
            #expect(throws: HashStorage.SafecopyRefusal.notFlushed(1)) { try s.beginCacheCleaning(division: 1) }
            try s.flush(division: 1)                         // no-op
            #expect(s.states[1] == .cachecleaning)
            #expect(log() == afterCleaning)
            try s.cleanCache(division: 1)
            #expect(s.states == [.normal, .normal, .normal, .normal])
        }
    }

    @Test("the transition table of R7.1")
    func transitionTable() {
        let allowed: Set<String> = [
            "normal>safecopy_flushing", "safecopy_flushing>safecopy_flushed",
            "safecopy_flushed>cachecleaning", "cachecleaning>normal", "cachecleaning>safecopy_flushing",
        ]
        for a in SafecopyState.allCases {
            for c in SafecopyState.allCases {
                #expect(a.canMove(to: c) == allowed.contains("\(a.name)>\(c.name)"), "\(a.name) → \(c.name)")
            }
        }
        #expect(SafecopyState.allCases.map(\.name) == ["normal", "safecopy_flushing", "safecopy_flushed", "cachecleaning"])
        #expect(SafecopyState.allCases.filter(\.writesToCache) == [.safecopyFlushing, .safecopyFlushed])
    }

    @Test("internal transition helper refuses moves outside the table and from a wrong state", arguments: engines)
    func internalTransition(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            #expect(throws: HashStorage.SafecopyRefusal.cannotChange(2)) { try s.transition(2, from: .normal, to: .safecopyFlushed) }
            #expect(throws: HashStorage.SafecopyRefusal.cannotChange(2)) { try s.transition(2, from: .safecopyFlushed, to: .cachecleaning) }
            #expect(s.states[2] == .normal)
        }
    }

    @Test("operations on a closed storage are refused", arguments: engines)
    func closedStorage(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            try s.close()
            #expect(throws: HashStorage.SafecopyRefusal.closed) { try s.beginSafecopy(division: 0) }
            #expect(throws: HashStorage.SafecopyRefusal.closed) { try s.beginSafecopyAll() }
            #expect(throws: HashStorage.SafecopyRefusal.closed) { try s.beginCacheCleaning(division: 0) }
        }
    }

    // MARK: beginSafecopyAll

    @Test("beginSafecopyAll moves every division at once", arguments: engines)
    func safecopyAll(engine: EngineChoice) throws {
        try withStorage(engine) { (s, dir) throws in
            for i in 0..<8 { try s.put("k\(i)", "v", vn: UInt32(i)) }
            try s.beginSafecopyAll()
            #expect(s.states == Array(repeating: .safecopyFlushing, count: 4))
            for i in 0..<4 {
                #expect(s.hasCache(ofDivision: i))
                if let dir { #expect(dir.exists("\(i).cache.tc")) }
            }
            for i in 0..<8 { try s.put("k\(i)", "w", vn: UInt32(i)) }
            for i in 0..<4 {
                #expect(s.cacheCount(ofDivision: i) == 2)
                try s.flush(division: i)
            }
            #expect(s.states == Array(repeating: .safecopyFlushed, count: 4))
            for i in 0..<4 {
                try s.beginCacheCleaning(division: i)
                try s.cleanCache(division: i)
            }
            #expect(s.states == Array(repeating: .normal, count: 4))
            for i in 0..<8 { #expect(try s.mainHeader("k\(i)", vn: UInt32(i))?.logical == 1) }
            if let dir {
                let events = statusEvents(dir.text("status.log.1"))
                #expect(Array(events.prefix(4)) == (0..<4).map { "\($0) safecopy_flushing" })
                #expect(events.count == 16)
            }
        }
    }

    @Test("beginSafecopyAll is refused, changing nothing, unless all divisions are normal", arguments: engines)
    func safecopyAllRefused(engine: EngineChoice) throws {
        try withStorage(engine) { (s, dir) throws in
            try s.beginSafecopy(division: 2)
            let logBefore = dir?.text("status.log.1")
            #expect(throws: HashStorage.SafecopyRefusal.notNormal(2)) { try s.beginSafecopyAll() }
            #expect(s.states == [.normal, .normal, .safecopyFlushing, .normal])
            for i in [0, 1, 3] {
                #expect(!s.hasCache(ofDivision: i))
                if let dir { #expect(!dir.exists("\(i).cache.tc")) }
            }
            #expect(dir?.text("status.log.1") == logBefore)
            try s.flush(division: 2)
            #expect(throws: HashStorage.SafecopyRefusal.notNormal(2)) { try s.beginSafecopyAll() }
            try s.beginCacheCleaning(division: 2)
            #expect(throws: HashStorage.SafecopyRefusal.notNormal(2)) { try s.beginSafecopyAll() }
            try s.cleanCache(division: 2)
            try s.beginSafecopyAll()
            #expect(s.states == Array(repeating: .safecopyFlushing, count: 4))
        }
    }

    @Test("beginCacheCleaningAll: all flushed → all cachecleaning; otherwise refused, changing nothing", arguments: engines)
    func cacheCleaningAll(engine: EngineChoice) throws {
        try withStorage(engine) { (s, dir) throws in
            #expect(throws: HashStorage.SafecopyRefusal.notFlushed(0)) { try s.beginCacheCleaningAll() }
            try s.beginSafecopyAll()
            for i in 0..<8 { try s.put("k\(i)", "v", vn: UInt32(i)) }
            try s.flush(division: 0)
            try s.flush(division: 1)
            try s.flush(division: 3)
            let logBefore = dir?.text("status.log.1")
            #expect(throws: HashStorage.SafecopyRefusal.notFlushed(2)) { try s.beginCacheCleaningAll() }
            #expect(s.states == [.safecopyFlushed, .safecopyFlushed, .safecopyFlushing, .safecopyFlushed])
            #expect(dir?.text("status.log.1") == logBefore)
            try s.flush(division: 2)
            try s.beginCacheCleaningAll()
            #expect(s.states == Array(repeating: .cachecleaning, count: 4))
            for i in 0..<4 { try s.cleanCache(division: i) }
            #expect(s.states == Array(repeating: .normal, count: 4))
            for i in 0..<8 { #expect(try s.mainHeader("k\(i)", vn: UInt32(i))?.logical == 0) }
            if let dir {
                #expect(Array(statusEvents(dir.text("status.log.1")).suffix(8)) ==
                        (0..<4).map { "\($0) cachecleaning" } + (0..<4).map { "\($0) normal" })
            }
            try s.close()
            #expect(throws: HashStorage.SafecopyRefusal.closed) { try s.beginCacheCleaningAll() }
        }
    }

    @Test("beginSafecopyAll is a consistent cut under concurrent writers", arguments: engines)
    func safecopyAllConsistentCut(engine: EngineChoice) throws {
        // A writer sets k0, k1, k2, k3 (one per division) to the same sequence number in order.
        // After the cut, the main engines hold a prefix of the sequence: main(k_i) >= main(k_{i+1})
        // and never more than one step apart.
        try withStorage(engine) { (s, _) throws in
            for i in 0..<4 { try s.put("k\(i)", "0", vn: UInt32(i)) }
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) {
                for n in 1...400 {
                    for i in 0..<4 { _ = try? s.put("k\(i)", "\(n)", vn: UInt32(i)) }
                }
            }
            usleep(2000)
            try s.beginSafecopyAll()
            group.wait()
            let main = try (0..<4).map { i in
                try Int(String(decoding: s.mainRaw("k\(i)", vn: UInt32(i))!.dropFirst(16), as: UTF8.self))!
            }
            for i in 0..<3 {
                #expect(main[i] >= main[i + 1])
                #expect(main[i] - main[i + 1] <= 1)
            }
            for i in 0..<4 { #expect(try s.fetch("k\(i)", vn: UInt32(i)) == "400") }
        }
    }

    // MARK: concurrency across transitions

    @Test("no write is lost while divisions cycle through safecopy", arguments: engines)
    func noLostWritesAcrossTransitions(engine: EngineChoice) throws {
        try withStorage(engine, divnum: 2) { (s, _) throws in
            let writes = 1500
            let group = DispatchGroup()
            for t in 0..<2 {
                DispatchQueue.global().async(group: group) {
                    for n in 0..<writes {
                        _ = try? s.put("w\(t)", "\(n)", vn: UInt32(t))
                        _ = try? s.put("x\(n % 37)", "\(n)", vn: UInt32(t))
                    }
                }
            }
            var cycles = 0
            while group.wait(timeout: .now()) == .timedOut || cycles < 3 {
                for i in 0..<2 {
                    try s.beginSafecopy(division: i)
                    try s.flush(division: i)
                    try s.beginCacheCleaning(division: i)
                    try s.cleanCache(division: i, batch: 7)
                }
                cycles += 1
            }
            #expect(s.states == [.normal, .normal])
            for t in 0..<2 {
                // every set continued the clock: clk == number of previous sets
                #expect(try s.fetch("w\(t)", vn: UInt32(t)) == "\(writes - 1)")
                #expect(try s.header("w\(t)", vn: UInt32(t))?.logical == UInt32(writes - 1))
            }
        }
    }

    // MARK: TC files

    @Test("TC: main file bytes do not change while in safecopy_flushed, whatever the writes")
    func tcMainFileFrozen() throws {
        let dir = TempDir("frozen")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir)
        defer { try? s.close() }
        for i in 0..<200 { try s.put("k\(i)", String(repeating: "v", count: i), vn: UInt32(4 * i + 1)) }
        try s.beginSafecopy(division: 1)
        try s.flush(division: 1)
        let frozen = try #require(dir.bytes("1.tc"))
        let otherBefore = dir.bytes("0.tc")
        for i in 0..<200 {
            let vn = UInt32(4 * i + 1)
            switch i % 6 {
            case 0: try s.put("k\(i)", "new", vn: vn, now: T0 + 1)
            case 1: _ = try s.remove("k\(i)", vn: vn, now: T0 + 1)
            case 2: _ = try s.put(.append, "k\(i)", "tail", vn: vn, now: T0 + 1)
            case 3: _ = try s.touch("k\(i)", expire: T0 + 5, vn: vn, now: T0 + 1)
            case 4: _ = try s.counter("k\(i)", "1", vn: vn, now: T0 + 1)
            default: try s.put("fresh\(i)", String(repeating: "x", count: 3000), vn: vn, now: T0 + 1)
            }
            _ = try s.fetch("k\(i)", vn: vn, now: T0 + 1)
        }
        _ = try s.remove("never", vn: 1, now: T0 + 1)
        _ = try s.deleteAll(now: T0 + 2)
        try s.syncAll()
        #expect(dir.bytes("1.tc") == frozen)
        #expect(dir.bytes("0.tc") == otherBefore)   // division 0 had no records and no writes
        #expect(s.recordCount(ofDivision: 1) == 200)
        #expect(s.cacheCount(ofDivision: 1) > 0)
        #expect(dir.exists("1.cache.tc"))
    }

    @Test("TC: flush makes the main file complete on disk (a copy taken in safecopy_flushed reopens with all data)")
    func tcFlushedCopyIsComplete() throws {
        let dir = TempDir("copy")
        let copyDir = TempDir("copy-dst")
        defer { dir.remove(); copyDir.remove() }
        let s = try openStorage(.tc, dir: dir, divnum: 2)
        defer { try? s.close() }
        for i in 0..<300 { try s.put("k\(i)", "v\(i)", vn: UInt32(2 * i + 1)) }
        try s.beginSafecopy(division: 1)
        try s.flush(division: 1)
        try s.put("k0", "changed", vn: 1)
        let bytes = try #require(dir.bytes("1.tc"))
        _ = FileManager.default.createFile(atPath: copyDir.file("1.tc"), contents: Data(bytes))
        let engine = try TCEngine(path: copyDir.file("1.tc"), options: TCOptions())
        defer { try? engine.close() }
        #expect(engine.recordCount == 300)
        let raw = try #require(try engine.value(forKey: b("k0")))
        #expect(Array(raw.dropFirst(16)) == b("v0"))
    }

    @Test("TC: close in safecopy_flushed keeps the cache; next open merges it back")
    func tcCrashRecoveryFromFlushed() throws {
        let dir = TempDir("recover")
        defer { dir.remove() }
        do {
            let s = try openStorage(.tc, dir: dir)
            try s.put("keep", "main", vn: 1)
            try s.put("changed", "old", vn: 1)
            try s.put("deleted", "x", vn: 1)
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            try s.put("changed", "new", vn: 1, now: T0 + 1)
            try s.put("added", "a", vn: 1, now: T0 + 1)
            _ = try s.remove("deleted", vn: 1, now: T0 + 1)
            try s.close()
            #expect(dir.exists("1.cache.tc"))
            #expect(!dir.exists("lock"))
            #expect(statusEvents(dir.text("status.log.1")) == ["1 safecopy_flushing", "1 safecopy_flushed"])
        }
        let s = try openStorage(.tc, dir: dir)
        defer { try? s.close() }
        #expect(s.states == [.normal, .normal, .normal, .normal])
        #expect(!dir.exists("1.cache.tc"))
        #expect(!s.hasCache(ofDivision: 1))
        #expect(try s.fetch("keep", vn: 1, now: T0 + 1) == "main")
        #expect(try s.fetch("changed", vn: 1, now: T0 + 1) == "new")
        #expect(try s.mainHeader("changed", vn: 1)?.logical == 1)
        #expect(try s.fetch("added", vn: 1, now: T0 + 1) == "a")
        #expect(try s.fetch("deleted", vn: 1, now: T0 + 1) == nil)
        #expect(try s.mainRaw("deleted", vn: 1)?.count == 16)
        #expect(statusEvents(dir.text("status.log.1")) ==
                ["1 safecopy_flushing", "1 safecopy_flushed", "1 safecopy_flushed", "1 cachecleaning", "1 normal"])
        #expect(s.openNotes.contains { $0.contains("1.cache.tc") })
        // the division works normally afterwards
        try s.beginSafecopy(division: 1)
        #expect(s.states[1] == .safecopyFlushing)
    }

    @Test("TC: close in safecopy_flushing / cachecleaning is recovered too", arguments: [0, 1])
    func tcCrashRecoveryOtherStates(stage: Int) throws {
        let dir = TempDir("recover2")
        defer { dir.remove() }
        do {
            let s = try openStorage(.tc, dir: dir)
            try s.put("k", "v0", vn: 2)
            try s.beginSafecopy(division: 2)
            try s.put("k", "v1", vn: 2, now: T0 + 1)
            if stage == 1 {
                try s.flush(division: 2)
                try s.beginCacheCleaning(division: 2)
                try s.put("k2", "main", vn: 2, now: T0 + 2)
            }
            try s.close()
            #expect(dir.exists("2.cache.tc"))
        }
        let s = try openStorage(.tc, dir: dir)
        defer { try? s.close() }
        #expect(s.states == [.normal, .normal, .normal, .normal])
        #expect(!dir.exists("2.cache.tc"))
        #expect(try s.fetch("k", vn: 2, now: T0 + 2) == "v1")
        if stage == 1 { #expect(try s.fetch("k2", vn: 2, now: T0 + 2) == "main") }
        #expect(Array(statusEvents(dir.text("status.log.1")).suffix(3)) == ["2 safecopy_flushed", "2 cachecleaning", "2 normal"])
    }

    @Test("TC: several leftover caches are all merged at open")
    func tcRecoverSeveral() throws {
        let dir = TempDir("recover3")
        defer { dir.remove() }
        do {
            let s = try openStorage(.tc, dir: dir)
            try s.beginSafecopyAll()
            for i in 0..<40 { try s.put("k\(i)", "v\(i)", vn: UInt32(i)) }
            try s.close()
            for i in 0..<4 { #expect(dir.exists("\(i).cache.tc")) }
        }
        let s = try openStorage(.tc, dir: dir)
        defer { try? s.close() }
        #expect(s.states == Array(repeating: .normal, count: 4))
        for i in 0..<4 { #expect(!dir.exists("\(i).cache.tc")) }
        for i in 0..<40 { #expect(try s.mainRaw("k\(i)", vn: UInt32(i)).map { Array($0.dropFirst(16)) } == b("v\(i)")) }
        #expect(s.openNotes.count == 4)
    }
}

@Suite("Opening a TC storage with damaged files")
struct DamagedOpenTests {
    @Test("a corrupt main file: open fails with a StorageError and leaves no lock behind")
    func corruptMain() throws {
        let dir = TempDir("badmain")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir)
        try s.close()
        dir.write("2.tc", String(repeating: "not a tokyo cabinet file ", count: 40))
        #expect(throws: StorageError.self) { try openStorage(.tc, dir: dir) }
        #expect(!dir.exists("lock"))
    }

    @Test("a corrupt leftover cache: open fails, keeps the cache file, and leaves no lock behind")
    func corruptCache() throws {
        let dir = TempDir("badcache")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir)
        try s.put("k", "v", vn: 1)
        try s.close()
        let junk = String(repeating: "not a tokyo cabinet file ", count: 40)
        dir.write("1.cache.tc", junk)
        var message = ""
        do { _ = try openStorage(.tc, dir: dir) } catch { message = "\(error)" }
        #expect(message.contains("1.cache.tc"))
        // the leftover may hold acknowledged writes: never deleted by a failed open
        #expect(dir.text("1.cache.tc") == junk)
        // a failed open must not leave the directory looking locked (nor hand the next
        // opener a "stale lock left by PID <our own, running PID>" note)
        #expect(!dir.exists("lock"))
        do {
            _ = try openStorage(.tc, dir: dir)
        } catch {
            #expect(!"\(error)".contains("Lock file"), "second attempt: \(error)")
        }
    }
}
