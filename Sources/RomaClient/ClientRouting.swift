import ROMARouting

/// Client-side routing (spec R1.4, R4.9): which node a key's request goes to.
public enum ClientRouting {
    /// The node for `key` (without its ESC+hash suffix): the first node of `v_idx[vn]` that is
    /// not failed; if all of them are failed (or the list is empty), the first healthy node found
    /// walking `next_vnode` around the ring. nil when no node of the table is healthy.
    public static func route(key: String, table: RoutingTable, isFailed: (String) -> Bool) -> String? {
        route(vnode: table.space.vnode(ofKey: key), table: table, isFailed: isFailed)
    }

    /// The node for vnode `vn`; see `route(key:table:isFailed:)`.
    public static func route(vnode vn: UInt64, table: RoutingTable, isFailed: (String) -> Bool) -> String? {
        if let nids = table.nodes(forVnode: vn), let n = nids.first(where: { !isFailed($0) }) { return n }
        var v = table.space.nextVnode(vn)
        while v != vn {
            if let nids = table.nodes(forVnode: v), let n = nids.first(where: { !isFailed($0) }) { return n }
            v = table.space.nextVnode(v)
        }
        return nil
    }

    /// Every node worth trying for `key`, best first: the healthy choice of `route`, then the
    /// vnode's other nodes, then — as a last resort when everything is marked failed — the failed
    /// nodes of the vnode (they may have come back). Duplicates removed.
    public static func candidates(key: String, table: RoutingTable, isFailed: (String) -> Bool) -> [String] {
        let vn = table.space.vnode(ofKey: key)
        var out: [String] = []
        func add(_ n: String) { if !out.contains(n) { out.append(n) } }
        if let n = route(vnode: vn, table: table, isFailed: isFailed) { add(n) }
        let own = table.nodes(forVnode: vn) ?? []
        for n in own where !isFailed(n) { add(n) }
        for n in own { add(n) }
        return out
    }
}

/// A node address parsed from a seed or node id (`host:port` or `host_port`, spec R1.1).
public struct NodeAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IPv4 address.
    public var host: String
    /// TCP port.
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `host_port` (the port is the text after the last `_` once the
    /// first `:` is replaced by `_`, as ROMA does). nil if malformed.
    public init?(_ text: String) {
        let nid = NodeID.normalize(text)
        guard let i = nid.lastIndex(of: "_") else { return nil }
        let host = String(nid[..<i])
        guard !host.isEmpty, let port = Int(nid[nid.index(after: i)...]), (1...65535).contains(port) else { return nil }
        self.host = host
        self.port = port
    }

    /// The ROMA node id, `host_port`.
    public var nodeID: String { "\(host)_\(port)" }

    public var description: String { "\(host):\(port)" }
}
