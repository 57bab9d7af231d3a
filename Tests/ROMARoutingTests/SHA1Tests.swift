import Testing
@testable import ROMARouting

@Suite("SHA-1")
struct SHA1Tests {
    @Test("FIPS 180 / RFC 3174 vectors", arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "a49b2446a02c645bf419f995b67091253a04a259"),
        ("foo", "0beec7b5ea3f0fdbc95d0dd47f3c5bc275da8a33"),
        ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    ])
    func vectors(input: String, expected: String) {
        #expect(SHA1.hexDigest(input) == expected)
        #expect(SHA1.hex(SHA1.hash(input)) == expected)
        #expect(SHA1.hex(SHA1.hash(Array(input.utf8))) == expected)
        let viaRaw = Array(input.utf8).withUnsafeBytes { SHA1.hash($0) }
        #expect(SHA1.hex(viaRaw) == expected)
        #expect(SHA1.digest(input).hex == expected)
    }

    @Test("one million 'a'")
    func millionA() {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(bytes.withUnsafeBytes { SHA1.hexDigest($0) } == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test("every length 0…199 (all padding boundaries) against digests computed with Python hashlib")
    func paddingBoundaries() {
        let data = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var all: [UInt8] = []
        for n in 0..<200 {
            let a = SHA1.hash(Array(data[..<n]))
            #expect(a == SHA1.digest(data[..<n]).bytes)
            #expect(a.count == 20)
            all += a
        }
        // hashlib.sha1(b"".join(sha1(data[:n]).digest() for n in range(200))).hexdigest()
        #expect(SHA1.hex(SHA1.hash(all)) == "3db1df96ff623f92fa79214851059ede3aca71c2")
        #expect(SHA1.hexDigest(String(repeating: "a", count: 55)) == "c1c8bbdc22796e28c0e15163d20899b65621d65a")
        #expect(SHA1.hexDigest(String(repeating: "a", count: 56)) == "c2db330f6083854c99d4b5bfb6e8f29f201be699")
        #expect(SHA1.hexDigest(String(repeating: "a", count: 64)) == "0098ba824b5c16427bd7a1122a5a442a25ec644d")
    }

    @Test("low64 is the last 8 digest bytes, big-endian")
    func low64() {
        #expect(SHA1.low64("foo") == 0x7f3c_5bc2_75da_8a33)
        let d = SHA1.digest("foo")
        #expect(d.low64 == 0x7f3c_5bc2_75da_8a33)
        #expect(d.bytes.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } == d.low64)
    }

    @Test("160-bit modulo")
    func modulo() {
        // 0x0beec7b5…75da8a33 mod small numbers, checked against a bytewise long division.
        let d = SHA1.digest("foo")
        for m: UInt64 in [1, 2, 3, 7, 10, 255, 256, 65_521, 1 << 32, (1 << 61) - 1, UInt64.max] {
            var r: UInt64 = 0
            for b in d.bytes {
                let (hi, lo) = r.multipliedFullWidth(by: 256)
                r = m.dividingFullWidth((high: hi, low: lo + UInt64(b))).remainder
            }
            #expect(d.mod(m) == r, "mod \(m)")
        }
        #expect(d.mod(1 << 32) == 0x75da_8a33)
    }

    @Test("hex helper")
    func hexHelper() {
        #expect(SHA1.hex([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(SHA1.hex([UInt8]()) == "")
    }
}
