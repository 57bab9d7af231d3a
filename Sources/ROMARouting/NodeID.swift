/// Helpers for ROMA node ids of the form `<address>_<port>` (spec R1.1).
public enum NodeID {
    /// Replaces the first `:` by `_` (`host:port` → `host_port`), as ROMA does for user input.
    public static func normalize(_ s: String) -> String {
        guard let i = s.firstIndex(of: ":") else { return s }
        var r = s
        r.replaceSubrange(i...i, with: "_")
        return r
    }

    /// Host part of a node id: the text before the first `_` or `:` (the whole id if neither occurs).
    public static func host(of nid: String) -> Substring {
        if let i = nid.firstIndex(where: { $0 == "_" || $0 == ":" }) {
            return nid[..<i]
        }
        return nid[...]
    }

    /// Whether `nid` (after `normalize`) looks like `host_port`: non-empty host and a decimal port.
    public static func isWellFormed(_ nid: String) -> Bool {
        guard let i = nid.firstIndex(of: "_") else { return false }
        let host = nid[..<i]
        let port = nid[nid.index(after: i)...]
        guard !host.isEmpty, !port.isEmpty, port.utf8.count <= 5,
              port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let p = Int(port), p <= 65535 else { return false }
        return host.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0 != "_" && $0 != ":" }
    }

    /// Byte-wise ordering of node ids (Ruby's `String#<=>`), used to keep `nodes` sorted.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

/// Ruby `inspect` renderings that leak onto ROMA's wire and into its hashes.
public enum RubyInspect {
    /// Ruby `Hash#inspect` of string keys and values in this order, `nil` for a missing value:
    /// `{"a"=>"x", "b"=>nil}`.
    public static func hash(_ entries: [(String, String?)]) -> String {
        "{" + entries.map { "\(string($0.0))=>\($0.1.map(string) ?? "nil")" }.joined(separator: ", ") + "}"
    }

    /// Ruby `String#inspect` of a UTF-8 string, e.g. `"a\"b"`.
    public static func string(_ s: String) -> String {
        var out = "\""
        let scalars = Array(s.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{0C}": out += "\\f"
            case "\u{0B}": out += "\\v"
            case "\u{08}": out += "\\b"
            case "\u{07}": out += "\\a"
            case "\u{1B}": out += "\\e"
            case "#":
                // `#{`, `#$` and `#@` are escaped so the result is a valid literal.
                if i + 1 < scalars.count, ["{", "$", "@"].contains(scalars[i + 1]) {
                    out += "\\#"
                } else {
                    out += "#"
                }
            default:
                let v = c.value
                if v < 0x20 || v == 0x7F {
                    out += "\\u" + hex4(v)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
            i += 1
        }
        out += "\""
        return out
    }

    /// Ruby `Array#inspect` of strings, e.g. `["a", "b"]` (`[]` when empty).
    public static func array<S: Sequence>(_ items: S) -> String where S.Element: StringProtocol {
        var out = "["
        var first = true
        for s in items {
            if !first { out += ", " }
            first = false
            out += string(String(s))
        }
        out += "]"
        return out
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(v >> 12 & 0xF)], digits[Int(v >> 8 & 0xF)],
                       digits[Int(v >> 4 & 0xF)], digits[Int(v & 0xF)]])
    }
}
