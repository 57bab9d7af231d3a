/// Division of a vnode (spec R1.6): SHA-1 of the decimal string of `vnode`, read as a 160-bit
/// big-endian integer, modulo `divnum` (which must be positive).
public func divisionOf(vnode: UInt64, divnum: Int) -> Int {
    precondition(divnum > 0, "divnum must be positive")
    return Int(SHA1.digest(String(vnode)).mod(UInt64(divnum)))
}

/// Precomputed vnode → division table for a vnode space (spec R1.6), with O(1) lookup.
///
/// Vnodes that are not in the table (not a vnode id of the space, or excluded when the map was
/// built from an explicit vnode list) map to division 0, as ROMA does.
public struct DivisionMap: Sendable {
    /// The vnode geometry the table was built for.
    public let space: VnodeSpace
    /// Number of divisions (`STORAGE_DIVNUM`).
    public let divnum: Int
    /// Division per vnode index; −1 marks a vnode that is not in the table.
    private let table: [Int32]

    /// Builds the map for every vnode of `space`.
    public init(space: VnodeSpace, divnum: Int) {
        precondition(divnum > 0 && divnum <= Int(Int32.max), "divnum out of range")
        self.space = space
        self.divnum = divnum
        var t = [Int32](repeating: 0, count: space.vnodeCount)
        for i in 0..<space.vnodeCount {
            t[i] = Int32(divisionOf(vnode: space.vnode(atIndex: i), divnum: divnum))
        }
        self.table = t
    }

    /// Builds the map only for the given vnodes (e.g. the keys of a routing table); others map to 0.
    public init<S: Sequence>(space: VnodeSpace, divnum: Int, vnodes: S) where S.Element == UInt64 {
        precondition(divnum > 0 && divnum <= Int(Int32.max), "divnum out of range")
        self.space = space
        self.divnum = divnum
        var t = [Int32](repeating: -1, count: space.vnodeCount)
        for vn in vnodes where space.isVnode(vn) {
            t[space.index(ofVnode: vn)] = Int32(divisionOf(vnode: vn, divnum: divnum))
        }
        self.table = t
    }

    /// Division of vnode `vn` (0 when `vn` is not in the table).
    @inline(__always)
    public func division(ofVnode vn: UInt64) -> Int {
        guard space.isVnode(vn) else { return 0 }
        let d = table[space.index(ofVnode: vn)]
        return d < 0 ? 0 : Int(d)
    }

    /// Same as `division(ofVnode:)`.
    public subscript(vnode vn: UInt64) -> Int { division(ofVnode: vn) }
}
