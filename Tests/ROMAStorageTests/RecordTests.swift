import Testing
@testable import ROMAStorage

@Suite("Record header, logical clock, expiry (R2.1-R2.5)")
struct RecordTests {
    // MARK: R2.1 codec

    @Test("header is four big-endian u32: vn, physical, logical, expire")
    func encodeBigEndian() {
        let h = RecordHeader(vnode: 0x0102_0304, physical: 0x0506_0708, logical: 0x090A_0B0C, expire: 0x0D0E_0F10)
        #expect(RecordHeader.size == 16)
        #expect(h.bytes == Array(1...16))
        let h2 = RecordHeader(vnode: 0x7580_0000, physical: T0, logical: 0xFFFF_FFFF, expire: 0x7FFF_FFFF)
        #expect(h2.bytes == [0x75, 0x80, 0, 0, 0x65, 0x53, 0xF1, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF])
    }

    @Test("decode reads the first 16 bytes and ignores the value that follows")
    func decode() {
        let raw: [UInt8] = Array(1...16) + b("value")
        let h = raw.withUnsafeBytes { RecordHeader(decoding: $0) }
        #expect(h == RecordHeader(vnode: 0x0102_0304, physical: 0x0506_0708, logical: 0x090A_0B0C, expire: 0x0D0E_0F10))
    }

    @Test("decode of fewer than 16 bytes is nil", arguments: [0, 1, 15])
    func decodeShort(n: Int) {
        let raw = [UInt8](repeating: 0xAB, count: n)
        #expect(raw.withUnsafeBytes { RecordHeader(decoding: $0) } == nil)
    }

    @Test("encode/decode round trip, including extreme values")
    func roundTrip() {
        var rng = SplitMix64(seed: 42)
        let specials: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
        for i in 0..<500 {
            let pick = { (k: Int) -> UInt32 in i < 25 ? specials[(i / [1, 5, 25, 125][k]) % 5] : UInt32.random(in: 0 ... .max, using: &rng) }
            let h = RecordHeader(vnode: pick(0), physical: pick(1), logical: pick(2), expire: pick(3))
            #expect(h.bytes.withUnsafeBytes { RecordHeader(decoding: $0) } == h)
        }
    }

    @Test("encode at an offset leaves the surrounding bytes alone")
    func encodeAtOffset() {
        var out = [UInt8](repeating: 0xEE, count: 20)
        let h = RecordHeader(vnode: 1, physical: 2, logical: 3, expire: 4)
        out.withUnsafeMutableBytes { h.encode(into: $0, at: 2) }
        #expect(out[0] == 0xEE && out[1] == 0xEE && out[18] == 0xEE && out[19] == 0xEE)
        #expect(Array(out[2..<18]) == h.bytes)
    }

    // MARK: R2.2 / R2.3

    @Test("tombstone = expire 0; no-expiry constant is 0x7fffffff")
    func tombstone() {
        #expect(RecordHeader.noExpire == 0x7FFF_FFFF)
        let t = hdr(logical: 5, expire: 0)
        #expect(t.isTombstone)
        #expect(!t.isLive(now: 0))
        #expect(!t.isLive(now: T0))
        #expect(!hdr(logical: 5, expire: 1).isTombstone)
    }

    @Test("expired when now > expt (strictly)")
    func expiry() {
        let h = hdr(logical: 0, expire: T0 + 10)
        #expect(!h.isExpired(now: T0 + 9))
        #expect(!h.isExpired(now: T0 + 10))
        #expect(h.isExpired(now: T0 + 11))
        #expect(h.isLive(now: T0 + 10))
        #expect(!h.isLive(now: T0 + 11))
        let forever = hdr(logical: 0, expire: RecordHeader.noExpire)
        #expect(forever.isLive(now: T0))
        #expect(forever.isLive(now: 0x7FFF_FFFF))
        #expect(!forever.isLive(now: 0x8000_0000))
    }

    // MARK: R2.5 logical clock ring

    @Test("next wraps at 2^32")
    func clockNext() {
        #expect(LogicalClock.next(0) == 1)
        #expect(LogicalClock.next(41) == 42)
        #expect(LogicalClock.next(0x7FFF_FFFF) == 0x8000_0000)
        #expect(LogicalClock.next(0xFFFF_FFFF) == 0)
    }

    @Test("ring comparison", arguments: [
        (UInt32(0), UInt32(0), 0),
        (1, 0, 1),
        (0, 1, -1),
        (0, 0xFFFF_FFFF, 1),           // 0 follows 0xffffffff
        (0xFFFF_FFFF, 0, -1),
        (5, 0xFFFF_FFF0, 1),
        (0xFFFF_FFF0, 5, -1),
        (0x7FFF_FFFF, 0, 1),           // |d| = 2^31-1 < 2^31: ordinary
        (0, 0x7FFF_FFFF, -1),
        (0x8000_0000, 0, -1),          // |d| = 2^31: reversed
        (0, 0x8000_0000, 1),
        (0x8000_0001, 1, -1),
        (100, 99, 1),
        (0xDEAD_BEEF, 0xDEAD_BEEF, 0),
    ] as [(UInt32, UInt32, Int)])
    func clockCompare(a: UInt32, b: UInt32, expected: Int) {
        #expect(LogicalClock.compare(a, b) == expected)
    }

    @Test("ring comparison is antisymmetric for random pairs")
    func clockAntisymmetric() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let a = UInt32.random(in: 0 ... .max, using: &rng), c = UInt32.random(in: 0 ... .max, using: &rng)
            #expect(LogicalClock.compare(a, c) == -LogicalClock.compare(c, a))
            #expect(LogicalClock.compare(LogicalClock.next(a), a) == 1)
        }
    }

    // MARK: R2.4 client expiry conversion

    @Test("client expiry conversion", arguments: [
        (Int64(0), RecordHeader.noExpire),
        (1, T0 + 1),
        (100, T0 + 100),
        (2_591_999, T0 + 2_591_999),    // just under 30 days: relative
        (2_592_000, 2_592_000),         // 30 days: absolute
        (1_800_000_000, 1_800_000_000), // absolute
        (Int64(T0), T0),
        (-1, T0 - 1),                   // negatives are relative
        (-100, T0 - 100),
        (-5_000_000, T0 - 5_000_000),
    ] as [(Int64, UInt32)])
    func expiryConvert(value: Int64, expected: UInt32) {
        #expect(Expiry.convert(value, now: T0) == expected)
    }

    @Test("a negative client expiry yields an already expired record")
    func negativeExpiryIsExpired() {
        let e = Expiry.convert(-1, now: T0)
        #expect(hdr(logical: 0, expire: e).isExpired(now: T0))
        let z = Expiry.convert(0, now: T0)
        #expect(!hdr(logical: 0, expire: z).isExpired(now: T0))
    }
}
