// SHA-1 (FIPS 180-4), written for the routing hot path: no Foundation, no heap
// allocation except for the optional `[UInt8]` result.

/// SHA-1 message digest (FIPS 180-4); one-shot hashing with allocation-free variants.
public enum SHA1 {
    /// A 160-bit SHA-1 digest held as five big-endian words (no heap storage).
    public struct Digest: Sendable, Hashable {
        /// The five state words h0…h4.
        public var h0, h1, h2, h3, h4: UInt32

        /// Creates a digest from its five state words.
        @inlinable public init(h0: UInt32, h1: UInt32, h2: UInt32, h3: UInt32, h4: UInt32) {
            self.h0 = h0; self.h1 = h1; self.h2 = h2; self.h3 = h3; self.h4 = h4
        }

        /// State word `i` (0…4), most significant first.
        @inline(__always) public func word(_ i: Int) -> UInt32 {
            switch i {
            case 0: return h0
            case 1: return h1
            case 2: return h2
            case 3: return h3
            default: return h4
            }
        }

        /// The 20 digest bytes.
        public var bytes: [UInt8] {
            var out = [UInt8]()
            out.reserveCapacity(20)
            for i in 0..<5 {
                let w = word(i)
                out.append(UInt8(truncatingIfNeeded: w >> 24))
                out.append(UInt8(truncatingIfNeeded: w >> 16))
                out.append(UInt8(truncatingIfNeeded: w >> 8))
                out.append(UInt8(truncatingIfNeeded: w))
            }
            return out
        }

        /// The lowest 64 bits of the digest read as a 160-bit big-endian integer.
        @inlinable public var low64: UInt64 { UInt64(h3) << 32 | UInt64(h4) }

        /// Lowercase hexadecimal rendering (40 characters).
        public var hex: String {
            String(unsafeUninitializedCapacity: 40) { buf in
                writeHex(into: UnsafeMutableRawBufferPointer(buf))
                return 40
            }
        }

        /// Writes the 40 lowercase hex characters into `out` (which must hold at least 40 bytes).
        public func writeHex(into out: UnsafeMutableRawBufferPointer) {
            precondition(out.count >= 40)
            var i = 0
            for j in 0..<5 {
                let w = word(j)
                var shift: UInt32 = 28
                while true {
                    out[i] = SHA1.hexDigits[Int((w >> shift) & 0xF)]
                    i += 1
                    if shift == 0 { break }
                    shift -= 4
                }
            }
        }

        /// The digest read as a 160-bit big-endian integer, reduced modulo `m` (m > 0).
        public func mod(_ m: UInt64) -> UInt64 {
            precondition(m > 0, "modulus must be positive")
            var r: UInt64 = 0
            for i in 0..<5 {
                let w = word(i)
                // r = (r * 2^32 + w) mod m, computed without overflow.
                let hi = r >> 32
                let lo = (r << 32) | UInt64(w)
                r = m.dividingFullWidth((high: hi, low: lo)).remainder
            }
            return r
        }
    }

    @usableFromInline static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Hashes `bytes` and returns the digest words without allocating.
    public static func digest(_ bytes: UnsafeRawBufferPointer) -> Digest {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) =
            (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        let count = bytes.count
        let fullBlocks = count / 64
        if let base = bytes.baseAddress {
            for b in 0..<fullBlocks {
                compress(&h, base + b * 64)
            }
        }
        // Final one or two blocks: remaining bytes, 0x80, zeros, 64-bit bit length (on the stack).
        let rest = count - fullBlocks * 64
        var tail: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &tail) { buf in
            let t = buf.baseAddress!
            if rest > 0, let base = bytes.baseAddress {
                t.copyMemory(from: base + fullBlocks * 64, byteCount: rest)
            }
            buf[rest] = 0x80
            let total = rest + 1 + 8 <= 64 ? 64 : 128
            let bitLength = UInt64(count) &* 8
            buf.storeBytes(of: bitLength.bigEndian, toByteOffset: total - 8, as: UInt64.self)
            compress(&h, UnsafeRawPointer(t))
            if total == 128 {
                compress(&h, UnsafeRawPointer(t + 64))
            }
        }
        return Digest(h0: h.0, h1: h.1, h2: h.2, h3: h.3, h4: h.4)
    }

    /// Hashes the bytes of a contiguous byte collection (`[UInt8]`, `ArraySlice`, …).
    public static func digest<C: Collection>(_ bytes: C) -> Digest where C.Element == UInt8 {
        if let d = bytes.withContiguousStorageIfAvailable({ digest(UnsafeRawBufferPointer($0)) }) {
            return d
        }
        return Array(bytes).withUnsafeBytes { digest($0) }
    }

    /// Hashes the UTF-8 bytes of `string`.
    public static func digest(_ string: String) -> Digest {
        var s = string
        return s.withUTF8 { digest(UnsafeRawBufferPointer($0)) }
    }

    /// Returns the 20-byte SHA-1 digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { digest(bytes).bytes }

    /// Returns the 20-byte SHA-1 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] { digest(bytes).bytes }

    /// Returns the 20-byte SHA-1 digest of the UTF-8 bytes of `string`.
    public static func hash(_ string: String) -> [UInt8] { digest(string).bytes }

    /// Returns the low 64 bits of SHA-1(`bytes`) (as a big-endian integer) without allocating.
    public static func low64(_ bytes: UnsafeRawBufferPointer) -> UInt64 { digest(bytes).low64 }

    /// Returns the low 64 bits of SHA-1 of the UTF-8 bytes of `string`.
    public static func low64(_ string: String) -> UInt64 { digest(string).low64 }

    /// Lowercase hexadecimal SHA-1 of the UTF-8 bytes of `string` (Ruby's `Digest::SHA1.hexdigest`).
    public static func hexDigest(_ string: String) -> String { digest(string).hex }

    /// Lowercase hexadecimal SHA-1 of `bytes`.
    public static func hexDigest(_ bytes: UnsafeRawBufferPointer) -> String { digest(bytes).hex }

    /// Lowercase hexadecimal rendering of arbitrary bytes.
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x &<< n) | (x &>> (32 &- n)) }

    /// Processes one 64-byte block at `p` (fully unrolled; generated round by round).
    @inline(never)
    private static func compress(_ h: inout (UInt32, UInt32, UInt32, UInt32, UInt32), _ p: UnsafeRawPointer) {
        var w0 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        var w1 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        var w2 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        var w3 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        var w4 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        var w5 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        var w6 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
        var w7 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        var w8 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 32, as: UInt32.self))
        var w9 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 36, as: UInt32.self))
        var w10 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 40, as: UInt32.self))
        var w11 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
        var w12 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 48, as: UInt32.self))
        var w13 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 52, as: UInt32.self))
        var w14 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 56, as: UInt32.self))
        var w15 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
        var a = h.0, b = h.1, c = h.2, d = h.3, e = h.4
        e = e &+ rotl(a, 5) &+ ((b & c) | (~b & d)) &+ 0x5A82_7999 &+ w0; b = rotl(b, 30)
        d = d &+ rotl(e, 5) &+ ((a & b) | (~a & c)) &+ 0x5A82_7999 &+ w1; a = rotl(a, 30)
        c = c &+ rotl(d, 5) &+ ((e & a) | (~e & b)) &+ 0x5A82_7999 &+ w2; e = rotl(e, 30)
        b = b &+ rotl(c, 5) &+ ((d & e) | (~d & a)) &+ 0x5A82_7999 &+ w3; d = rotl(d, 30)
        a = a &+ rotl(b, 5) &+ ((c & d) | (~c & e)) &+ 0x5A82_7999 &+ w4; c = rotl(c, 30)
        e = e &+ rotl(a, 5) &+ ((b & c) | (~b & d)) &+ 0x5A82_7999 &+ w5; b = rotl(b, 30)
        d = d &+ rotl(e, 5) &+ ((a & b) | (~a & c)) &+ 0x5A82_7999 &+ w6; a = rotl(a, 30)
        c = c &+ rotl(d, 5) &+ ((e & a) | (~e & b)) &+ 0x5A82_7999 &+ w7; e = rotl(e, 30)
        b = b &+ rotl(c, 5) &+ ((d & e) | (~d & a)) &+ 0x5A82_7999 &+ w8; d = rotl(d, 30)
        a = a &+ rotl(b, 5) &+ ((c & d) | (~c & e)) &+ 0x5A82_7999 &+ w9; c = rotl(c, 30)
        e = e &+ rotl(a, 5) &+ ((b & c) | (~b & d)) &+ 0x5A82_7999 &+ w10; b = rotl(b, 30)
        d = d &+ rotl(e, 5) &+ ((a & b) | (~a & c)) &+ 0x5A82_7999 &+ w11; a = rotl(a, 30)
        c = c &+ rotl(d, 5) &+ ((e & a) | (~e & b)) &+ 0x5A82_7999 &+ w12; e = rotl(e, 30)
        b = b &+ rotl(c, 5) &+ ((d & e) | (~d & a)) &+ 0x5A82_7999 &+ w13; d = rotl(d, 30)
        a = a &+ rotl(b, 5) &+ ((c & d) | (~c & e)) &+ 0x5A82_7999 &+ w14; c = rotl(c, 30)
        e = e &+ rotl(a, 5) &+ ((b & c) | (~b & d)) &+ 0x5A82_7999 &+ w15; b = rotl(b, 30)
        w0 = rotl(w13 ^ w8 ^ w2 ^ w0, 1)
        d = d &+ rotl(e, 5) &+ ((a & b) | (~a & c)) &+ 0x5A82_7999 &+ w0; a = rotl(a, 30)
        w1 = rotl(w14 ^ w9 ^ w3 ^ w1, 1)
        c = c &+ rotl(d, 5) &+ ((e & a) | (~e & b)) &+ 0x5A82_7999 &+ w1; e = rotl(e, 30)
        w2 = rotl(w15 ^ w10 ^ w4 ^ w2, 1)
        b = b &+ rotl(c, 5) &+ ((d & e) | (~d & a)) &+ 0x5A82_7999 &+ w2; d = rotl(d, 30)
        w3 = rotl(w0 ^ w11 ^ w5 ^ w3, 1)
        a = a &+ rotl(b, 5) &+ ((c & d) | (~c & e)) &+ 0x5A82_7999 &+ w3; c = rotl(c, 30)
        w4 = rotl(w1 ^ w12 ^ w6 ^ w4, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0x6ED9_EBA1 &+ w4; b = rotl(b, 30)
        w5 = rotl(w2 ^ w13 ^ w7 ^ w5, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0x6ED9_EBA1 &+ w5; a = rotl(a, 30)
        w6 = rotl(w3 ^ w14 ^ w8 ^ w6, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0x6ED9_EBA1 &+ w6; e = rotl(e, 30)
        w7 = rotl(w4 ^ w15 ^ w9 ^ w7, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0x6ED9_EBA1 &+ w7; d = rotl(d, 30)
        w8 = rotl(w5 ^ w0 ^ w10 ^ w8, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0x6ED9_EBA1 &+ w8; c = rotl(c, 30)
        w9 = rotl(w6 ^ w1 ^ w11 ^ w9, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0x6ED9_EBA1 &+ w9; b = rotl(b, 30)
        w10 = rotl(w7 ^ w2 ^ w12 ^ w10, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0x6ED9_EBA1 &+ w10; a = rotl(a, 30)
        w11 = rotl(w8 ^ w3 ^ w13 ^ w11, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0x6ED9_EBA1 &+ w11; e = rotl(e, 30)
        w12 = rotl(w9 ^ w4 ^ w14 ^ w12, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0x6ED9_EBA1 &+ w12; d = rotl(d, 30)
        w13 = rotl(w10 ^ w5 ^ w15 ^ w13, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0x6ED9_EBA1 &+ w13; c = rotl(c, 30)
        w14 = rotl(w11 ^ w6 ^ w0 ^ w14, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0x6ED9_EBA1 &+ w14; b = rotl(b, 30)
        w15 = rotl(w12 ^ w7 ^ w1 ^ w15, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0x6ED9_EBA1 &+ w15; a = rotl(a, 30)
        w0 = rotl(w13 ^ w8 ^ w2 ^ w0, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0x6ED9_EBA1 &+ w0; e = rotl(e, 30)
        w1 = rotl(w14 ^ w9 ^ w3 ^ w1, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0x6ED9_EBA1 &+ w1; d = rotl(d, 30)
        w2 = rotl(w15 ^ w10 ^ w4 ^ w2, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0x6ED9_EBA1 &+ w2; c = rotl(c, 30)
        w3 = rotl(w0 ^ w11 ^ w5 ^ w3, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0x6ED9_EBA1 &+ w3; b = rotl(b, 30)
        w4 = rotl(w1 ^ w12 ^ w6 ^ w4, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0x6ED9_EBA1 &+ w4; a = rotl(a, 30)
        w5 = rotl(w2 ^ w13 ^ w7 ^ w5, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0x6ED9_EBA1 &+ w5; e = rotl(e, 30)
        w6 = rotl(w3 ^ w14 ^ w8 ^ w6, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0x6ED9_EBA1 &+ w6; d = rotl(d, 30)
        w7 = rotl(w4 ^ w15 ^ w9 ^ w7, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0x6ED9_EBA1 &+ w7; c = rotl(c, 30)
        w8 = rotl(w5 ^ w0 ^ w10 ^ w8, 1)
        e = e &+ rotl(a, 5) &+ ((b & c) | (b & d) | (c & d)) &+ 0x8F1B_BCDC &+ w8; b = rotl(b, 30)
        w9 = rotl(w6 ^ w1 ^ w11 ^ w9, 1)
        d = d &+ rotl(e, 5) &+ ((a & b) | (a & c) | (b & c)) &+ 0x8F1B_BCDC &+ w9; a = rotl(a, 30)
        w10 = rotl(w7 ^ w2 ^ w12 ^ w10, 1)
        c = c &+ rotl(d, 5) &+ ((e & a) | (e & b) | (a & b)) &+ 0x8F1B_BCDC &+ w10; e = rotl(e, 30)
        w11 = rotl(w8 ^ w3 ^ w13 ^ w11, 1)
        b = b &+ rotl(c, 5) &+ ((d & e) | (d & a) | (e & a)) &+ 0x8F1B_BCDC &+ w11; d = rotl(d, 30)
        w12 = rotl(w9 ^ w4 ^ w14 ^ w12, 1)
        a = a &+ rotl(b, 5) &+ ((c & d) | (c & e) | (d & e)) &+ 0x8F1B_BCDC &+ w12; c = rotl(c, 30)
        w13 = rotl(w10 ^ w5 ^ w15 ^ w13, 1)
        e = e &+ rotl(a, 5) &+ ((b & c) | (b & d) | (c & d)) &+ 0x8F1B_BCDC &+ w13; b = rotl(b, 30)
        w14 = rotl(w11 ^ w6 ^ w0 ^ w14, 1)
        d = d &+ rotl(e, 5) &+ ((a & b) | (a & c) | (b & c)) &+ 0x8F1B_BCDC &+ w14; a = rotl(a, 30)
        w15 = rotl(w12 ^ w7 ^ w1 ^ w15, 1)
        c = c &+ rotl(d, 5) &+ ((e & a) | (e & b) | (a & b)) &+ 0x8F1B_BCDC &+ w15; e = rotl(e, 30)
        w0 = rotl(w13 ^ w8 ^ w2 ^ w0, 1)
        b = b &+ rotl(c, 5) &+ ((d & e) | (d & a) | (e & a)) &+ 0x8F1B_BCDC &+ w0; d = rotl(d, 30)
        w1 = rotl(w14 ^ w9 ^ w3 ^ w1, 1)
        a = a &+ rotl(b, 5) &+ ((c & d) | (c & e) | (d & e)) &+ 0x8F1B_BCDC &+ w1; c = rotl(c, 30)
        w2 = rotl(w15 ^ w10 ^ w4 ^ w2, 1)
        e = e &+ rotl(a, 5) &+ ((b & c) | (b & d) | (c & d)) &+ 0x8F1B_BCDC &+ w2; b = rotl(b, 30)
        w3 = rotl(w0 ^ w11 ^ w5 ^ w3, 1)
        d = d &+ rotl(e, 5) &+ ((a & b) | (a & c) | (b & c)) &+ 0x8F1B_BCDC &+ w3; a = rotl(a, 30)
        w4 = rotl(w1 ^ w12 ^ w6 ^ w4, 1)
        c = c &+ rotl(d, 5) &+ ((e & a) | (e & b) | (a & b)) &+ 0x8F1B_BCDC &+ w4; e = rotl(e, 30)
        w5 = rotl(w2 ^ w13 ^ w7 ^ w5, 1)
        b = b &+ rotl(c, 5) &+ ((d & e) | (d & a) | (e & a)) &+ 0x8F1B_BCDC &+ w5; d = rotl(d, 30)
        w6 = rotl(w3 ^ w14 ^ w8 ^ w6, 1)
        a = a &+ rotl(b, 5) &+ ((c & d) | (c & e) | (d & e)) &+ 0x8F1B_BCDC &+ w6; c = rotl(c, 30)
        w7 = rotl(w4 ^ w15 ^ w9 ^ w7, 1)
        e = e &+ rotl(a, 5) &+ ((b & c) | (b & d) | (c & d)) &+ 0x8F1B_BCDC &+ w7; b = rotl(b, 30)
        w8 = rotl(w5 ^ w0 ^ w10 ^ w8, 1)
        d = d &+ rotl(e, 5) &+ ((a & b) | (a & c) | (b & c)) &+ 0x8F1B_BCDC &+ w8; a = rotl(a, 30)
        w9 = rotl(w6 ^ w1 ^ w11 ^ w9, 1)
        c = c &+ rotl(d, 5) &+ ((e & a) | (e & b) | (a & b)) &+ 0x8F1B_BCDC &+ w9; e = rotl(e, 30)
        w10 = rotl(w7 ^ w2 ^ w12 ^ w10, 1)
        b = b &+ rotl(c, 5) &+ ((d & e) | (d & a) | (e & a)) &+ 0x8F1B_BCDC &+ w10; d = rotl(d, 30)
        w11 = rotl(w8 ^ w3 ^ w13 ^ w11, 1)
        a = a &+ rotl(b, 5) &+ ((c & d) | (c & e) | (d & e)) &+ 0x8F1B_BCDC &+ w11; c = rotl(c, 30)
        w12 = rotl(w9 ^ w4 ^ w14 ^ w12, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0xCA62_C1D6 &+ w12; b = rotl(b, 30)
        w13 = rotl(w10 ^ w5 ^ w15 ^ w13, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0xCA62_C1D6 &+ w13; a = rotl(a, 30)
        w14 = rotl(w11 ^ w6 ^ w0 ^ w14, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0xCA62_C1D6 &+ w14; e = rotl(e, 30)
        w15 = rotl(w12 ^ w7 ^ w1 ^ w15, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0xCA62_C1D6 &+ w15; d = rotl(d, 30)
        w0 = rotl(w13 ^ w8 ^ w2 ^ w0, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0xCA62_C1D6 &+ w0; c = rotl(c, 30)
        w1 = rotl(w14 ^ w9 ^ w3 ^ w1, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0xCA62_C1D6 &+ w1; b = rotl(b, 30)
        w2 = rotl(w15 ^ w10 ^ w4 ^ w2, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0xCA62_C1D6 &+ w2; a = rotl(a, 30)
        w3 = rotl(w0 ^ w11 ^ w5 ^ w3, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0xCA62_C1D6 &+ w3; e = rotl(e, 30)
        w4 = rotl(w1 ^ w12 ^ w6 ^ w4, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0xCA62_C1D6 &+ w4; d = rotl(d, 30)
        w5 = rotl(w2 ^ w13 ^ w7 ^ w5, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0xCA62_C1D6 &+ w5; c = rotl(c, 30)
        w6 = rotl(w3 ^ w14 ^ w8 ^ w6, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0xCA62_C1D6 &+ w6; b = rotl(b, 30)
        w7 = rotl(w4 ^ w15 ^ w9 ^ w7, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0xCA62_C1D6 &+ w7; a = rotl(a, 30)
        w8 = rotl(w5 ^ w0 ^ w10 ^ w8, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0xCA62_C1D6 &+ w8; e = rotl(e, 30)
        w9 = rotl(w6 ^ w1 ^ w11 ^ w9, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0xCA62_C1D6 &+ w9; d = rotl(d, 30)
        w10 = rotl(w7 ^ w2 ^ w12 ^ w10, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0xCA62_C1D6 &+ w10; c = rotl(c, 30)
        w11 = rotl(w8 ^ w3 ^ w13 ^ w11, 1)
        e = e &+ rotl(a, 5) &+ (b ^ c ^ d) &+ 0xCA62_C1D6 &+ w11; b = rotl(b, 30)
        w12 = rotl(w9 ^ w4 ^ w14 ^ w12, 1)
        d = d &+ rotl(e, 5) &+ (a ^ b ^ c) &+ 0xCA62_C1D6 &+ w12; a = rotl(a, 30)
        w13 = rotl(w10 ^ w5 ^ w15 ^ w13, 1)
        c = c &+ rotl(d, 5) &+ (e ^ a ^ b) &+ 0xCA62_C1D6 &+ w13; e = rotl(e, 30)
        w14 = rotl(w11 ^ w6 ^ w0 ^ w14, 1)
        b = b &+ rotl(c, 5) &+ (d ^ e ^ a) &+ 0xCA62_C1D6 &+ w14; d = rotl(d, 30)
        w15 = rotl(w12 ^ w7 ^ w1 ^ w15, 1)
        a = a &+ rotl(b, 5) &+ (c ^ d ^ e) &+ 0xCA62_C1D6 &+ w15; c = rotl(c, 30)
        h.0 = h.0 &+ a
        h.1 = h.1 &+ b
        h.2 = h.2 &+ c
        h.3 = h.3 &+ d
        h.4 = h.4 &+ e
    }
}
