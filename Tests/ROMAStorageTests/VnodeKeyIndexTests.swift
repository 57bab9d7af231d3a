import Foundation
import Testing
@testable import ROMAStorage

/// The vnode index that vnode copies read their keys from (`HashStorage.keys(ofVnode:)`).
/// Division of a key = vn % 4 here.
@Suite("vnode key index")
struct VnodeKeyIndexTests {
    static let engines = EngineChoice.allCases

    private func names(_ keys: [[UInt8]]) -> [String] { keys.map { String(decoding: $0, as: UTF8.self) }.sorted() }

    @Test("one pass builds the index; later writes of every kind are listed, each key once", arguments: engines)
    func writesAfterTheBuildAreListed(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<400 { try s.put("k\(i)", "v", vn: UInt32(i % 8)) }
            #expect(s.vnodeIndexUsage.keys == 0)
            let first = try s.keys(ofVnode: 5, slice: 7)
            #expect(names(first) == (0..<400).filter { $0 % 8 == 5 }.map { "k\($0)" }.sorted())
            // The pass indexed the whole division 1 (vnodes 1 and 5), nothing else.
            #expect(s.vnodeIndexUsage.keys == 100)
            #expect(names(try s.keys(ofVnode: 1)) == (0..<400).filter { $0 % 8 == 1 }.map { "k\($0)" }.sorted())

            // Writes after the build: a new key, an overwrite of a listed one, a delete mark of a
            // key that never existed, a replica write and a stream record.
            try s.put("new", "n", vn: 5, now: T0 + 1)
            try s.put("k5", "again", vn: 5, now: T0 + 1)
            #expect(try s.remove("ghost", vn: 5, now: T0 + 1) == false)
            _ = try Array("rep".utf8).withUnsafeBytes { k in
                try Array("r".utf8).withUnsafeBytes { v in
                    try s.replicaSet(vn: 5, key: k, value: v, clock: 3, expire: 0x7fff_ffff, now: T0 + 1)
                }
            }
            _ = try Array("str".utf8).withUnsafeBytes { k in
                try Array("s".utf8).withUnsafeBytes { v in
                    try s.streamPut(vn: 5, key: k, physical: T0, logical: 1, expire: 0x7fff_ffff, value: v)
                }
            }
            // A write to another division builds nothing there.
            try s.put("other", "o", vn: 2, now: T0 + 1)
            let after = names(try s.keys(ofVnode: 5))
            let expected = ((0..<400).filter { $0 % 8 == 5 }.map { "k\($0)" } + ["new", "ghost", "rep", "str"]).sorted()
            #expect(after == expected)
            #expect(Set(after).count == after.count)
            #expect(!after.contains("other"))
        }
    }

    @Test("writes diverted to a snapshot's cache stay listed through cache cleaning", arguments: engines)
    func snapshotWritesAreListed(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<50 { try s.put("k\(i)", "v", vn: 1) }
            #expect(try s.keys(ofVnode: 1).count == 50)
            try s.beginSafecopy(division: 1)
            try s.put("during", "d", vn: 1, now: T0 + 1)
            try s.flush(division: 1)
            try s.beginCacheCleaning(division: 1)
            try s.put("cleaning", "c", vn: 1, now: T0 + 2)
            try s.cleanCache(division: 1)
            let keys = names(try s.keys(ofVnode: 1))
            #expect(keys.count == 52)
            #expect(keys.contains("during") && keys.contains("cleaning"))
        }
    }

    @Test("an index no copy used for a whole sweep interval is dropped, and built again when needed", arguments: engines)
    func idleIndexesAreDropped(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<40 { try s.put("k\(i)", "v", vn: UInt32(i % 4)) }
            _ = try s.keys(ofVnode: 0)
            _ = try s.keys(ofVnode: 3)
            #expect(s.vnodeIndexUsage.keys == 20)
            #expect(s.dropIdleVnodeIndexes() == 0, "used since the build")
            _ = try s.keys(ofVnode: 3)
            #expect(s.dropIdleVnodeIndexes() == 1, "division 0 unused for a whole interval")
            #expect(s.vnodeIndexUsage.keys == 10)
            #expect(s.dropIdleVnodeIndexes() == 1)
            #expect(s.vnodeIndexUsage.keys == 0)
            // Writes with no index cost nothing, and the next copy builds it again with them.
            try s.put("late", "l", vn: 3, now: T0 + 1)
            #expect(names(try s.keys(ofVnode: 3)).contains("late"))
            #expect(try s.keys(ofVnode: 3).count == 11)
        }
    }

    @Test("a key removed after the build is listed but has no record (the copy skips it)", arguments: engines)
    func removedKeys(engine: EngineChoice) throws {
        try withStorage(engine) { (s, _) throws in
            for i in 0..<10 { try s.put("k\(i)", "v", vn: 2) }
            #expect(try s.keys(ofVnode: 2).count == 10)
            #expect(try Array("k3".utf8).withUnsafeBytes { try s.out(vn: 2, key: $0) })
            #expect(try s.keys(ofVnode: 2).count == 10)
            #expect(try Array("k3".utf8).withUnsafeBytes { try s.rawRecord(vn: 2, key: $0) } == nil)
        }
    }

    /// A storage with division of vn = vn % 4 and `memory` bytes for its vnode indexes.
    private func withBudget(_ engine: EngineChoice, memory: Int, _ body: (HashStorage) throws -> Void) throws {
        let dir: TempDir? = engine == .tc ? TempDir("budget") : nil
        defer { dir?.remove() }
        let s: HashStorage
        switch engine {
        case .memory:
            s = try HashStorage(name: "roma", directory: nil, divnum: 4, engine: .memory, divisionOf: { Int($0 % 4) }, vnodeIndexMemory: memory)
        case .tc:
            s = try HashStorage(name: "roma", directory: dir!.path, divnum: 4, engine: .tokyoCabinet(TCOptions()),
                                divisionOf: { Int($0 % 4) }, vnodeIndexMemory: memory)
        }
        defer { try? s.close() }
        try body(s)
    }

    @Test("an index that would outgrow its budget is given up: the copy reads the division, keys stay complete", arguments: engines)
    func budgetExceededWhileBuilding(engine: EngineChoice) throws {
        // 4 divisions × 400 bytes: about 40 keys of 6 bytes fit in one division's index.
        try withBudget(engine, memory: 1600) { s in
            for i in 0..<400 { try s.put("k\(i)", "v", vn: UInt32(i % 8)) }
            let keys = names(try s.keys(ofVnode: 5, slice: 7))
            #expect(keys == (0..<400).filter { $0 % 8 == 5 }.map { "k\($0)" }.sorted())
            #expect(s.vnodeIndexUsage.keys == 0 && s.vnodeIndexUsage.bytes == 0)
            // Refused until an idle sweep: the next copy reads the division again, writes included.
            try s.put("new", "n", vn: 5, now: T0 + 1)
            #expect(names(try s.keys(ofVnode: 5)).contains("new"))
            #expect(s.vnodeIndexUsage.keys == 0)
            #expect(s.dropIdleVnodeIndexes() == 0)
            #expect(s.dropIdleVnodeIndexes() == 0)
            #expect(try s.keys(ofVnode: 5).count == 51)
        }
    }

    @Test("writes that push an index past its budget drop it; the next copy still lists every key", arguments: engines)
    func budgetExceededByWrites(engine: EngineChoice) throws {
        try withBudget(engine, memory: 4 * 1000) { s in
            for i in 0..<20 { try s.put("k\(i)", "v", vn: 1) }
            #expect(try s.keys(ofVnode: 1).count == 20)
            #expect(s.vnodeIndexUsage.keys == 20)
            #expect(s.vnodeIndexUsage.bytes > 0 && s.vnodeIndexUsage.bytes <= 1000)
            // Each written key counts 64 bytes plus its own: twenty more pass the 1,000.
            for i in 0..<20 { try s.put("w\(i)", "v", vn: 1, now: T0 + 1) }
            #expect(s.vnodeIndexUsage.keys == 0, "dropped by the write path")
            #expect(try s.keys(ofVnode: 1).count == 40)
        }
    }

    @Test("no index at all with VNODE_INDEX_MEMORY 0", arguments: engines)
    func noIndex(engine: EngineChoice) throws {
        try withBudget(engine, memory: 0) { s in
            for i in 0..<30 { try s.put("k\(i)", "v", vn: UInt32(i % 2)) }
            #expect(try s.keys(ofVnode: 1).count == 15)
            #expect(s.vnodeIndexUsage.keys == 0)
        }
    }
}
