/// A fast, non-cryptographic 64-bit hash for keys of the in-memory engine: a Swift port of
/// wyhash (final version 4.2, public domain, Wang Yi), the hash behind Go's and Zig's maps.
///
/// Short keys (≤ 16 bytes, ROMA's typical 10–40-byte keys need one or two extra 16-byte rounds)
/// cost two 64×64→128-bit multiplies. The seed lets each engine pick its own random function, so
/// that a client cannot precompute keys that all land in one probe run.
struct KeyHash: Sendable {
    // wyhash's default secret.
    private static let s0: UInt64 = 0x2d35_8dcc_aa6c_78a5
    private static let s1: UInt64 = 0x8bb8_4b93_962e_acc9
    private static let s2: UInt64 = 0x4b33_a62e_d433_d4a3
    private static let s3: UInt64 = 0x4d5a_2da5_1de1_aa47

    /// The seed after wyhash's initial `seed ^= mix(seed ^ s0, s1)` (done once, here).
    let seed: UInt64

    init(seed: UInt64) {
        self.seed = seed ^ KeyHash.mix(seed ^ KeyHash.s0, KeyHash.s1)
    }

    @inline(__always)
    private static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.low ^ r.high
    }

    @inline(__always)
    private static func r8(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
    }

    @inline(__always)
    private static func r4(_ p: UnsafeRawPointer, _ o: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
    }

    /// wyhash of `key` (the same value for equal bytes, whatever their address).
    @inline(__always)
    func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let len = key.count
        var seed = self.seed
        var a: UInt64 = 0, b: UInt64 = 0
        if len <= 16 {
            if len >= 4 {
                let p = key.baseAddress.unsafelyUnwrapped
                let q = (len >> 3) << 2
                a = KeyHash.r4(p, 0) << 32 | KeyHash.r4(p, q)
                b = KeyHash.r4(p, len - 4) << 32 | KeyHash.r4(p, len - 4 - q)
            } else if len > 0 {
                let p = key.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)
                a = UInt64(p[0]) << 16 | UInt64(p[len >> 1]) << 8 | UInt64(p[len - 1])
            }
        } else {
            var p = key.baseAddress.unsafelyUnwrapped
            var i = len
            if i >= 48 {
                var see1 = seed, see2 = seed
                repeat {
                    seed = KeyHash.mix(KeyHash.r8(p, 0) ^ KeyHash.s1, KeyHash.r8(p, 8) ^ seed)
                    see1 = KeyHash.mix(KeyHash.r8(p, 16) ^ KeyHash.s2, KeyHash.r8(p, 24) ^ see1)
                    see2 = KeyHash.mix(KeyHash.r8(p, 32) ^ KeyHash.s3, KeyHash.r8(p, 40) ^ see2)
                    p += 48
                    i -= 48
                } while i >= 48
                seed ^= see1 ^ see2
            }
            while i > 16 {
                seed = KeyHash.mix(KeyHash.r8(p, 0) ^ KeyHash.s1, KeyHash.r8(p, 8) ^ seed)
                i -= 16
                p += 16
            }
            a = KeyHash.r8(p, i - 16)
            b = KeyHash.r8(p, i - 8)
        }
        a ^= KeyHash.s1
        b ^= seed
        let r = a.multipliedFullWidth(by: b)
        return KeyHash.mix(r.low ^ KeyHash.s0 ^ UInt64(len), r.high ^ KeyHash.s1)
    }
}
