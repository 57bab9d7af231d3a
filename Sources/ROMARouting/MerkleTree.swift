/// ROMA's routing Merkle tree (spec R4.7), stored as an implicit binary heap.
///
/// Tree node ids are binary strings: root `"0"`, children `id+"0"` / `id+"1"`, leaves have length
/// `divBits + 1`. Leaf value = SHA-1 hex of the Ruby inspect of the vnode's node list; inner value =
/// SHA-1 hex of `"<left>:<right>"`. Nodes never assigned render as `"0"` (ROMA's initial value).
public struct MerkleTree: Sendable {
    /// Largest supported `divBits` (the tree has `2^(divBits+1) − 1` entries).
    public static let maxDivBits = 20

    /// Depth of the tree below the root.
    public let divBits: Int
    /// 20 bytes per heap slot, slot `i` at `i*20`.
    private var digests: [UInt8]
    /// Whether slot `i` has been assigned (unassigned slots render as `"0"`).
    private var assigned: [Bool]

    /// Creates a tree with every node unassigned.
    public init(divBits: Int) {
        precondition(divBits >= 0 && divBits <= Self.maxDivBits, "div_bits too large for the Merkle tree")
        self.divBits = divBits
        let n = (1 << (divBits + 1)) - 1
        digests = [UInt8](repeating: 0, count: n * 20)
        assigned = [Bool](repeating: false, count: n)
    }

    /// Builds the tree with `leaves[i]` the node list of vnode index `i` (nil = vnode not in table).
    public init(divBits: Int, leaves: [[String]?]) {
        self.init(divBits: divBits)
        precondition(leaves.count == 1 << divBits)
        let first = (1 << divBits) - 1
        var digests = LeafDigests()
        for (i, nids) in leaves.enumerated() {
            if let nids { store(slot: first + i, digests.of(nids)) }
        }
        if first > 0 {
            for slot in stride(from: first - 1, through: 0, by: -1) { recompute(slot) }
        }
    }

    /// Leaf values by node list: a table has few distinct lists, each rendered and hashed once.
    private struct LeafDigests {
        var seen: [[String]: SHA1.Digest] = [:]
        mutating func of(_ nids: [String]) -> SHA1.Digest {
            if let d = seen[nids] { return d }
            let d = SHA1.digest(RubyInspect.array(nids))
            seen[nids] = d
            return d
        }
    }

    /// Sets many leaves (vnode index, node list), then recomputes each tree node above them once,
    /// level by level: the same tree as `set(index:nodes:)` leaf after leaf, which rehashes the
    /// whole path to the root each time (a commit of 341 vnodes: 3,410 hashes instead of about 520).
    public mutating func set(leaves: [(index: Int, nodes: [String])]) {
        let first = (1 << divBits) - 1
        var digests = LeafDigests()
        var level = Set<Int>()
        for (i, nids) in leaves {
            store(slot: first + i, digests.of(nids))
            level.insert(first + i)
        }
        while !level.isEmpty && level != [0] {
            let parents = Set(level.lazy.filter { $0 > 0 }.map { ($0 - 1) / 2 })
            for slot in parents { recompute(slot) }
            level = parents
        }
    }

    /// Sets the leaf of vnode index `index` from its node list and updates the path to the root.
    public mutating func set(index: Int, nodes: [String]) {
        var slot = (1 << divBits) - 1 + index
        store(slot: slot, SHA1.digest(RubyInspect.array(nodes)))
        while slot > 0 {
            slot = (slot - 1) / 2
            recompute(slot)
        }
    }

    /// Value of the tree node with binary id `id` (`"0"` is the root), or nil if there is no such node.
    public func get(_ id: some StringProtocol) -> String? {
        guard let slot = slot(of: id) else { return nil }
        return value(slot)
    }

    /// The root value (`mklhash 0`).
    public var root: String { value(0) }

    /// Heap slot of a binary id, or nil for a malformed/too deep id.
    private func slot(of id: some StringProtocol) -> Int? {
        let u = id.utf8
        guard let f = u.first, f == UInt8(ascii: "0"), u.count <= divBits + 1 else { return nil }
        var v = 0
        for c in u.dropFirst() {
            switch c {
            case UInt8(ascii: "0"): v = v << 1
            case UInt8(ascii: "1"): v = v << 1 | 1
            default: return nil
            }
        }
        let depth = u.count - 1
        return (1 << depth) - 1 + v
    }

    private func value(_ slot: Int) -> String {
        guard assigned[slot] else { return "0" }
        return digests.withUnsafeBufferPointer { SHA1.hex($0[slot * 20 ..< slot * 20 + 20]) }
    }

    private mutating func store(slot: Int, _ d: SHA1.Digest) {
        assigned[slot] = true
        let base = slot * 20
        for i in 0..<5 {
            let w = d.word(i)
            digests[base + i * 4] = UInt8(truncatingIfNeeded: w >> 24)
            digests[base + i * 4 + 1] = UInt8(truncatingIfNeeded: w >> 16)
            digests[base + i * 4 + 2] = UInt8(truncatingIfNeeded: w >> 8)
            digests[base + i * 4 + 3] = UInt8(truncatingIfNeeded: w)
        }
    }

    /// Recomputes inner slot from its children (left unassigned if both children are unassigned,
    /// matching ROMA, where an inner node is only rehashed when a leaf below it is set).
    private mutating func recompute(_ slot: Int) {
        let l = 2 * slot + 1, r = 2 * slot + 2
        guard assigned[l] || assigned[r] else {
            assigned[slot] = false
            return
        }
        // "<left>:<right>" where each side is 40 hex chars or "0"; at most 81 bytes, on the stack.
        let d: SHA1.Digest = withUnsafeTemporaryAllocation(byteCount: 81, alignment: 1) { buf in
            var n = 0
            n += writeValue(l, into: UnsafeMutableRawBufferPointer(rebasing: buf[n...]))
            buf[n] = UInt8(ascii: ":")
            n += 1
            n += writeValue(r, into: UnsafeMutableRawBufferPointer(rebasing: buf[n...]))
            return SHA1.digest(UnsafeRawBufferPointer(rebasing: buf[..<n]))
        }
        store(slot: slot, d)
    }

    private func writeValue(_ slot: Int, into out: UnsafeMutableRawBufferPointer) -> Int {
        guard assigned[slot] else {
            out[0] = UInt8(ascii: "0")
            return 1
        }
        let hexDigits = SHA1.hexDigits
        for i in 0..<20 {
            let b = digests[slot * 20 + i]
            out[2 * i] = hexDigits[Int(b >> 4)]
            out[2 * i + 1] = hexDigits[Int(b & 0xF)]
        }
        return 40
    }
}
