/// The digest/vnode geometry of a routing table (spec R1.4, R4.1).
///
/// `d = SHA1(key) mod 2^dgstBits`; `vn = d & searchMask`; vnode ids are `i << (dgstBits − divBits)`.
/// This port limits `dgstBits` to 1…64 (ROMA's default is 32) and `divBits` to 0…min(32, dgstBits).
public struct VnodeSpace: Sendable, Hashable {
    /// Number of low digest bits kept (`dgst_bits`).
    public let dgstBits: Int
    /// Number of high digest bits that select the vnode (`div_bits`).
    public let divBits: Int
    /// `dgstBits − divBits`: vnode ids are multiples of `2^shift`.
    public let shift: Int
    /// `2^dgstBits − 1` (all ones when `dgstBits == 64`).
    public let digestMask: UInt64
    /// `(2^divBits − 1) << (dgstBits − divBits)`.
    public let searchMask: UInt64

    /// ROMA's defaults: 32 digest bits, 9 divide bits (512 vnodes).
    public static let standard = VnodeSpace(dgstBits: 32, divBits: 9)

    /// Whether the pair is supported: 1 ≤ dgstBits ≤ 64 and 0 ≤ divBits ≤ min(32, dgstBits).
    public static func isValid(dgstBits: Int, divBits: Int) -> Bool {
        (1...64).contains(dgstBits) && divBits >= 0 && divBits <= 32 && divBits <= dgstBits
    }

    /// Creates a space; traps if `isValid(dgstBits:divBits:)` is false.
    public init(dgstBits: Int = 32, divBits: Int = 9) {
        precondition(Self.isValid(dgstBits: dgstBits, divBits: divBits),
                     "unsupported dgst_bits=\(dgstBits) div_bits=\(divBits)")
        self.dgstBits = dgstBits
        self.divBits = divBits
        self.shift = dgstBits - divBits
        self.digestMask = dgstBits == 64 ? UInt64.max : (UInt64(1) << UInt64(dgstBits)) - 1
        let divMask: UInt64 = divBits == 64 ? UInt64.max : (UInt64(1) << UInt64(divBits)) - 1
        self.searchMask = divMask << UInt64(dgstBits - divBits)
    }

    /// Number of vnodes, `2^divBits`.
    @inlinable public var vnodeCount: Int { 1 << divBits }

    /// The distance between consecutive vnode ids, `2^(dgstBits − divBits)`.
    @inlinable public var vnodeStep: UInt64 { UInt64(1) << UInt64(shift) }

    /// Digest of a key (already stripped of any ESC+hashname suffix): low `dgstBits` of SHA-1.
    @inlinable public func digest(ofKey key: UnsafeRawBufferPointer) -> UInt64 {
        SHA1.low64(key) & digestMask
    }

    /// Digest of a key given as bytes.
    @inlinable public func digest<C: Collection>(ofKey key: C) -> UInt64 where C.Element == UInt8 {
        SHA1.digest(key).low64 & digestMask
    }

    /// Digest of a key given as a string (its UTF-8 bytes).
    @inlinable public func digest(ofKey key: String) -> UInt64 {
        SHA1.low64(key) & digestMask
    }

    /// Vnode id of a digest: `d & searchMask`.
    @inlinable public func vnode(ofDigest d: UInt64) -> UInt64 { d & searchMask }

    /// Vnode id of a key (already stripped of any ESC+hashname suffix).
    @inlinable public func vnode(ofKey key: UnsafeRawBufferPointer) -> UInt64 {
        vnode(ofDigest: digest(ofKey: key))
    }

    /// Vnode id of a key given as a string.
    @inlinable public func vnode(ofKey key: String) -> UInt64 {
        vnode(ofDigest: digest(ofKey: key))
    }

    /// Vnode id of a key given as bytes.
    @inlinable public func vnode<C: Collection>(ofKey key: C) -> UInt64 where C.Element == UInt8 {
        vnode(ofDigest: digest(ofKey: key))
    }

    /// Index `0 ..< vnodeCount` of a vnode id (`vn >> shift`); no validity check.
    @inlinable public func index(ofVnode vn: UInt64) -> Int { Int(truncatingIfNeeded: vn >> UInt64(shift)) }

    /// Vnode id with index `i` (`i << shift`).
    @inlinable public func vnode(atIndex i: Int) -> UInt64 { UInt64(i) << UInt64(shift) }

    /// Whether `vn` is one of the `2^divBits` vnode ids of this space.
    @inlinable public func isVnode(_ vn: UInt64) -> Bool { vn & ~searchMask == 0 }

    /// All vnode ids in ascending order.
    public var allVnodes: LazyMapSequence<Range<Int>, UInt64> {
        let s = UInt64(shift)
        return (0..<vnodeCount).lazy.map { UInt64($0) << s }
    }

    /// The following vnode on the ring (R4.1): `((vn >> shift) + 1) mod 2^divBits << shift`.
    @inlinable public func nextVnode(_ vn: UInt64) -> UInt64 {
        var n = (vn >> UInt64(shift)) &+ 1
        if n == UInt64(vnodeCount) { n = 0 }
        return n << UInt64(shift)
    }
}
