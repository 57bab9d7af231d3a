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
        // Final one or two blocks: remaining bytes, 0x80, zeros, 64-bit bit length.
        let rest = count - fullBlocks * 64
        withUnsafeTemporaryAllocation(byteCount: 128, alignment: 8) { tail in
            tail.initializeMemory(as: UInt8.self, repeating: 0)
            if rest > 0, let base = bytes.baseAddress {
                tail.baseAddress!.copyMemory(from: base + fullBlocks * 64, byteCount: rest)
            }
            tail[rest] = 0x80
            let total = rest + 1 + 8 <= 64 ? 64 : 128
            let bitLength = UInt64(count) &* 8
            tail.storeBytes(of: bitLength.bigEndian, toByteOffset: total - 8, as: UInt64.self)
            compress(&h, UnsafeRawPointer(tail.baseAddress!))
            if total == 128 {
                compress(&h, UnsafeRawPointer(tail.baseAddress! + 64))
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
    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 &- n)) }

    /// Processes one 64-byte block at `p`.
    @inline(__always)
    private static func compress(_ h: inout (UInt32, UInt32, UInt32, UInt32, UInt32), _ p: UnsafeRawPointer) {
        // 16-word rolling message schedule kept in a tuple on the stack.
        var w: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var a = h.0, b = h.1, c = h.2, d = h.3, e = h.4
        withUnsafeMutableBytes(of: &w) { raw in
            let ws = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
            for i in 0..<16 {
                ws[i] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
            }
            @inline(__always) func schedule(_ t: Int) -> UInt32 {
                let v = rotl(ws[(t &+ 13) & 15] ^ ws[(t &+ 8) & 15] ^ ws[(t &+ 2) & 15] ^ ws[t & 15], 1)
                ws[t & 15] = v
                return v
            }
            @inline(__always) func round(_ f: UInt32, _ k: UInt32, _ wt: UInt32) {
                let temp = rotl(a, 5) &+ f &+ e &+ k &+ wt
                e = d
                d = c
                c = rotl(b, 30)
                b = a
                a = temp
            }
            for t in 0..<16 { round((b & c) | (~b & d), 0x5A82_7999, ws[t]) }
            for t in 16..<20 { round((b & c) | (~b & d), 0x5A82_7999, schedule(t)) }
            for t in 20..<40 { round(b ^ c ^ d, 0x6ED9_EBA1, schedule(t)) }
            for t in 40..<60 { round((b & c) | (b & d) | (c & d), 0x8F1B_BCDC, schedule(t)) }
            for t in 60..<80 { round(b ^ c ^ d, 0xCA62_C1D6, schedule(t)) }
        }
        h.0 = h.0 &+ a
        h.1 = h.1 &+ b
        h.2 = h.2 &+ c
        h.3 = h.3 &+ d
        h.4 = h.4 &+ e
    }
}
