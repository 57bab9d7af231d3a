import Testing
@testable import ROMAStorage

/// SplitMix64: a tiny seeded generator, so every run of these tests does the same operations.
struct ArenaTestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// `count` pseudo-random bytes, filled 8 at a time.
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { b in
            var i = 0
            while i + 8 <= count { b.storeBytes(of: next(), toByteOffset: i, as: UInt64.self); i += 8 }
            var last = next()
            while i < count { b[i] = UInt8(truncatingIfNeeded: last); last >>= 8; i += 1 }
        }
        return out
    }
}

private extension ArenaMemoryEngine {
    func get(_ key: [UInt8]) throws -> [UInt8]? { try value(forKey: key) }
    @discardableResult func del(_ key: [UInt8]) throws -> Bool { try key.withUnsafeBytes { try remove(key: $0) } }
    /// Address of the stored value bytes (to tell an in-place overwrite from a moved record).
    func valueAddress(_ key: [UInt8]) throws -> UnsafeRawPointer? {
        try key.withUnsafeBytes { k in try withValue(forKey: k) { $0?.baseAddress } }
    }
    func contents() throws -> [[UInt8]: [UInt8]] {
        var all: [[UInt8]: [UInt8]] = [:]
        try forEach { k, v in
            let old = all.updateValue(Array(v), forKey: Array(k))
            #expect(old == nil, "forEach visited a key twice")
            return true
        }
        return all
    }
}

private func key(_ i: Int) -> [UInt8] { Array("key-\(i)".utf8) }

@Suite("ArenaMemoryEngine")
struct ArenaMemoryEngineTests {
    @Test("KeyHash matches wyhash's published test vectors")
    func wyhashVectors() {
        let vectors: [(UInt64, String)] = [
            (0x93228a4de0eec5a2, ""),
            (0xc5bac3db178713c4, "a"),
            (0xa97f2f7b1d9b3314, "abc"),
            (0x786d1f1df3801df4, "message digest"),
            (0xdca5a8138ad37c87, "abcdefghijklmnopqrstuvwxyz"),
            (0xb9e734f117cfaf70, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            (0x6cc5eab49a92d617, "12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
        ]
        for (seed, (expected, message)) in vectors.enumerated() {
            let h = Array(message.utf8).withUnsafeBytes { KeyHash(seed: UInt64(seed)).hash($0) }
            #expect(h == expected, "wyhash(\"\(message)\", seed \(seed))")
        }
        // Every length from 0 to 100 at an unaligned address hashes like the aligned copy.
        var rng = ArenaTestRNG(seed: 7)
        let data = rng.bytes(101)
        let hasher = KeyHash(seed: 99)
        for n in 0...100 {
            let aligned = Array(data[0..<n])
            let a = aligned.withUnsafeBytes { hasher.hash($0) }
            let b = data.withUnsafeBytes { hasher.hash(UnsafeRawBufferPointer(rebasing: $0[1..<(1 + n)])) }
            let c = Array(data[1..<(1 + n)]).withUnsafeBytes { hasher.hash($0) }
            #expect(b == c)
            if n > 0 { #expect(a != KeyHash(seed: 100).hash(aligned.withUnsafeBytes { UnsafeRawBufferPointer($0) })) }
        }
    }

    @Test("MemoryEngine is the arena engine")
    func memoryEngineIsArena() throws {
        let e = MemoryEngine()
        #expect(type(of: e) == ArenaMemoryEngine.self)
        try e.put(key: [1, 2, 3], value: [4, 5])
        #expect(try e.value(forKey: [1, 2, 3]) == [4, 5])
        #expect(e.path == nil && e.fileSize == 0)
    }

    /// 100 000 mixed operations checked against a Dictionary: keys of 1–250 bytes, values of
    /// 0–70 000 bytes (empty ones included) and a few larger than a page.
    @Test("randomized model test against a Dictionary", arguments: [ArenaMemoryEngine.defaultPageSize, 4096])
    func modelTest(pageSize: Int) throws {
        let e = ArenaMemoryEngine(pageSize: pageSize, seed: 42)
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = ArenaTestRNG(seed: 0x5eed_0000 + UInt64(pageSize))
        // A pool of keys, so that operations hit existing keys often.
        var pool: [[UInt8]] = []
        for _ in 0..<4000 {
            let n = rng.next() % 8 == 0 ? Int.random(in: 41...250, using: &rng) : Int.random(in: 1...40, using: &rng)
            pool.append(rng.bytes(n))
        }
        pool.append([0])  // a 1-byte key that is a prefix of nothing special
        func randomValue() -> [UInt8] {
            let r = Int.random(in: 0..<1000, using: &rng)
            let n: Int
            switch r {
            case 0..<50: n = 0
            case 50..<800: n = Int.random(in: 1...300, using: &rng)
            case 800..<950: n = Int.random(in: 301...4000, using: &rng)
            case 950..<998: n = Int.random(in: 4001...70_000, using: &rng)
            default: n = pageSize + Int.random(in: 1...70_000, using: &rng)  // larger than a page
            }
            return rng.bytes(n)
        }
        var puts = 0, replaces = 0, removes = 0, hits = 0
        for op in 0..<100_000 {
            let k = pool[Int.random(in: 0..<pool.count, using: &rng)]
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<45:
                let v = randomValue()
                if model[k] != nil { replaces += 1 }
                try e.put(key: k, value: v)
                model[k] = v
                puts += 1
            case 45..<65:
                let removed = try e.del(k)
                #expect(removed == (model.removeValue(forKey: k) != nil))
                removes += 1
            default:
                let got = try e.get(k)
                #expect(got == model[k])
                if got != nil { hits += 1 }
            }
            if op % 10_000 == 9_999 {
                #expect(e.recordCount == UInt64(model.count))
                #expect(try e.contents() == model)
            }
        }
        #expect(replaces > 10_000 && removes > 10_000 && hits > 10_000, "\(puts) \(replaces) \(removes) \(hits)")
        for k in pool { #expect(try e.get(k) == model[k]) }
        #expect(try e.get(Array(repeating: 0xAB, count: 300)) == nil)
        #expect(e.recordCount == UInt64(model.count))
        // Remove everything: only pages and a minimal index remain.
        for k in pool { try e.del(k) }
        #expect(e.recordCount == 0)
        #expect(try e.keys(limit: 10).isEmpty)
        #expect(e.indexCapacity == 16)
        try e.close()
        #expect(e.pageCount == 0)
    }

    @Test("empty keys and empty values are records like any other")
    func emptyKeyAndValue() throws {
        let e = ArenaMemoryEngine()
        try e.put(key: [], value: [])
        try e.put(key: [0], value: [])
        #expect(try e.get([]) == [])
        #expect(try e.get([0]) == [])
        #expect(try e.get([0, 0]) == nil)
        #expect(e.recordCount == 2)
        try e.put(key: [], value: [9, 9])
        #expect(try e.get([]) == [9, 9])
        // A nil-based empty buffer works as a key too.
        let found = try e.withValue(forKey: UnsafeRawBufferPointer(start: nil, count: 0)) { $0.map(Array.init) }
        #expect(found == [9, 9])
        #expect(try e.del([]))
        #expect(try !e.del([]))
        #expect(e.recordCount == 1)
    }

    @Test("the index grows past 3/4 load and shrinks below 1/8, keeping every record")
    func growthAndShrink() throws {
        let e = ArenaMemoryEngine()
        #expect(e.indexCapacity == 16)
        let n = 200_000
        var lastCapacity = e.indexCapacity
        var growths = 0
        for i in 0..<n {
            try e.put(key: key(i), value: Array(key(i).reversed()))
            if e.indexCapacity != lastCapacity { growths += 1; lastCapacity = e.indexCapacity }
            #expect(Int(e.recordCount) * 4 <= e.indexCapacity * 3)
        }
        #expect(growths == 15)  // 16 → 524 288 (200 000 > 0.75 × 262 144)
        #expect(e.indexCapacity == 524_288)
        for i in 0..<n { #expect(try e.get(key(i)) == Array(key(i).reversed())) }
        for i in 0..<n where i % 20 != 0 { #expect(try e.del(key(i))) }
        #expect(e.recordCount == UInt64(n / 20))
        #expect(e.indexCapacity < 524_288 && Int(e.recordCount) * 4 <= e.indexCapacity * 3)
        for i in 0..<n { #expect(try e.get(key(i)) == (i % 20 == 0 ? Array(key(i).reversed()) : nil)) }
        #expect(try e.contents().count == n / 20)
    }

    @Test("colliding home positions: deletion in the middle of long probe runs")
    func backwardShiftDeletion() throws {
        // A tiny engine: 12 keys in 16 entries make long runs that wrap around the table end.
        var rng = ArenaTestRNG(seed: 3)
        for round in 0..<300 {
            let e = ArenaMemoryEngine(pageSize: 4096, seed: UInt64(round))
            var model: [[UInt8]: [UInt8]] = [:]
            let keys = (0..<12).map { _ in rng.bytes(Int.random(in: 1...12, using: &rng)) }
            for k in keys { try e.put(key: k, value: k); model[k] = k }
            for k in keys.shuffled(using: &rng) {
                #expect(try e.del(k) == (model.removeValue(forKey: k) != nil))
                for other in keys { #expect(try e.get(other) == model[other]) }
            }
            #expect(e.recordCount == 0)
        }
    }

    @Test("a replacement in the same size class is written in place; others move")
    func inPlaceOverwrite() throws {
        let e = ArenaMemoryEngine()
        let k = key(1)
        try e.put(key: k, value: [UInt8](repeating: 1, count: 100))
        let a = try e.valueAddress(k)
        try e.put(key: k, value: [UInt8](repeating: 2, count: 101))  // 8 + 5 + 101 = 114: still class 144? check below
        let sizes = e.slotSizes
        let cls = { (n: Int) in sizes.firstIndex { $0 >= 8 + k.count + n }! }
        #expect(cls(100) == cls(101))
        #expect(try e.valueAddress(k) == a)
        #expect(try e.get(k) == [UInt8](repeating: 2, count: 101))
        try e.put(key: k, value: [UInt8](repeating: 3, count: 1000))
        #expect(try e.valueAddress(k) != a)
        #expect(try e.get(k) == [UInt8](repeating: 3, count: 1000))
        // The freed slot is reused by the next record of that class.
        try e.put(key: key(2), value: [UInt8](repeating: 4, count: 100))
        #expect(try e.valueAddress(key(2)).map { $0 - key(2).count } == a.map { $0 - k.count })
    }

    @Test("a value read from the engine can be stored back into it")
    func aliasingPut() throws {
        let e = ArenaMemoryEngine(pageSize: 4096)
        try e.put(key: key(1), value: Array(0..<200))
        // Same slot, in place (shifted copy of its own bytes).
        try key(1).withUnsafeBytes { k in
            try e.withValue(forKey: k) { v in try e.put(key: k, value: UnsafeRawBufferPointer(rebasing: v!.dropFirst(3))) }
        }
        #expect(try e.get(key(1)) == Array(3..<200))
        // Into a different class: the new slot is written before the old one is freed.
        try key(1).withUnsafeBytes { k in
            try e.withValue(forKey: k) { v in try e.put(key: k, value: UnsafeRawBufferPointer(rebasing: v!.prefix(10))) }
        }
        #expect(try e.get(key(1)) == Array(3..<13))
        // Copy one record's value to another key.
        try e.put(key: key(2), value: Array(repeating: 7, count: 5000))
        try key(2).withUnsafeBytes { k in
            try e.withValue(forKey: k) { v in try e.put(key: key(3), value: [UInt8](v!)) }
        }
        #expect(try e.get(key(3)) == Array(repeating: 7, count: 5000))
    }

    @Test("free slots are reused: repeated overwrite/delete cycles do not grow memory")
    func freeListReuse() throws {
        let e = ArenaMemoryEngine()
        let n = 20_000
        var rng = ArenaTestRNG(seed: 11)
        func cycle() throws {
            for i in 0..<n { try e.put(key: key(i), value: rng.bytes(100)) }        // class A
            for i in 0..<n { try e.put(key: key(i), value: rng.bytes(600)) }        // moves to class B
            for i in stride(from: 0, to: n, by: 2) { try e.del(key(i)) }
            for i in 0..<(n / 100) { try e.put(key: key(n + i), value: rng.bytes(200_000)) }  // dedicated blocks
            for i in 0..<(n / 100) { try e.del(key(n + i)) }
            for i in 0..<n { try e.put(key: key(i), value: rng.bytes(Int.random(in: 0...2000, using: &rng))) }
            for i in 0..<n where i % 3 == 0 { try e.del(key(i)) }
        }
        try cycle()
        let afterFirst = e.allocatedBytes
        var peak = afterFirst
        for _ in 0..<15 {
            try cycle()
            peak = max(peak, e.allocatedBytes)
        }
        // Steady state: at most a few pages more than after the first cycle (random sizes move
        // records between classes, which may need a fresh page in some class now and then).
        #expect(peak <= afterFirst + afterFirst / 10, "first cycle \(afterFirst) B, peak \(peak) B")
        // Large records are returned to the system at once.
        let before = e.allocatedBytes
        try e.put(key: [1], value: [UInt8](repeating: 1, count: 3 << 20))
        #expect(e.allocatedBytes >= before + 3 << 20)
        try e.put(key: [1], value: [UInt8](repeating: 1, count: 2 << 20))
        #expect(e.allocatedBytes >= before + 2 << 20 && e.allocatedBytes < before + 3 << 20)
        try e.del([1])
        #expect(e.allocatedBytes == before)
        // close() frees everything but a minimal index and the page table.
        try e.close()
        #expect(e.recordCount == 0 && e.pageCount == 0)
        #expect(e.allocatedBytes < 4096)
        try e.put(key: [2], value: [3])
        #expect(try e.get([2]) == [3])
    }

    @Test("same-size overwrite and delete/insert loops allocate nothing new")
    func steadyOverwrite() throws {
        let e = ArenaMemoryEngine()
        for i in 0..<10_000 { try e.put(key: key(i), value: [UInt8](repeating: 1, count: 116)) }
        let base = e.allocatedBytes
        for round in 0..<20 {
            for i in 0..<10_000 { try e.put(key: key(i), value: [UInt8](repeating: UInt8(round), count: 116)) }
            for i in 0..<5_000 { try e.del(key(i)) }
            for i in 0..<5_000 { try e.put(key: key(i), value: [UInt8](repeating: 2, count: 110)) }
        }
        #expect(e.allocatedBytes == base)
    }

    @Test("draining with keys(limit:) + remove visits every key once and empties the engine")
    func drainLoop() throws {
        let e = ArenaMemoryEngine()
        let n = 50_000
        for i in 0..<n { try e.put(key: key(i), value: [UInt8(i & 0xff)]) }
        var seen = Set<[UInt8]>()
        var batches = 0
        var added = 0
        while true {
            let batch = try e.keys(limit: 100)
            if batch.isEmpty { break }
            #expect(batch.count <= 100)
            batches += 1
            for k in batch {
                #expect(seen.insert(k).inserted, "key returned twice")
                #expect(try e.del(k))
            }
            // Writes landing while the drain runs are drained too.
            if batches % 50 == 0 && added < 1000 {
                for j in 0..<100 { try e.put(key: key(n + added + j), value: []) }
                added += 100
            }
        }
        #expect(seen.count == n + added)
        #expect(e.recordCount == 0)
        #expect(try e.keys(limit: 1).isEmpty)
        #expect(try e.keys(limit: 0).isEmpty)
        // A drain that keeps some keys still sees all of them across wrapped calls.
        for i in 0..<1000 { try e.put(key: key(i), value: []) }
        var partial = Set<[UInt8]>()
        for _ in 0..<20 { for k in try e.keys(limit: 100) { partial.insert(k) } }
        #expect(partial.count == 1000)
    }

    @Test("forEach visits every record exactly once, stops on false, and rethrows")
    func forEachCompleteness() throws {
        let e = ArenaMemoryEngine(pageSize: 4096)
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = ArenaTestRNG(seed: 5)
        for i in 0..<5000 {
            let v = rng.bytes(i % 97 == 0 ? 10_000 : i % 300)
            try e.put(key: key(i), value: v)
            model[key(i)] = v
        }
        #expect(try e.contents() == model)
        var visited = 0
        try e.forEach { _, _ in visited += 1; return visited < 10 }
        #expect(visited == 10)
        struct Stop: Error {}
        #expect(throws: Stop.self) { try e.forEach { _, _ in throw Stop() } }
        #expect(e.recordCount == 5000)
        let empty = ArenaMemoryEngine()
        try empty.forEach { _, _ in Issue.record("visited a record of an empty engine"); return true }
    }

    @Test("recordCount follows puts, replacements and removals")
    func recordCount() throws {
        let e = ArenaMemoryEngine()
        #expect(e.recordCount == 0)
        for i in 0..<1000 { try e.put(key: key(i), value: [1]) }
        #expect(e.recordCount == 1000)
        for i in 0..<1000 { try e.put(key: key(i), value: [1, 2, 3]) }
        #expect(e.recordCount == 1000)
        for i in 0..<500 { try e.del(key(i)) }
        for i in 0..<500 { try e.del(key(i)) }
        #expect(e.recordCount == 500)
        try e.close()
        #expect(e.recordCount == 0)
        #expect(try e.get(key(999)) == nil)
    }

    @Test("size classes: geometric, 16-byte multiples, from 32 bytes to 1/8 page")
    func sizeClasses() {
        for pageSize in [4096, 1 << 16, 1 << 20] {
            let s = ArenaMemoryEngine(pageSize: pageSize).slotSizes
            #expect(s.first == 32 && s.last == pageSize / 8)
            for (a, b) in zip(s, s.dropFirst()) {
                #expect(b % 16 == 0 && b > a && (b <= a * 5 / 4 + 16 || b == s.last))
            }
        }
    }

    @Test("the memory storage works on the arena engine through writes, safecopy and cache cleaning")
    func throughHashStorage() throws {
        let now: UInt32 = 1_700_000_000
        let st = try HashStorage(name: "roma", directory: nil, divnum: 2, engine: .memory, divisionOf: { Int($0 % 2) })
        defer { try? st.close() }
        func set(_ i: Int, _ v: [UInt8]) throws {
            let r = try key(i).withUnsafeBytes { k in
                try v.withUnsafeBytes { try st.store(.set, vn: UInt32(i), key: k, value: $0, expire: RecordHeader.noExpire, now: now) }
            }
            #expect(r == .stored)
        }
        func get(_ i: Int) throws -> [UInt8]? {
            try key(i).withUnsafeBytes { k in try st.get(vn: UInt32(i), key: k, now: now) { _, v in Array(v) } }
        }
        for i in 0..<3000 { try set(i, Array("v\(i)".utf8)) }
        try st.beginSafecopy(division: 0)
        // Division 0 (even vnodes) now writes to its cache engine.
        for i in stride(from: 0, to: 3000, by: 3) { try set(i, Array("w\(i)".utf8)) }
        try st.flush(division: 0)
        try st.beginCacheCleaning(division: 0)
        try st.cleanCache(division: 0)
        #expect(st.states[0] == .normal)
        for i in 0..<3000 { #expect(try get(i) == Array((i % 3 == 0 ? "w\(i)" : "v\(i)").utf8)) }
        #expect(st.totalRecords == 3000)
    }
}
