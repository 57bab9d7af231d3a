import ROMARouting

/// ROMA's `RTTABLE_SUB_NID`: clients connecting from a subnet get the routing table with its node
/// ids rewritten (`routingdump` in every form, `enabled_repetition_in_routing?`), for clients that
/// reach the nodes under other names than the nodes use among themselves (NAT, containers).
/// Set in the config file or at run time (`add_rttable_sub_nid`, relayed to every node).
///
/// As ROMA: the rules are kept by netmask in the order first added; a client takes the first rule
/// whose netmask (`a.b.c.d/n`) holds its IPv4 address; a node id is rewritten by replacing the
/// first occurrence of the rule's `regexp` — a plain string, as ROMA's `String#sub` with a string
/// pattern matches it — by `replace`. A netmask ROMA cannot read is kept but matches nothing.
/// The mask applies to every connection from the subnet, peers' included: a node joining from
/// inside it would be given rewritten ids, so masks should name client networks only.
struct SubNidTable: Sendable, Equatable {
    struct Rule: Sendable, Equatable {
        let mask: String
        let pattern: String
        let replacement: String

        /// `table` with every node id rewritten by this rule.
        func apply(to table: RoutingTable) -> RoutingTable {
            table.mapNodeIDs { SubNidTable.replaceFirst(pattern, with: replacement, in: $0) }
        }
    }

    private(set) var rules: [Rule] = []

    /// Adds or replaces the rule of `mask` (a replaced rule keeps its place, as in a Ruby Hash).
    mutating func add(mask: String, pattern: String, replacement: String) {
        let rule = Rule(mask: mask, pattern: pattern, replacement: replacement)
        if let i = rules.firstIndex(where: { $0.mask == mask }) { rules[i] = rule } else { rules.append(rule) }
    }

    /// Removes the rule of `mask`; false when there is none.
    mutating func delete(mask: String) -> Bool {
        guard let i = rules.firstIndex(where: { $0.mask == mask }) else { return false }
        rules.remove(at: i)
        return true
    }

    mutating func clear() { rules.removeAll() }

    /// The first rule whose netmask holds `address` (a client's address as text).
    func rule(forClient address: String) -> Rule? {
        guard !rules.isEmpty, let a = SubNidTable.firstIPv4(in: address) else { return nil }
        return rules.first { SubNidTable.netmask($0.mask).map { (a & $0.bits) == ($0.network & $0.bits) } ?? false }
    }

    /// `table` as a client at `address` sees it.
    func table(_ table: RoutingTable, forClient address: String?) -> RoutingTable {
        guard let address, let rule = rule(forClient: address) else { return table }
        return rule.apply(to: table)
    }

    /// `stat`'s `routing.sub_nid`: the Ruby inspect of ROMA's hash,
    /// `{"10.0.0.0/24"=>{:regexp=>"host", :replace=>"vm"}}`.
    var inspect: String {
        "{" + rules.map {
            "\(RubyInspect.string($0.mask))=>{:regexp=>\(RubyInspect.string($0.pattern)), :replace=>\(RubyInspect.string($0.replacement))}"
        }.joined(separator: ", ") + "}"
    }

    static func replaceFirst(_ pattern: String, with replacement: String, in s: String) -> String {
        guard !pattern.isEmpty, let r = s.firstRange(of: pattern) else {
            // Ruby: an empty pattern matches at the start.
            return pattern.isEmpty ? replacement + s : s
        }
        return s.replacingCharacters(in: r, with: replacement)
    }

    /// The first `a.b.c.d` in `s` (ROMA's `/(\d+)\.(\d+)\.(\d+)\.(\d+)/`), as ROMA computes it:
    /// `(a << 24) + (b << 16) + (c << 8) + d`, compared in the 32 bits of the mask.
    static func firstIPv4(in s: String) -> UInt32? {
        firstQuad(in: Array(s.utf8)).map { $0.value }
    }

    /// `a.b.c.d/n` → network and mask bits (nil when ROMA could not read it either).
    static func netmask(_ mask: String) -> (network: UInt32, bits: UInt32)? {
        let b = Array(mask.utf8)
        guard let q = firstQuad(in: b), q.end < b.count, b[q.end] == UInt8(ascii: "/") else { return nil }
        var i = q.end + 1
        var n = 0
        let start = i
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39, n <= 32 { n = n * 10 + Int(b[i] - 0x30); i += 1 }
        guard i > start, n <= 32 else { return nil }
        let bits: UInt32 = n == 0 ? 0 : UInt32.max << UInt32(32 - n)
        return (q.value, bits)
    }

    private static func firstQuad(in b: [UInt8]) -> (value: UInt32, end: Int)? {
        var start = 0
        while start < b.count {
            var i = start
            var parts: [UInt64] = []
            while parts.count < 4 {
                let s = i
                var v: UInt64 = 0
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { v = min(v * 10 + UInt64(b[i] - 0x30), 1 << 40); i += 1 }
                guard i > s else { break }
                parts.append(v)
                if parts.count < 4 {
                    guard i < b.count, b[i] == UInt8(ascii: ".") else { break }
                    i += 1
                }
            }
            if parts.count == 4 {
                let sum = (parts[0] << 24) &+ (parts[1] << 16) &+ (parts[2] << 8) &+ parts[3]
                return (UInt32(truncatingIfNeeded: sum), i)
            }
            start += 1
        }
        return nil
    }
}
