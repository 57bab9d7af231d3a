/// Errors of `MkRoute.make` (spec R4.2); `description` is the exact message mkroute prints.
public enum MkRouteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No node id given (mkroute prints its usage).
    case noNodes
    /// `dgst_bits < div_bits`.
    case hashBitsBelowDivideBits
    /// `div_bits > 32`.
    case divideBitsTooLarge
    /// Fewer node ids than the redundancy.
    case notEnoughNodes
    /// Port limit: `dgst_bits` must be 1…64.
    case hashBitsOutOfRange
    /// Port check: negative `div_bits`.
    case divideBitsNegative
    /// Port check: redundancy below 1.
    case redundancyTooSmall
    /// Port check: a node id that is not `host_port` (or `host:port`).
    case invalidNodeID(String)
    /// Port check: the same node id given twice.
    case duplicateNodeID(String)

    /// The message mkroute prints to stderr (R4.2 wording for ROMA's own checks).
    public var description: String {
        switch self {
        case .noNodes: return MkRoute.usage()
        case .hashBitsBelowDivideBits: return "The hash bits should be divide bits or more."
        case .divideBitsTooLarge: return "The upper bound of divide bits is 32."
        case .notEnoughNodes: return "The node-id number should be redundant number or more."
        case .hashBitsOutOfRange: return "The hash bits should be between 1 and 64."
        case .divideBitsNegative: return "The divide bits should be 0 or more."
        case .redundancyTooSmall: return "The redundant number should be 1 or more."
        case let .invalidNodeID(n): return "Illegal node-id: \(n) (expected host_port or host:port)."
        case let .duplicateNodeID(n): return "Duplicate node-id: \(n)"
        }
    }
}

/// ROMA's `mkroute` table generator (spec R4.2, R4.3).
public enum MkRoute {
    /// The warning printed for the deprecated `--enabled_repeathost` flag (ROMA's spelling).
    public static let repeathostWarning =
        "Warning: \"--enabled_repeathost\" is deplicated. Please use \"--replication_in_host\""

    /// The usage text (Ruby OptionParser layout), printed to stderr when no node id is given.
    public static func usage(programName: String = "mkroute") -> String {
        """
        usage:\(programName) [options] node-id...
            -h, --hash [bits]                (default=32)
            -d, --divide [bits]              (default=9)
            -r, --redundant [num]            (default=2)
                --enabled_repeathost
                --replication_in_host
        """
    }

    /// Validates arguments in mkroute's order and returns the normalized (`:` → `_`) node ids.
    public static func validate(nodes: [String], dgstBits: Int, divBits: Int, rn: Int)
        throws(MkRouteError) -> [String] {
        let nids = nodes.map(NodeID.normalize)
        if nids.isEmpty { throw .noNodes }
        if dgstBits < divBits { throw .hashBitsBelowDivideBits }
        if divBits > 32 { throw .divideBitsTooLarge }
        if nids.count < rn { throw .notEnoughNodes }
        if dgstBits < 1 || dgstBits > 64 { throw .hashBitsOutOfRange }
        if divBits < 0 { throw .divideBitsNegative }
        if rn < 1 { throw .redundancyTooSmall }
        var seen = Set<String>()
        for n in nids {
            if !NodeID.isWellFormed(n) { throw .invalidNodeID(n) }
            if !seen.insert(n).inserted { throw .duplicateNodeID(n) }
        }
        return nids
    }

    /// Builds a new routing table (all clocks 0) with the system random generator.
    public static func make(nodes: [String], dgstBits: Int = 32, divBits: Int = 9, rn: Int = 2,
                            replicationInHost: Bool = false) throws(MkRouteError) -> RoutingTable {
        var g = SystemRandomNumberGenerator()
        return try make(nodes: nodes, dgstBits: dgstBits, divBits: divBits, rn: rn,
                        replicationInHost: replicationInHost, rng: &g)
    }

    /// Builds a new routing table (all clocks 0) using `rng` for every random choice.
    ///
    /// Each vnode gets `rn` nodes on distinct hosts (fewer if hosts run out), or distinct nodes with
    /// `replicationInHost`; then each position is balanced by moving the least-used node into a
    /// randomly chosen vnode held by the most-used one. Unlike ROMA 1.3 (spec §11), a position that
    /// cannot be balanced further keeps the moves already made instead of discarding all balancing.
    public static func make<G: RandomNumberGenerator>(
        nodes: [String], dgstBits: Int = 32, divBits: Int = 9, rn: Int = 2,
        replicationInHost: Bool = false, rng: inout G
    ) throws(MkRouteError) -> RoutingTable {
        let nids = try validate(nodes: nodes, dgstBits: dgstBits, divBits: divBits, rn: rn)
        let space = VnodeSpace(dgstBits: dgstBits, divBits: divBits)

        // Hosts in order of first appearance, each with its nodes (ROMA's host_idx).
        var hostOrder: [Substring] = []
        var hostNodes: [Substring: [String]] = [:]
        for n in nids {
            let h = NodeID.host(of: n)
            if hostNodes[h] == nil { hostOrder.append(h) }
            hostNodes[h, default: []].append(n)
        }

        var lists = [[String]](repeating: [], count: space.vnodeCount)
        for i in 0..<space.vnodeCount {
            var list: [String] = []
            var usedHosts: [Substring] = []
            for _ in 0..<rn {
                if replicationInHost {
                    let buf = nids.filter { !list.contains($0) }
                    if buf.isEmpty { break }
                    list.append(buf[Int.random(in: 0..<buf.count, using: &rng)])
                } else {
                    let hosts = hostOrder.filter { !usedHosts.contains($0) }
                    if hosts.isEmpty { break }
                    let h = hosts[Int.random(in: 0..<hosts.count, using: &rng)]
                    let onHost = hostNodes[h]!
                    let n = onHost[Int.random(in: 0..<onHost.count, using: &rng)]
                    usedHosts.append(h)
                    list.append(n)
                }
            }
            lists[i] = list
        }

        balance(&lists, nodes: nids, rn: rn, replicationInHost: replicationInHost, rng: &rng)

        var vIdx = [UInt64: [String]](minimumCapacity: lists.count)
        var vClk = [UInt64: Int](minimumCapacity: lists.count)
        for (i, list) in lists.enumerated() {
            let vn = space.vnode(atIndex: i)
            vIdx[vn] = list
            vClk[vn] = 0
        }
        // Geometry and redundancy were validated above; every key comes from the space.
        return try! RoutingTable(dgstBits: dgstBits, divBits: divBits, rn: rn, nodes: nids,
                                 vIdx: vIdx, vClk: vClk)
    }

    /// Position-by-position balancing (R4.3 `get_balanced_vn_replacement_list`).
    static func balance<G: RandomNumberGenerator>(_ lists: inout [[String]], nodes: [String], rn: Int,
                                                  replicationInHost: Bool, rng: inout G) {
        for idx in 0..<rn {
            while true {
                // Histogram of position idx; min/max first encountered in node order (ROMA's rules).
                var count: [String: Int] = [:]
                for l in lists where l.count > idx { count[l[idx], default: 0] += 1 }
                var minV = lists.count, maxV = 0
                var minN: String?, maxN: String?
                for n in nodes {
                    let v = count[n] ?? 0
                    if v < minV { minV = v; minN = n }
                    if v > maxV { maxV = v; maxN = n }
                }
                if maxV - minV < 2 || minN == maxN { break }
                guard let from = maxN, let to = minN else { break }
                let toHost = NodeID.host(of: to)
                var candidates: [Int] = []
                for (i, l) in lists.enumerated() where l.count > idx && l[idx] == from {
                    var ok = true
                    for (j, n) in l.enumerated() where j != idx {
                        if replicationInHost ? n == to : NodeID.host(of: n) == toHost {
                            ok = false
                            break
                        }
                    }
                    if ok { candidates.append(i) }
                }
                // No candidate: keep what was balanced so far and move on (ROMA discarded everything).
                if candidates.isEmpty { break }
                lists[candidates[Int.random(in: 0..<candidates.count, using: &rng)]][idx] = to
            }
        }
    }

    /// Max − min over `table.nodes` of how often each node occupies `position` (0 = primary).
    public static func imbalance(of table: RoutingTable, position: Int) -> Int {
        var count: [String: Int] = [:]
        for l in table.vIdx.values where l.count > position { count[l[position], default: 0] += 1 }
        let values = table.nodes.map { count[$0] ?? 0 }
        guard let lo = values.min(), let hi = values.max() else { return 0 }
        return hi - lo
    }
}
