import Yams

/// Reads ROMA's own `config.rb` (what ROMA's `mkconfig` writes, spec R9.1) without a Ruby
/// interpreter: the constant assignments of its `module Roma; module Config` body.
///
/// What it evaluates: integers (with `_`), floats, integer arithmetic (`60 * 60 * 24 * 5`,
/// `+ - * /`, parentheses, unary minus), strings in single or double quotes (escapes; no `#{}`),
/// symbols (`:auto_assign`), `true`/`false`/`nil`, constant paths (`Roma::Storage::TCStorage`)
/// and arrays of those. Lines that are not `NAME = value` at the start (`require`, `module`, the
/// body of `def self.get_stat`) are skipped. A value it cannot evaluate is kept as `unreadable`:
/// `NodeConfig` refuses it for a setting it uses and ignores it for the others, as it ignores
/// every setting it does not use.
enum RubyConfig {
    /// One `NAME = value` of the file.
    struct Assignment: Equatable {
        let name: String
        let value: Value
        /// 1-based line of `NAME`.
        let line: Int
    }

    /// One `key => value` of a Hash literal.
    struct Entry: Equatable {
        let key: Value
        let value: Value
    }

    indirect enum Value: Equatable {
        case int(Int)
        case float(Double)
        case string(String)
        case symbol(String)
        case bool(Bool)
        case `nil`
        case constant(String)
        case array([Value])
        /// A Hash literal, in its order (`{ 'a' => 1, b: 2 }`).
        case hash([Entry])
        /// The source text of a value this reader does not evaluate.
        case unreadable(String)
    }

    /// Whether `text` (read from `path`) is Ruby rather than YAML.
    static func looksLikeRuby(path: String, text: String) -> Bool {
        if path.hasSuffix(".rb") { return true }
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let t = line.drop(while: { $0 == " " || $0 == "\t" })
            if t.hasPrefix("#") || t.isEmpty { continue }
            return t.hasPrefix("module ") || t.hasPrefix("require ") || t.hasPrefix("require(")
        }
        return false
    }

    /// Every constant assignment of the file, in order.
    static func assignments(in text: String) -> [Assignment] {
        let chars = Array(text.unicodeScalars)
        var out: [Assignment] = []
        var i = 0
        var line = 1
        while i < chars.count {
            // At the start of a line: skip indentation, then look for `NAME =` (not `==`).
            let lineStart = line
            var j = i
            while j < chars.count, chars[j] == " " || chars[j] == "\t" { j += 1 }
            var k = j
            if k < chars.count, isUpper(chars[k]) {
                while k < chars.count, isUpper(chars[k]) || isDigit(chars[k]) || chars[k] == "_" { k += 1 }
                let name = String(String.UnicodeScalarView(chars[j..<k]))
                var e = k
                while e < chars.count, chars[e] == " " || chars[e] == "\t" { e += 1 }
                if e < chars.count, chars[e] == "=", e + 1 >= chars.count || (chars[e + 1] != "=" && chars[e + 1] != "~") {
                    let (source, end, lines) = valueSource(chars, from: e + 1)
                    var p = Parser(source)
                    let value = p.parseWhole() ?? .unreadable(source.trimmed)
                    out.append(Assignment(name: name, value: value, line: lineStart))
                    i = end
                    line += lines
                    continue
                }
            }
            // Not an assignment: skip to the next line.
            while i < chars.count, chars[i] != "\n" { i += 1 }
            if i < chars.count { i += 1; line += 1 }
        }
        return out
    }

    /// The value's text from `start` to the end of its line, continued over newlines while a
    /// bracket or quote is open or the line ends in an operator or comma; comments removed.
    /// Returns the text, the index after its last newline, and the newlines consumed.
    private static func valueSource(_ c: [Unicode.Scalar], from start: Int) -> (String, Int, Int) {
        var s = String.UnicodeScalarView()
        var i = start
        var depth = 0
        var quote: Unicode.Scalar?
        var lines = 0
        while i < c.count {
            let ch = c[i]
            if let q = quote {
                s.append(ch)
                if ch == "\\", i + 1 < c.count { s.append(c[i + 1]); i += 2; continue }
                if ch == q { quote = nil }
                if ch == "\n" { lines += 1 }
                i += 1
                continue
            }
            switch ch {
            case "'", "\"":
                quote = ch
                s.append(ch)
            case "#":
                while i < c.count, c[i] != "\n" { i += 1 }
                continue
            case "[", "(", "{":
                depth += 1
                s.append(ch)
            case "]", ")", "}":
                depth -= 1
                s.append(ch)
            case "\n":
                lines += 1
                let last = String(s).trimmed.last
                let continues = depth > 0 || last.map { "+-*/,\\".contains($0) } == true
                if !continues { return (String(s), i + 1, lines) }
                s.append(" ")
            default:
                s.append(ch)
            }
            i += 1
        }
        return (String(s), i, lines)
    }

    private static func isUpper(_ c: Unicode.Scalar) -> Bool { c >= "A" && c <= "Z" }
    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

    /// A recursive-descent reader of one value.
    private struct Parser {
        let c: [Unicode.Scalar]
        var i = 0
        init(_ s: String) { c = Array(s.unicodeScalars) }

        mutating func parseWhole() -> Value? {
            guard let v = expression() else { return nil }
            skipSpace()
            return i == c.count ? v : nil
        }

        private mutating func skipSpace() {
            while i < c.count, c[i] == " " || c[i] == "\t" || c[i] == "\r" || c[i] == "\n" { i += 1 }
        }

        private mutating func peek() -> Unicode.Scalar? {
            skipSpace()
            return i < c.count ? c[i] : nil
        }

        /// term (('+'|'-') term)*, numbers only beyond the first term (strings: `+` joins).
        private mutating func expression() -> Value? {
            guard var v = term() else { return nil }
            while let op = peek(), op == "+" || op == "-" {
                i += 1
                guard let r = term() else { return nil }
                switch (v, r, op) {
                case let (.int(a), .int(b), "+"):
                    // Ruby would go on in a Bignum: beyond Int, the value is not evaluated.
                    let (r, o) = a.addingReportingOverflow(b)
                    guard !o else { return nil }
                    v = .int(r)
                case let (.int(a), .int(b), _):
                    let (r, o) = a.subtractingReportingOverflow(b)
                    guard !o else { return nil }
                    v = .int(r)
                case let (.string(a), .string(b), "+"): v = .string(a + b)
                default:
                    guard let a = v.number, let b = r.number else { return nil }
                    v = .float(op == "+" ? a + b : a - b)
                }
            }
            return v
        }

        private mutating func term() -> Value? {
            guard var v = factor() else { return nil }
            while let op = peek(), op == "*" || op == "/" {
                if op == "*", i + 1 < c.count, c[i + 1] == "*" { return nil }
                i += 1
                guard let r = factor() else { return nil }
                switch (v, r, op) {
                case let (.int(a), .int(b), "*"):
                    let (r, o) = a.multipliedReportingOverflow(by: b)
                    guard !o else { return nil }
                    v = .int(r)
                case let (.int(a), .int(b), _):
                    guard b != 0, !(a == Int.min && b == -1) else { return nil }
                    // Ruby's integer division rounds toward negative infinity.
                    let q = a / b
                    v = .int((a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q)
                default:
                    guard let a = v.number, let b = r.number else { return nil }
                    v = .float(op == "*" ? a * b : a / b)
                }
            }
            return v
        }

        private mutating func factor() -> Value? {
            guard let ch = peek() else { return nil }
            switch ch {
            case "(":
                i += 1
                guard let v = expression(), peek() == ")" else { return nil }
                i += 1
                return v
            case "-":
                i += 1
                switch factor() {
                case .int(let n)? where n != Int.min: return .int(-n)
                case .float(let d)?: return .float(-d)
                default: return nil
                }
            case "[":
                i += 1
                var items: [Value] = []
                if peek() == "]" { i += 1; return .array(items) }
                while true {
                    guard let v = expression() else { return nil }
                    items.append(v)
                    guard let sep = peek() else { return nil }
                    i += 1
                    if sep == "]" { return .array(items) }
                    guard sep == "," else { return nil }
                    if peek() == "]" { i += 1; return .array(items) }
                }
            case "'", "\"":
                return string(quote: ch)
            case "{":
                i += 1
                var entries: [Entry] = []
                if peek() == "}" { i += 1; return .hash(entries) }
                while true {
                    // `name: value` (a symbol key) or `key => value`.
                    let save = i
                    var key: Value?
                    if let w = peek(), isWord(w), !isDigit(w) {
                        let start = i
                        while i < c.count, isWord(c[i]) { i += 1 }
                        if i < c.count, c[i] == ":", i + 1 >= c.count || c[i + 1] != ":" {
                            key = .symbol(text(start, i))
                            i += 1
                        } else {
                            i = save
                        }
                    }
                    if key == nil {
                        guard let k = expression(), peek() == "=", i + 1 < c.count, c[i + 1] == ">" else { return nil }
                        i += 2
                        key = k
                    }
                    guard let k = key, let v = expression() else { return nil }
                    entries.append(Entry(key: k, value: v))
                    guard let sep = peek() else { return nil }
                    i += 1
                    if sep == "}" { return .hash(entries) }
                    guard sep == "," else { return nil }
                    if peek() == "}" { i += 1; return .hash(entries) }
                }
            case ":":
                i += 1
                let start = i
                while i < c.count, isWord(c[i]) || c[i] == "?" || c[i] == "!" { i += 1 }
                return i > start ? .symbol(text(start, i)) : nil
            default:
                if isDigit(ch) { return number() }
                if isWord(ch) { return word() }
                return nil
            }
        }

        private mutating func number() -> Value? {
            let start = i
            while i < c.count, isDigit(c[i]) || c[i] == "_" { i += 1 }
            var isFloat = false
            if i + 1 < c.count, c[i] == ".", isDigit(c[i + 1]) {
                isFloat = true
                i += 1
                while i < c.count, isDigit(c[i]) || c[i] == "_" { i += 1 }
            }
            if i < c.count, c[i] == "e" || c[i] == "E" {
                isFloat = true
                i += 1
                if i < c.count, c[i] == "-" || c[i] == "+" { i += 1 }
                while i < c.count, isDigit(c[i]) { i += 1 }
            }
            let t = String(text(start, i).filter { $0 != "_" })
            if isFloat { return Double(t).map(Value.float) }
            return Int(t).map(Value.int)
        }

        /// `true`, `false`, `nil` or a constant path `A::B::C`; anything else (a method call) is unreadable.
        private mutating func word() -> Value? {
            let start = i
            while i < c.count, isWord(c[i]) || (c[i] == ":" && i + 1 < c.count && c[i + 1] == ":") {
                i += c[i] == ":" ? 2 : 1
            }
            let w = text(start, i)
            if i < c.count, c[i] == "(" || c[i] == "." { return nil }
            switch w {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "nil": return .nil
            default:
                guard let f = w.unicodeScalars.first, isUpper(f) else { return nil }
                return .constant(w)
            }
        }

        private mutating func string(quote: Unicode.Scalar) -> Value? {
            i += 1
            var s = String.UnicodeScalarView()
            while i < c.count {
                let ch = c[i]
                if ch == quote { i += 1; return .string(String(s)) }
                if ch == "\\", i + 1 < c.count {
                    let n = c[i + 1]
                    i += 2
                    if quote == "'" {
                        if n != "'" && n != "\\" { s.append("\\") }
                        s.append(n)
                    } else {
                        switch n {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        case "r": s.append("\r")
                        case "0": s.append("\0")
                        case "s": s.append(" ")
                        case "e": s.append("\u{1B}")
                        default: s.append(n)
                        }
                    }
                    continue
                }
                // Interpolation needs Ruby.
                if quote == "\"", ch == "#", i + 1 < c.count, c[i + 1] == "{" { return nil }
                s.append(ch)
                i += 1
            }
            return nil
        }

        private func text(_ a: Int, _ b: Int) -> String { String(String.UnicodeScalarView(c[a..<b])) }
        private func isWord(_ ch: Unicode.Scalar) -> Bool {
            (ch >= "a" && ch <= "z") || (ch >= "A" && ch <= "Z") || (ch >= "0" && ch <= "9") || ch == "_"
        }
        private func isDigit(_ ch: Unicode.Scalar) -> Bool { ch >= "0" && ch <= "9" }
        private func isUpper(_ ch: Unicode.Scalar) -> Bool { ch >= "A" && ch <= "Z" }
    }
}

extension RubyConfig.Value {
    var number: Double? {
        switch self {
        case .int(let n): return Double(n)
        case .float(let d): return d
        default: return nil
        }
    }

    /// The value as the YAML node `NodeConfig` reads settings from; nil for `nil` (the setting
    /// keeps its default) and for values this reader could not evaluate.
    var yamlNode: Yams.Node? {
        switch self {
        case .int(let n): return Yams.Node(String(n), Tag(.int))
        case .float(let d): return Yams.Node(String(d), Tag(.float))
        case .string(let s): return Yams.Node(s, Tag(.str), .singleQuoted)
        case .symbol(let s): return Yams.Node(s, Tag(.str))
        case .bool(let b): return Yams.Node(b ? "true" : "false", Tag(.bool))
        case .constant(let p): return Yams.Node(p, Tag(.str))
        case .array(let xs): return Yams.Node(xs.compactMap(\.yamlNode))
        case .hash(let entries):
            return Yams.Node(entries.compactMap { e in e.key.yamlNode.flatMap { k in e.value.yamlNode.map { (k, $0) } } })
        case .nil, .unreadable: return nil
        }
    }
}

private extension String {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}
