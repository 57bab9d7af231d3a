import Yams

/// The Ruby tag ROMA writes at the top of `.route` files.
public let routingDataYAMLTag = "!ruby/object:Roma::Routing::RoutingData"

extension RoutingTable {
    /// Parses ROMA's `.route` YAML (R4.4), including the `--- !ruby/object:…RoutingData` header.
    ///
    /// Node ids keep their textual form; vnode ids and clocks must be non-negative integers.
    /// `nodes` is sorted after loading, as ROMA does at boot.
    public init(yaml: String) throws(RoutingError) {
        // The layout ROMA (Psych) and `yaml()` write, read line by line: parsing it with Yams
        // cost about 65 M instructions for 512 vnodes (20 ms of a joining node's start).
        if let p = PlainRouteYAML.parse(yaml) {
            try self.init(dgstBits: p.dgstBits, divBits: p.divBits, rn: p.rn, nodes: p.nodes, vIdx: p.vIdx, vClk: p.vClk)
        } else {
            try self.init(yamsParsing: yaml)
        }
    }

    /// `init(yaml:)` through Yams, for any YAML spelling of the table.
    init(yamsParsing yaml: String) throws(RoutingError) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw .format("YAML: \(error)")
        }
        guard let root, let map = root.mapping else { throw .format("routing YAML is not a mapping") }

        func intField(_ key: String) throws(RoutingError) -> Int {
            guard let s = map[key]?.scalar?.string, let v = Int(s) else {
                throw .format("missing or non-integer '\(key)'")
            }
            return v
        }
        let dgst = try intField("dgst_bits")
        let div = try intField("div_bits")
        let rn = try intField("rn")

        var nodes: [String] = []
        if let n = map["nodes"], !Self.isNull(n) {
            guard let seq = n.sequence else { throw .format("'nodes' is not a list") }
            for item in seq {
                guard let s = item.scalar?.string else { throw .format("'nodes' item is not a string") }
                nodes.append(s)
            }
        }

        var vIdx: [UInt64: [String]] = [:]
        if let v = map["v_idx"], !Self.isNull(v) {
            guard let m = v.mapping else { throw .format("'v_idx' is not a mapping") }
            for (k, val) in m {
                guard let ks = k.scalar?.string, let vn = UInt64(ks) else {
                    throw .format("'v_idx' key is not a vnode id")
                }
                var list: [String] = []
                if !Self.isNull(val) {
                    guard let seq = val.sequence else { throw .format("'v_idx' value for \(vn) is not a list") }
                    for item in seq {
                        guard let s = item.scalar?.string else {
                            throw .format("'v_idx' item for \(vn) is not a string")
                        }
                        list.append(s)
                    }
                }
                vIdx[vn] = list
            }
        }

        var vClk: [UInt64: Int] = [:]
        if let v = map["v_clk"], !Self.isNull(v) {
            guard let m = v.mapping else { throw .format("'v_clk' is not a mapping") }
            for (k, val) in m {
                guard let ks = k.scalar?.string, let vn = UInt64(ks),
                      let cs = val.scalar?.string, let c = Int(cs) else {
                    throw .format("'v_clk' entry is not <vnode>: <clock>")
                }
                vClk[vn] = c
            }
        }
        try self.init(dgstBits: dgst, divBits: div, rn: rn, nodes: nodes, vIdx: vIdx, vClk: vClk)
    }

    private static func isNull(_ n: Node) -> Bool {
        guard let s = n.scalar, s.style == .plain else { return false }
        return s.string.isEmpty || s.string == "~" || s.string == "null" || s.string == "Null"
            || s.string == "NULL"
    }

    /// Renders the table exactly as ROMA 1.3 (Ruby Psych) writes a `.route` file / `routingdump yaml`.
    ///
    /// Vnodes are written in ascending order, nodes sorted byte-wise; the text ends with `\n`.
    public func yaml() -> String {
        // Each distinct node id is rendered once (a table names a few nodes 2^div_bits × rn times).
        var rendered: [String: String] = [:]
        func render(_ n: String) -> String {
            if let r = rendered[n] { return r }
            let r = YAMLScalar.render(n)
            rendered[n] = r
            return r
        }
        var out = "--- \(routingDataYAMLTag)\n"
        out.reserveCapacity(64 + vIdx.count * 64 + nodes.count * 24)
        out += "dgst_bits: \(dgstBits)\ndiv_bits: \(divBits)\nrn: \(rn)\n"
        if nodes.isEmpty {
            out += "nodes: []\n"
        } else {
            out += "nodes:\n"
            for n in nodes.sorted(by: NodeID.precedes) { out += "- \(render(n))\n" }
        }
        if vIdx.isEmpty {
            out += "v_idx: {}\n"
        } else {
            out += "v_idx:\n"
            for vn in vIdx.keys.sorted() {
                let list = vIdx[vn]!
                if list.isEmpty {
                    out += "  \(vn): []\n"
                } else {
                    out += "  \(vn):\n"
                    for n in list { out += "  - \(render(n))\n" }
                }
            }
        }
        if vClk.isEmpty {
            out += "v_clk: {}\n"
        } else {
            out += "v_clk:\n"
            for vn in vClk.keys.sorted() { out += "  \(vn): \(vClk[vn]!)\n" }
        }
        return out
    }
}

/// The routing YAML in the one layout ROMA 1.3 (Psych) and `RoutingTable.yaml()` write: the
/// `RoutingData` header line, then `dgst_bits`, `div_bits`, `rn`, `nodes` (a block list or `[]`),
/// `v_idx` (`  <vn>:` each followed by `  - <nid>` lines, or `  <vn>: []`, or `{}`) and `v_clk`
/// (`  <vn>: <clock>`, or `{}`), each key once, in any order. Node ids must be plain scalars of
/// letters, digits, `.`, `_` and `-` starting with a letter or digit; numbers plain decimal.
/// Anything else (quotes, comments, flow lists, other keys, CRLF, a repeated key) gives nil, and
/// the caller parses the text with Yams: the result is the same either way.
enum PlainRouteYAML {
    struct Parsed {
        var dgstBits = 0, divBits = 0, rn = 0
        var nodes: [String] = []
        var vIdx: [UInt64: [String]] = [:]
        var vClk: [UInt64: Int] = [:]
    }

    static func parse(_ text: String) -> Parsed? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    private static func parse(bytes b: UnsafeBufferPointer<UInt8>) -> Parsed? {
        // Lines, without their "\n"; a final line without one is allowed.
        var lines: [Range<Int>] = []
        lines.reserveCapacity(b.count / 12)
        var start = 0
        for i in 0..<b.count where b[i] == UInt8(ascii: "\n") {
            lines.append(start..<i)
            start = i + 1
        }
        if start < b.count { lines.append(start..<b.count) }
        func line(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: b[r]) }
        func equals(_ l: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Bool {
            l.count == s.utf8CodeUnitCount && l.elementsEqual(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        func hasPrefix(_ l: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Bool {
            l.count >= s.utf8CodeUnitCount && l.prefix(s.utf8CodeUnitCount).elementsEqual(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        /// A plain decimal number (no sign, at most 18 digits).
        func number(_ l: UnsafeBufferPointer<UInt8>) -> Int? {
            guard !l.isEmpty, l.count <= 18 else { return nil }
            var v = 0
            for c in l {
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        func isAlnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
        func isNameByte(_ c: UInt8) -> Bool {
            isAlnum(c) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
        var names: [String] = []
        /// A plain node id (one String per distinct id, shared by every list naming it).
        func name(_ l: UnsafeBufferPointer<UInt8>) -> String? {
            guard let f = l.first, isAlnum(f), l.allSatisfy(isNameByte) else { return nil }
            for n in names where n.utf8.elementsEqual(l) { return n }
            let n = String(decoding: l, as: UTF8.self)
            names.append(n)
            return n
        }
        /// "<prefix><rest>" → rest.
        func after(_ l: UnsafeBufferPointer<UInt8>, _ n: Int) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: l[(l.startIndex + n)...])
        }

        guard let first = lines.first, equals(line(first), "--- !ruby/object:Roma::Routing::RoutingData") else { return nil }
        var out = Parsed()
        var seen = Set<String>()
        var i = 1
        while i < lines.count {
            let l = line(lines[i])
            i += 1
            if l.isEmpty && i == lines.count { break }
            if hasPrefix(l, "dgst_bits: ") || hasPrefix(l, "div_bits: ") || hasPrefix(l, "rn: ") {
                let colon = l.firstIndex(of: UInt8(ascii: ":"))!
                let key = String(decoding: UnsafeBufferPointer(rebasing: l[..<colon]), as: UTF8.self)
                guard seen.insert(key).inserted, let v = number(after(l, colon + 2)) else { return nil }
                switch key {
                case "dgst_bits": out.dgstBits = v
                case "div_bits": out.divBits = v
                default: out.rn = v
                }
            } else if equals(l, "nodes: []") || equals(l, "nodes:") {
                guard seen.insert("nodes").inserted else { return nil }
                guard l.count == 6 else { continue }
                while i < lines.count, hasPrefix(line(lines[i]), "- ") {
                    guard let n = name(after(line(lines[i]), 2)) else { return nil }
                    out.nodes.append(n)
                    i += 1
                }
            } else if equals(l, "v_idx: {}") || equals(l, "v_idx:") {
                guard seen.insert("v_idx").inserted else { return nil }
                guard l.count == 6 else { continue }
                while i < lines.count, hasPrefix(line(lines[i]), "  "), !hasPrefix(line(lines[i]), "  - ") {
                    var entry = after(line(lines[i]), 2)
                    i += 1
                    let empty = entry.count > 4 && hasPrefix(after(entry, entry.count - 4), ": []")
                    if empty {
                        entry = UnsafeBufferPointer(rebasing: entry[..<(entry.count - 4)])
                    } else {
                        guard entry.last == UInt8(ascii: ":") else { return nil }
                        entry = UnsafeBufferPointer(rebasing: entry[..<(entry.count - 1)])
                    }
                    guard let vn = number(entry), out.vIdx[UInt64(vn)] == nil else { return nil }
                    var list: [String] = []
                    while !empty, i < lines.count, hasPrefix(line(lines[i]), "  - ") {
                        guard let n = name(after(line(lines[i]), 4)) else { return nil }
                        list.append(n)
                        i += 1
                    }
                    out.vIdx[UInt64(vn)] = list
                }
            } else if equals(l, "v_clk: {}") || equals(l, "v_clk:") {
                guard seen.insert("v_clk").inserted else { return nil }
                guard l.count == 6 else { continue }
                while i < lines.count, hasPrefix(line(lines[i]), "  ") {
                    let entry = after(line(lines[i]), 2)
                    i += 1
                    guard let sep = entry.firstIndex(of: UInt8(ascii: ":")), sep + 1 < entry.count, entry[sep + 1] == UInt8(ascii: " "),
                          let vn = number(UnsafeBufferPointer(rebasing: entry[..<sep])),
                          let clk = number(after(entry, sep + 2)), out.vClk[UInt64(vn)] == nil else { return nil }
                    out.vClk[UInt64(vn)] = clk
                }
            } else {
                return nil
            }
        }
        // The three numbers are required (Yams' path throws without them: let it say so).
        guard seen.contains("dgst_bits"), seen.contains("div_bits"), seen.contains("rn") else { return nil }
        return out
    }
}

/// Psych-compatible rendering of string scalars (plain when safe, else quoted like Psych/libyaml).
enum YAMLScalar {
    static func render(_ s: String) -> String {
        if s.isEmpty { return "''" }
        if s == "y" || s == "n" { return doubleQuoted(s) }
        let scalars = Array(s.unicodeScalars)
        let needsEscape = scalars.contains { v in
            (v.value < 0x20 && v != "\t") || v.value == 0x7F || v.value == 0x85 || v.value == 0xFEFF
                || v.value == 0x2028 || v.value == 0x2029
        } || s.contains("\t")
        if needsEscape { return doubleQuoted(s) }
        // Psych: a string starting with a non-word character and without '"' is double-quoted.
        if !isWordChar(scalars[0]) && !s.contains("\"") { return doubleQuoted(s) }
        // Psych: strings that would load as another type are single-quoted.
        if resolvesToNonString(s) { return singleQuoted(s) }
        if !plainAllowed(scalars) { return singleQuoted(s) }
        return s
    }

    private static func isWordChar(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
            || c.properties.generalCategory == .nonspacingMark
    }

    /// Approximation of Psych's ScalarScanner: null, booleans, numbers, dates, symbols.
    private static func resolvesToNonString(_ s: String) -> Bool {
        let lower = s.lowercased()
        if ["~", "null", "yes", "true", "on", "no", "false", "off"].contains(lower) { return true }
        if [".inf", "+.inf", "-.inf", ".nan"].contains(lower) { return true }
        if s.hasPrefix(":") && s.count > 1 { return true }
        let u = Array(s.utf8)
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        // Leading zero followed by 8/9 (Psych single-quotes these explicitly).
        if u.first == UInt8(ascii: "0") {
            var i = 1
            while i < u.count, u[i] >= 0x30, u[i] <= 0x37 { i += 1 }
            if i < u.count, u[i] == UInt8(ascii: "8") || u[i] == UInt8(ascii: "9") { return true }
        }
        // Date / time prefix: dddd-d?d-d?d
        if u.count >= 8, u[0..<4].allSatisfy(isDigit), u[4] == UInt8(ascii: "-") { return true }
        var body = u[...]
        if let f = body.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") { body = body.dropFirst() }
        guard !body.isEmpty else { return false }
        // Integers: binary, octal, hex, decimal with '_' or ',' separators.
        if body.starts(with: Array("0b".utf8)) {
            return body.count > 2 && body.dropFirst(2).allSatisfy { "01_,".utf8.contains($0) }
        }
        if body.starts(with: Array("0x".utf8)) {
            return body.count > 2 && body.dropFirst(2).allSatisfy { isDigit($0) || "abcdefABCDEF_,".utf8.contains($0) }
        }
        if body.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ",") }) && isDigit(body.first!) {
            return true
        }
        // Sexagesimal (e.g. 1:20).
        if isDigit(body.first!) && body.contains(UInt8(ascii: ":"))
            && body.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) {
            return true
        }
        // Floats: [digits[_,]*] '.' digits* [e[+-]digits], not a lone '.'.
        var i = body.startIndex
        var intDigits = 0
        while i < body.endIndex, isDigit(body[i]) || (intDigits > 0 && (body[i] == UInt8(ascii: "_") || body[i] == UInt8(ascii: ","))) {
            intDigits += 1
            i += 1
        }
        guard i < body.endIndex, body[i] == UInt8(ascii: ".") else { return false }
        i += 1
        var fracDigits = 0
        while i < body.endIndex, isDigit(body[i]) { fracDigits += 1; i += 1 }
        if intDigits == 0 && fracDigits == 0 { return false }
        if i == body.endIndex { return true }
        guard body[i] == UInt8(ascii: "e") || body[i] == UInt8(ascii: "E") else { return false }
        i += 1
        guard i < body.endIndex, body[i] == UInt8(ascii: "+") || body[i] == UInt8(ascii: "-") else { return false }
        i += 1
        guard i < body.endIndex else { return false }
        while i < body.endIndex { if !isDigit(body[i]) { return false }; i += 1 }
        return true
    }

    /// libyaml's block-context plain-scalar checks.
    private static func plainAllowed(_ c: [Unicode.Scalar]) -> Bool {
        let indicators: Set<Unicode.Scalar> = ["#", ",", "[", "]", "{", "}", "&", "*", "!", "|", ">", "'", "\"", "%", "@", "`"]
        if indicators.contains(c[0]) { return false }
        if c[0] == " " || c[c.count - 1] == " " { return false }
        for (i, ch) in c.enumerated() {
            let nextBlank = i + 1 >= c.count || c[i + 1] == " "
            if i == 0, ch == "-" || ch == "?" || ch == ":", nextBlank { return false }
            if ch == ":" && nextBlank { return false }
            if ch == "#" && i > 0 && c[i - 1] == " " { return false }
        }
        return true
    }

    private static func singleQuoted(_ s: String) -> String {
        "'" + s.replacingAll("'", with: "''") + "'"
    }

    private static func doubleQuoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\0": out += "\\0"
            case "\u{07}": out += "\\a"
            case "\u{08}": out += "\\b"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\u{0B}": out += "\\v"
            case "\u{0C}": out += "\\f"
            case "\r": out += "\\r"
            case "\u{1B}": out += "\\e"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{85}": out += "\\N"
            case "\u{A0}": out += "\\_"
            case "\u{2028}": out += "\\L"
            case "\u{2029}": out += "\\P"
            default:
                if c.value < 0x20 || c.value == 0x7F || c.value == 0xFEFF {
                    let h = String(c.value, radix: 16, uppercase: true)
                    if c.value <= 0xFF {
                        out += "\\x" + String(repeating: "0", count: 2 - h.count) + h
                    } else {
                        out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}

extension String {
    /// Replaces every occurrence of `target` (no Foundation needed).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self {
            if ch == target { out += replacement } else { out.append(ch) }
        }
        return out
    }
}
