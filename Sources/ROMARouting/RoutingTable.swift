/// Errors raised while building, importing or replaying a routing table.
public enum RoutingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Unsupported `dgst_bits`/`div_bits` combination.
    case invalidGeometry(dgstBits: Int, divBits: Int)
    /// Redundancy below 1.
    case invalidRedundancy(Int)
    /// A vnode id that is not a multiple of `2^(dgst−div)` below `2^dgst`.
    case invalidVnode(UInt64)
    /// Malformed input (YAML, binary dump, log line).
    case format(String)
    /// A file could not be read or written.
    case io(String)

    /// Human-readable message.
    public var description: String {
        switch self {
        case let .invalidGeometry(d, v): return "unsupported geometry: dgst_bits=\(d) div_bits=\(v)"
        case let .invalidRedundancy(rn): return "unsupported redundancy: rn=\(rn)"
        case let .invalidVnode(vn): return "invalid vnode id: \(vn)"
        case let .format(m): return "format error: \(m)"
        case let .io(m): return "I/O error: \(m)"
        }
    }
}

/// Outcome of `RoutingTable.setRoute(vn:clk:nids:)` (spec R4.6).
public enum SetRouteResult: Sendable, Equatable {
    /// Applied: the vnode's clock is now `clock`; `joined` lists node ids newly added to `nodes`
    /// (the caller logs `join <nid>` for each, then `setroute <vn> <clock> <nids…>`).
    case stored(clock: Int, joined: [String])
    /// Rejected with ROMA's message (`"<vn> is not found."` or `"It's old table."`).
    case failed(String)

    /// The error message, or nil on success.
    public var errorMessage: String? {
        if case let .failed(m) = self { return m }
        return nil
    }
}

/// Per-node vnode counts reported by `stat` (`routing.primary`, `routing.secondaryN`, …).
public struct VnodeCounts: Sendable, Equatable {
    /// Vnodes whose primary is the node.
    public var primary: Int
    /// `secondary[i]` = vnodes where the node is at position `i + 1` (length `rn − 1`).
    public var secondary: [Int]
    /// Non-empty vnodes with fewer than `rn` nodes.
    public var short: Int
    /// Vnodes with no node at all.
    public var lost: Int
}

/// Result of `RoutingTable.vnodeBalance(for:)` (spec R5.4).
public enum VnodeBalance: String, Sendable {
    /// More primaries than `2^div_bits / node_count`.
    case over
    /// Fewer primaries than `2^div_bits / node_count`.
    case less
    /// Exactly the fair share.
    case even
}

/// One vnode change made by `RoutingTable.removeNode(_:)`.
public struct RouteChange: Sendable, Equatable {
    /// The vnode id.
    public var vnode: UInt64
    /// Its new clock (to be logged as `setroute <vnode> <clock> <nodes…>`).
    public var clock: Int
    /// Its new node list.
    public var nodes: [String]
}

/// ROMA's routing data (`Roma::Routing::RoutingData`, spec R4.1) plus its Merkle tree (R4.7).
///
/// A value type: mutate through the methods so the Merkle tree stays in sync. `nodes` is kept
/// sorted byte-wise, like ROMA after boot.
public struct RoutingTable: Sendable {
    /// The digest/vnode geometry.
    public let space: VnodeSpace
    /// Redundancy: the intended number of nodes per vnode.
    public let rn: Int
    /// All node ids of the cluster, sorted byte-wise.
    public private(set) var nodes: [String]
    /// Vnode id → ordered node list (element 0 is the primary).
    public private(set) var vIdx: [UInt64: [String]]
    /// Vnode id → routing clock.
    public private(set) var vClk: [UInt64: Int]
    /// Merkle tree over `vIdx` (nil when `divBits > MerkleTree.maxDivBits`).
    public private(set) var merkle: MerkleTree?
    /// Vnodes changed while Merkle updates are deferred (nil: they are not).
    private var merklePending: Set<UInt64>?

    /// Number of digest bits (`dgst_bits`).
    public var dgstBits: Int { space.dgstBits }
    /// Number of divide bits (`div_bits`).
    public var divBits: Int { space.divBits }
    /// The vnode search mask.
    public var searchMask: UInt64 { space.searchMask }

    /// Creates a table from its parts; validates geometry and vnode ids. Missing clocks default to 0.
    public init(dgstBits: Int, divBits: Int, rn: Int, nodes: [String],
                vIdx: [UInt64: [String]], vClk: [UInt64: Int]) throws(RoutingError) {
        guard VnodeSpace.isValid(dgstBits: dgstBits, divBits: divBits) else {
            throw .invalidGeometry(dgstBits: dgstBits, divBits: divBits)
        }
        guard rn >= 1 else { throw .invalidRedundancy(rn) }
        let space = VnodeSpace(dgstBits: dgstBits, divBits: divBits)
        for vn in vIdx.keys where !space.isVnode(vn) { throw .invalidVnode(vn) }
        for vn in vClk.keys where !space.isVnode(vn) { throw .invalidVnode(vn) }
        self.space = space
        self.rn = rn
        self.nodes = nodes.sorted(by: NodeID.precedes)
        self.vIdx = vIdx
        var clk = vClk
        for vn in vIdx.keys where clk[vn] == nil { clk[vn] = 0 }
        self.vClk = clk
        self.merkle = nil
        rebuildMerkle()
    }

    /// A table where `nid` alone owns every vnode (clock 0), as a standalone node starts.
    public static func singleNode(_ nid: String, dgstBits: Int = 32, divBits: Int = 9,
                                  rn: Int = 1) -> RoutingTable {
        let space = VnodeSpace(dgstBits: dgstBits, divBits: divBits)
        var idx = [UInt64: [String]](minimumCapacity: space.vnodeCount)
        var clk = [UInt64: Int](minimumCapacity: space.vnodeCount)
        for vn in space.allVnodes {
            idx[vn] = [nid]
            clk[vn] = 0
        }
        // Geometry was validated by VnodeSpace.init and all ids come from the space.
        return try! RoutingTable(dgstBits: dgstBits, divBits: divBits, rn: max(rn, 1),
                                 nodes: [nid], vIdx: idx, vClk: clk)
    }

    // MARK: Lookups

    /// Vnode ids present in the table, ascending.
    public var vnodes: [UInt64] { vIdx.keys.sorted() }

    /// Node list of vnode `vn` (primary first), or nil if `vn` is not in the table.
    @inlinable public func nodes(forVnode vn: UInt64) -> [String]? { vIdx[vn] }

    /// Primary node of vnode `vn`, or nil if unknown or empty.
    @inlinable public func primary(forVnode vn: UInt64) -> String? { vIdx[vn]?.first }

    /// Clock of vnode `vn`, or nil if unknown.
    @inlinable public func clock(forVnode vn: UInt64) -> Int? { vClk[vn] }

    /// Clock and node list of vnode `vn` (for `getroute`), or nil if unknown.
    public func route(forVnode vn: UInt64) -> (clock: Int, nodes: [String])? {
        guard let n = vIdx[vn] else { return nil }
        return (vClk[vn] ?? 0, n)
    }

    /// Node list responsible for a key (already stripped of its ESC+hashname suffix).
    public func nodes(forKey key: String) -> [String]? { vIdx[space.vnode(ofKey: key)] }

    /// `stat` counts for node `nid` (ROMA's `num_of_vn`).
    public func counts(for nid: String) -> VnodeCounts {
        var pn = 0, short = 0, lost = 0
        var sn = [Int](repeating: 0, count: max(rn - 1, 0))
        for nids in vIdx.values {
            if nids.isEmpty {
                lost += 1
                continue
            }
            if nids[0] == nid {
                pn += 1
            } else if let i = nids.firstIndex(of: nid) {
                if i - 1 < sn.count { sn[i - 1] += 1 }
            }
            if nids.count < rn { short += 1 }
        }
        return VnodeCounts(primary: pn, secondary: sn, short: short, lost: lost)
    }

    /// Number of vnodes whose primary is `nid`.
    public func primaryCount(for nid: String) -> Int { counts(for: nid).primary }

    /// Non-empty vnodes with fewer than `rn` nodes, ascending.
    public var shortVnodes: [UInt64] {
        vIdx.compactMap { !$0.value.isEmpty && $0.value.count < rn ? $0.key : nil }.sorted()
    }

    /// Vnodes with an empty node list, ascending.
    public var lostVnodes: [UInt64] { vIdx.compactMap { $0.value.isEmpty ? $0.key : nil }.sorted() }

    /// Whether `nid` appears in any vnode's node list.
    public func hasNode(_ nid: String) -> Bool { vIdx.values.contains { $0.contains(nid) } }

    /// Whether some vnode lists two nodes on the same host (`enabled_repetition_in_routing?`).
    public func hasReplicationInHost() -> Bool {
        for nids in vIdx.values {
            var hosts = Set<Substring>()
            for nid in nids where !hosts.insert(NodeID.host(of: nid)).inserted { return true }
        }
        return false
    }

    /// Copy of the node list of the first non-empty vnode after `vn` on the ring (`[]` if none).
    public func nextAliveNodes(after vn: UInt64) -> [String] {
        var v = space.nextVnode(vn)
        while v != vn {
            if let n = vIdx[v], !n.isEmpty { return n }
            v = space.nextVnode(v)
        }
        return []
    }

    /// Whether `nid` holds more, fewer or exactly `2^div_bits / node_count` primaries.
    public func vnodeBalance(for nid: String) -> VnodeBalance {
        guard !nodes.isEmpty else { return .even }
        let n = space.vnodeCount / nodes.count
        var pcount = 0
        for nids in vIdx.values where nids.first == nid { pcount += 1 }
        if pcount > n { return .over }
        if pcount < n { return .less }
        return .even
    }

    /// Merkle value of tree node `id` (`mklhash <id>`), or nil for an unknown id. With updates
    /// still deferred, a copy brought up to date answers (the owner of the table applies them in
    /// place first, see `applyDeferredMerkleUpdates()`, and pays this once).
    public func mklhash(id: some StringProtocol) -> String? {
        if let pending = merklePending, !pending.isEmpty {
            var t = self
            t.applyDeferredMerkleUpdates()
            return t.merkle?.get(id)
        }
        return merkle?.get(id)
    }

    // MARK: Mutations

    /// ROMA's `set_route` (R4.6): rejects unknown vnodes and older clocks, otherwise adds unknown
    /// nodes, stores `nids`, sets the clock to `clk + 1` and updates the Merkle leaf.
    @discardableResult
    public mutating func setRoute(vn: UInt64, clk: Int, nids: [String]) -> SetRouteResult {
        guard let current = vClk[vn], vIdx[vn] != nil else { return .failed("\(vn) is not found.") }
        if current > clk { return .failed("It's old table.") }
        var joined: [String] = []
        for nid in nids where addNode(nid) { joined.append(nid) }
        // Ruby's clocks are bignums; here they stop at Int.max rather than overflow.
        let newClock = clk == Int.max ? clk : clk + 1
        vIdx[vn] = nids
        vClk[vn] = newClock
        updateMerkle(vn: vn, nids: nids)
        return .stored(clock: newClock, joined: joined)
    }

    /// Replaces the node list of a known vnode and increments its clock; returns the new clock,
    /// or nil if `vn` is not in the table. (ROMA's commit / `set_route_and_inc_clk_inside_sync`.)
    @discardableResult
    public mutating func replaceRoute(vn: UInt64, nids: [String]) -> Int? {
        guard vIdx[vn] != nil else { return nil }
        let old = vClk[vn] ?? 0
        let clk = old == Int.max ? old : old + 1
        vIdx[vn] = nids
        vClk[vn] = clk
        updateMerkle(vn: vn, nids: nids)
        return clk
    }

    /// Adds `nid` to `nodes` (kept sorted); returns false if it was already present.
    @discardableResult
    public mutating func addNode(_ nid: String) -> Bool {
        if nodes.contains(nid) { return false }
        let i = nodes.firstIndex { NodeID.precedes(nid, $0) } ?? nodes.endIndex
        nodes.insert(nid, at: i)
        return true
    }

    /// Removes `nid` from `nodes` only (log replay of `leave`); returns whether it was present.
    @discardableResult
    public mutating func removeFromNodes(_ nid: String) -> Bool {
        let before = nodes.count
        nodes.removeAll { $0 == nid }
        return nodes.count != before
    }

    /// Removes `nid` from `nodes` and from every vnode list, bumping each changed vnode's clock
    /// (the table part of R5.7 `leave`). Returns the changes in ascending vnode order, for logging.
    public mutating func removeNode(_ nid: String) -> [RouteChange] {
        removeFromNodes(nid)
        var changes: [RouteChange] = []
        for vn in vnodes {
            guard var nids = vIdx[vn], nids.contains(nid) else { continue }
            nids.removeAll { $0 == nid }
            let clk = replaceRoute(vn: vn, nids: nids)!
            changes.append(RouteChange(vnode: vn, clock: clk, nodes: nids))
        }
        return changes
    }

    /// `create_nodes_from_v_idx`: `nodes` := sorted union of all vnode lists.
    public mutating func createNodesFromVIdx() {
        var set = Set<String>()
        for nids in vIdx.values { set.formUnion(nids) }
        nodes = set.sorted(by: NodeID.precedes)
    }

    /// A copy with every node id passed through `transform` (for `RTTABLE_SUB_NID` rewriting);
    /// `nodes` keeps its order, as ROMA's `map!` does.
    public func mapNodeIDs(_ transform: (String) -> String) -> RoutingTable {
        var t = self
        t.nodes = nodes.map(transform)
        t.vIdx = vIdx.mapValues { $0.map(transform) }
        t.rebuildMerkle()
        return t
    }

    // MARK: Merkle maintenance

    private mutating func updateMerkle(vn: UInt64, nids: [String]) {
        guard merkle != nil else { return }
        if merklePending != nil {
            merklePending!.insert(vn)
            return
        }
        merkle!.set(index: space.index(ofVnode: vn), nodes: nids)
    }

    /// From now until `applyDeferredMerkleUpdates()`, changes collect their vnodes instead of
    /// updating the Merkle tree one path at a time (a batch of routing changes).
    public mutating func deferMerkleUpdates() {
        if merkle != nil && merklePending == nil { merklePending = [] }
    }

    /// Updates the Merkle tree for every vnode changed since `deferMerkleUpdates()`, each tree
    /// node once.
    public mutating func applyDeferredMerkleUpdates() {
        guard let pending = merklePending else { return }
        merklePending = nil
        guard merkle != nil, !pending.isEmpty else { return }
        merkle!.set(leaves: pending.map { (space.index(ofVnode: $0), vIdx[$0] ?? []) })
    }

    mutating func rebuildMerkle() {
        guard divBits <= MerkleTree.maxDivBits else {
            merkle = nil
            return
        }
        var leaves = [[String]?](repeating: nil, count: space.vnodeCount)
        for (vn, nids) in vIdx { leaves[space.index(ofVnode: vn)] = nids }
        merkle = MerkleTree(divBits: divBits, leaves: leaves)
    }

    /// Sets a vnode's list and clock without checks (log replay); `vn` must be a valid vnode id.
    mutating func forceRoute(vn: UInt64, clk: Int, nids: [String], updateTree: Bool) {
        vIdx[vn] = nids
        vClk[vn] = clk
        if updateTree { updateMerkle(vn: vn, nids: nids) }
    }

    /// Appends a node id without sorting (log replay of `join`).
    mutating func appendNodeUnsorted(_ nid: String) {
        if !nodes.contains(nid) { nodes.append(nid) }
    }

    /// Re-sorts `nodes` byte-wise.
    mutating func sortNodes() { nodes.sort(by: NodeID.precedes) }
}

extension RoutingTable: Equatable {
    /// Tables are equal when geometry, rn, nodes, vIdx and vClk are equal (the tree is derived).
    public static func == (a: RoutingTable, b: RoutingTable) -> Bool {
        a.space == b.space && a.rn == b.rn && a.nodes == b.nodes && a.vIdx == b.vIdx && a.vClk == b.vClk
    }
}
