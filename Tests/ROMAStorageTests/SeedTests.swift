import Foundation
import Testing
@testable import ROMAStorage

/// File-level seeding on the storage side: a division sent from `safecopy_flushed` (writes meanwhile
/// in the cache, merged back after), a received file swapped in for the empty division, the writes
/// held meanwhile merged into it under R2.9, and the purge of the vnodes not kept.
@Suite struct SeedTests {
    private func put(_ s: HashStorage, _ key: String, _ value: String, vn: UInt32, now: UInt32) throws {
        let k = Array(key.utf8), v = Array(value.utf8)
        _ = try k.withUnsafeBytes { kb in
            try v.withUnsafeBytes { vb in try s.store(.set, vn: vn, key: kb, value: vb, expire: RecordHeader.noExpire, now: now) }
        }
    }

    private func get(_ s: HashStorage, _ key: String, vn: UInt32) throws -> String? {
        try Array(key.utf8).withUnsafeBytes { k in
            try s.get(vn: vn, key: k, now: T0 + 10) { _, v in String(decoding: v, as: UTF8.self) }
        }
    }

    @Test func aSentDivisionArrivesMergedWithTheHeldWritesAndIsPurgedOfTheRest() throws {
        let da = TempDir("seed-a"), db = TempDir("seed-b")
        defer { da.remove(); db.remove() }
        let a = try openStorage(.tc, dir: da, divnum: 2)
        defer { try? a.close() }
        let b = try openStorage(.tc, dir: db, divnum: 2)
        defer { try? b.close() }
        // Division 0 holds vnodes 0, 2, 4 (vn % 2); vnode 4 is not to be kept.
        for i in 0..<50 {
            try put(a, "k\(i)", "a\(i)", vn: UInt32(i % 3) * 2, now: T0)
        }
        #expect(b.isEmptyAndNormal)
        // The receiver holds writes from now on; one newer than the file's, one of a kept vnode only here.
        try b.beginSeedReceive(division: 0)
        // As the primary sends it: the next logical clock of the record the file holds.
        let clock = try Array("k0".utf8).withUnsafeBytes { try a.rawHeader(vn: 0, key: $0)!.logical } &+ 1
        _ = try Array("k0".utf8).withUnsafeBytes { k in
            try Array("held-newer".utf8).withUnsafeBytes { v in
                try b.replicaSet(vn: 0, key: k, value: v, clock: clock, expire: RecordHeader.noExpire, now: T0 + 5)
            }
        }
        try put(b, "only-held", "h", vn: 2, now: T0 + 5)
        #expect(!b.isEmptyAndNormal)
        // The sender: the file stays as it is while a write goes to its cache.
        let path = try a.beginSeedSend(division: 0, wait: 5, shouldStop: { false })
        #expect(a.states[0] == .safecopyFlushed)
        try put(a, "late", "x", vn: 0, now: T0 + 6)
        let part = db.file("seed-0.tc.part")
        try FileManager.default.copyItem(atPath: path, toPath: part)
        try a.endSeedSend(division: 0)
        #expect(a.states[0] == .normal)
        #expect(try get(a, "late", vn: 0) == "x", "the sender's write during the send was merged back")
        try b.endSeedReceive(division: 0, file: part)
        #expect(b.states[0] == .normal)
        #expect(!FileManager.default.fileExists(atPath: part))
        #expect(try get(b, "k0", vn: 0) == "held-newer", "R2.9: the held write is newer than the file's")
        #expect(try get(b, "only-held", vn: 2) == "h")
        #expect(try get(b, "k1", vn: 2) == "a1")
        #expect(try get(b, "k2", vn: 4) == "a2")
        #expect(try get(b, "late", vn: 0) == nil, "written on the sender after the cut")
        // The purge removes the records of the vnodes not kept (4), and stops removing those of a
        // vnode as soon as `drop` says so (here after its first record: a copy claimed it).
        var claimed = false
        let removed = try b.purge(drop: { v in
            if v == 2 && !claimed { claimed = true; return true }
            return v == 4
        }, shouldStop: { false })
        #expect(removed == (0..<50).filter { $0 % 3 == 2 }.count)
        #expect(try get(b, "k2", vn: 4) == nil)
        #expect(try get(b, "k1", vn: 2) == "a1")
        #expect(try get(b, "k0", vn: 0) == "held-newer")
    }

    @Test func aPartFileLeftByACrashIsRemovedAtOpen() throws {
        let d = TempDir("seed-part")
        defer { d.remove() }
        d.write("seed-1.tc.part", "half a file")
        let s = try openStorage(.tc, dir: d, divnum: 2)
        defer { try? s.close() }
        #expect(!d.exists("seed-1.tc.part"))
        #expect(s.openNotes.contains { $0.contains("seed-1.tc.part") })
        #expect(s.isEmptyAndNormal)
    }

    @Test func aReceivedFileThatIsNotTokyoCabinetLeavesAnEmptyDivision() throws {
        let d = TempDir("seed-bad")
        defer { d.remove() }
        let s = try openStorage(.tc, dir: d, divnum: 2)
        defer { try? s.close() }
        try s.beginSeedReceive(division: 1)
        try put(s, "held", "h", vn: 1, now: T0)
        d.write("junk.part", "not a TokyoCabinet file")
        #expect(throws: (any Error).self) { try s.endSeedReceive(division: 1, file: d.file("junk.part")) }
        // The division still serves (empty main), and the held write is merged once the caller gives up.
        try s.endSeedReceive(division: 1, file: nil)
        #expect(s.states[1] == .normal)
        #expect(try get(s, "held", vn: 1) == "h")
    }

    @Test func aReceivedFileIsSwappedInAndTheOldOneMovedAside() throws {
        let d = TempDir("seed-swap")
        defer { d.remove() }
        d.write("0.tc", "old")
        d.write("seed-0.tc.part", "new")
        let moved = HashStorage.swapIn(d.file("seed-0.tc.part"), for: d.file("0.tc"), aside: d.file("seed-0.displaced.tc.part"))
        #expect(moved != nil)
        #expect(try String(contentsOfFile: d.file("0.tc"), encoding: .utf8) == "new")
        #expect(try String(contentsOfFile: moved!, encoding: .utf8) == "old", "the file that was there is kept until removed")
        // Nothing to swap with: nothing moves.
        d.write("seed-1.tc.part", "x")
        #expect(HashStorage.swapIn(d.file("seed-1.tc.part"), for: d.file("1.tc"), aside: d.file("seed-1.displaced.tc.part")) == nil)
        #expect(d.exists("seed-1.tc.part") && !d.exists("1.tc"))
    }
}
