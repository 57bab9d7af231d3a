/// ROMA's stored record: a 16-byte big-endian header followed by the raw value (spec R2.1).
///
/// Layout: `[0..3] vnode`, `[4..7] physical clock`, `[8..11] logical clock`, `[12..15] expire`.
/// A record whose expire time is 0 is a delete mark (tombstone) and carries no value (R2.2).
public struct RecordHeader: Equatable, Sendable {
    /// Size of the encoded header in bytes.
    public static let size = 16
    /// The expire value ROMA stores for "never expires" (R2.3).
    public static let noExpire: UInt32 = 0x7fff_ffff

    public var vnode: UInt32
    public var physical: UInt32
    public var logical: UInt32
    public var expire: UInt32

    public init(vnode: UInt32, physical: UInt32, logical: UInt32, expire: UInt32) {
        self.vnode = vnode
        self.physical = physical
        self.logical = logical
        self.expire = expire
    }

    /// True for a delete mark (R2.2).
    @inlinable public var isTombstone: Bool { expire == 0 }

    /// True when the record is expired at `now` (R2.3: strictly greater).
    @inlinable public func isExpired(now: UInt32) -> Bool { now > expire }

    /// Live = not a tombstone and not expired.
    @inlinable public func isLive(now: UInt32) -> Bool { expire != 0 && !(now > expire) }

    /// Decodes a header from the first 16 bytes of `bytes`; nil when shorter.
    @inlinable public init?(decoding bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= RecordHeader.size else { return nil }
        @inline(__always) func be(_ o: Int) -> UInt32 {
            UInt32(bytes[o]) << 24 | UInt32(bytes[o + 1]) << 16 | UInt32(bytes[o + 2]) << 8 | UInt32(bytes[o + 3])
        }
        self.init(vnode: be(0), physical: be(4), logical: be(8), expire: be(12))
    }

    /// Writes the 16 header bytes big-endian into `out` starting at `offset`.
    @inlinable public func encode(into out: UnsafeMutableRawBufferPointer, at offset: Int = 0) {
        @inline(__always) func put(_ v: UInt32, _ o: Int) {
            out[offset + o] = UInt8(truncatingIfNeeded: v >> 24)
            out[offset + o + 1] = UInt8(truncatingIfNeeded: v >> 16)
            out[offset + o + 2] = UInt8(truncatingIfNeeded: v >> 8)
            out[offset + o + 3] = UInt8(truncatingIfNeeded: v)
        }
        put(vnode, 0)
        put(physical, 4)
        put(logical, 8)
        put(expire, 12)
    }

    /// The header as 16 bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: RecordHeader.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }
}

/// ROMA's 32-bit logical clock ring (R2.5).
public enum LogicalClock {
    /// `(clk + 1) & 0xffffffff`.
    @inlinable public static func next(_ clk: UInt32) -> UInt32 { clk &+ 1 }

    /// Ring comparison: the ordinary sign of `a − b` when `|a − b| < 2^31`, else the reversed sign.
    @inlinable public static func compare(_ a: UInt32, _ b: UInt32) -> Int {
        let d = Int64(a) - Int64(b)
        if d == 0 { return 0 }
        let s = d > 0 ? 1 : -1
        return abs(d) < (1 << 31) ? s : -s
    }
}

/// Client expiry conversion (`chg_time_expt`, R2.4).
public enum Expiry {
    /// Relative times are below 30 days.
    public static let relativeLimit: Int64 = 2_592_000

    /// Converts a client exptime to the stored absolute expire value.
    /// 0 → never; < 30 days (negatives included) → now + value; otherwise absolute.
    @inlinable public static func convert(_ value: Int64, now: UInt32) -> UInt32 {
        if value == 0 { return RecordHeader.noExpire }
        if value < relativeLimit {
            let t = Int64(now) + value
            // Ruby computes in bignums and packs with 'N' (mod 2^32).
            return UInt32(truncatingIfNeeded: t)
        }
        return UInt32(truncatingIfNeeded: value)
    }
}

/// The record framing of a vnode stream (`spushv`, spec R5.8), shared by romad's vnode copies
/// and `recoverlost`: `u32 vn, physical, logical, expire, klen, key, u32 vlen, value`
/// (big-endian), a delete mark with no value bytes, and 20 zero bytes at the end.
public enum VnodeStreamRecord {
    /// What ends a stream (a record with an empty key).
    public static let terminator = [UInt8](repeating: 0, count: 20)

    /// Appends one record; the value is left out for a delete mark (`expire` 0).
    public static func append(_ out: inout [UInt8], header h: RecordHeader, key: [UInt8], value: ArraySlice<UInt8>) {
        func be32(_ v: UInt32) { out.append(UInt8(v >> 24)); out.append(UInt8((v >> 16) & 0xff)); out.append(UInt8((v >> 8) & 0xff)); out.append(UInt8(v & 0xff)) }
        be32(h.vnode); be32(h.physical); be32(h.logical); be32(h.expire)
        be32(UInt32(key.count))
        out.append(contentsOf: key)
        let v = h.expire == 0 ? [] : value
        be32(UInt32(v.count))
        out.append(contentsOf: v)
    }
}
