import Foundation
@testable import ROMAStorage
import Testing

@Suite("sliced passes over a division (vnode copies)")
struct SlicedIterationTests {
    @Test func aSlicedPassSeesEveryRecordOnce() throws {
        let dir = TempDir("slice")
        defer { dir.remove() }
        let e = try TCEngine(path: dir.file("0.tc"), options: TCOptions())
        defer { try? e.close() }
        for i in 0..<5000 { try e.put(key: Array("k\(i)".utf8), value: Array("v\(i)".utf8)) }
        var seen: [String] = []
        var cursor: [UInt8]?
        var slices = 0
        repeat {
            cursor = try e.forEach(after: cursor, limit: 300) { k, _ in seen.append(String(decoding: k, as: UTF8.self)) }
            slices += 1
            // another pass over the same database between two slices does not disturb this one
            _ = try e.keys(limit: 10)
        } while cursor != nil
        #expect(seen.count == 5000 && Set(seen).count == 5000)
        #expect(slices >= 17)
    }

    @Test func theCursorsRecordRemovedBetweenSlicesMissesNothing() throws {
        let dir = TempDir("slice2")
        defer { dir.remove() }
        let e = try TCEngine(path: dir.file("0.tc"), options: TCOptions())
        defer { try? e.close() }
        for i in 0..<1000 { try e.put(key: Array("k\(i)".utf8), value: [1]) }
        var seen = Set<String>()
        var cursor: [UInt8]?
        var removed = Set<String>()
        repeat {
            cursor = try e.forEach(after: cursor, limit: 100) { k, _ in seen.insert(String(decoding: k, as: UTF8.self)) }
            if let c = cursor {
                removed.insert(String(decoding: c, as: UTF8.self))
                _ = try c.withUnsafeBytes { try e.remove(key: $0) }
            }
        } while cursor != nil
        #expect(seen.count == 1000, "every record present at the start is seen (some twice)")
    }

    @Test func hashStorageKeysOfAVnode() throws {
        let dir = TempDir("slice3")
        defer { dir.remove() }
        let s = try HashStorage(name: "roma", directory: dir.path, divnum: 2, engine: .tokyoCabinet(TCOptions()),
                                divisionOf: { Int($0 % 2) })
        defer { try? s.close() }
        for i in 0..<3000 {
            let vn = UInt32(i % 6)
            _ = try Array("k\(i)".utf8).withUnsafeBytes { k in
                try [UInt8](repeating: 7, count: 3).withUnsafeBytes { v in
                    try s.store(.set, vn: vn, key: k, value: v, expire: 0x7fff_ffff, now: 1000)
                }
            }
        }
        let keys = try s.keys(ofVnode: 4, slice: 97)
        #expect(keys.count == 500)
        #expect(Set(keys.map { String(decoding: $0, as: UTF8.self) }) == Set((0..<3000).filter { $0 % 6 == 4 }.map { "k\($0)" }))
    }
}
