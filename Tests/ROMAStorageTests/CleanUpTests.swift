import Foundation
import ROMAStorage
import Testing

/// The clean-up process (R6.5) on a node that owns every vnode.
@Suite struct CleanUpTests {
    private func withStorage(_ body: (HashStorage) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cleanup-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try HashStorage(name: "roma", directory: dir, divnum: 4, engine: .tokyoCabinet(TCOptions()),
                                divisionOf: { Int($0 % 4) })
        defer { try? s.close() }
        try body(s)
    }

    private func put(_ s: HashStorage, _ key: String, vn: UInt32, expire: UInt32, now: UInt32) throws {
        let k = Array(key.utf8), v = Array("v".utf8)
        _ = try k.withUnsafeBytes { kb in
            try v.withUnsafeBytes { vb in try s.store(.set, vn: vn, key: kb, value: vb, expire: expire, now: now) }
        }
    }

    private func header(_ s: HashStorage, _ key: String, vn: UInt32) throws -> RecordHeader? {
        try Array(key.utf8).withUnsafeBytes { try s.rawHeader(vn: vn, key: $0) }
    }

    @Test func removesExpiredRecordsAndOldDeleteMarksOnly() throws {
        try withStorage { s in
            let t0: UInt32 = 1_700_000_000
            try put(s, "live", vn: 0, expire: RecordHeader.noExpire, now: t0)
            try put(s, "expired", vn: 1, expire: t0 + 5, now: t0)
            try put(s, "deleted-old", vn: 2, expire: RecordHeader.noExpire, now: t0)
            _ = try Array("deleted-old".utf8).withUnsafeBytes { try s.delete(vn: 2, key: $0, now: t0) }
            try put(s, "deleted-new", vn: 3, expire: RecordHeader.noExpire, now: t0)
            _ = try Array("deleted-new".utf8).withUnsafeBytes { try s.delete(vn: 3, key: $0, now: t0 + 500) }
            let removed = try s.cleanUp(now: t0 + 600, delmarkExptime: 300)
            #expect(removed == 2)
            #expect(try header(s, "live", vn: 0) != nil)
            #expect(try header(s, "expired", vn: 1) == nil)
            #expect(try header(s, "deleted-old", vn: 2) == nil)
            #expect(try header(s, "deleted-new", vn: 3)?.isTombstone == true)
        }
    }

    @Test func neverTouchesADivisionInASnapshotState() throws {
        try withStorage { s in
            let t0: UInt32 = 1_700_000_000
            try put(s, "expired", vn: 1, expire: t0 + 5, now: t0)
            let path = s.path(ofDivision: 1)!
            try s.beginSafecopy(division: 1)
            try s.flush(division: 1)
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(try s.cleanUp(now: t0 + 600, delmarkExptime: 300) == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            try s.beginCacheCleaning(division: 1)
            try s.cleanCache(division: 1)
            #expect(try s.cleanUp(now: t0 + 600, delmarkExptime: 300) == 1)
        }
    }
}
