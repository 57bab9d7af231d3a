extension RoutingTable {
    /// `routingdump json` body (R4.8): `[{"dgst_bits":…,"div_bits":…,"rn":…},[nodes…],{"<vn>":[…],…}]`.
    ///
    /// Vnodes in ascending order, no clocks, no trailing newline (the caller adds `\r\nEND\r\n`).
    public func jsonDump() -> String {
        var out = "[{\"dgst_bits\":\(dgstBits),\"div_bits\":\(divBits),\"rn\":\(rn)},["
        out.reserveCapacity(64 + vIdx.count * 48)
        appendJSONList(nodes, to: &out)
        out += "],{"
        var first = true
        for vn in vIdx.keys.sorted() {
            if !first { out += "," }
            first = false
            out += "\"\(vn)\":["
            appendJSONList(vIdx[vn]!, to: &out)
            out += "]"
        }
        out += "}]"
        return out
    }

    private func appendJSONList(_ list: [String], to out: inout String) {
        for (i, s) in list.enumerated() {
            if i > 0 { out += "," }
            out += JSONText.quote(s)
        }
    }

    /// `routingdump bin` body (R4.8), big-endian: `"RT"`, u16 version 1, u8 dgst_bits, u8 div_bits,
    /// u8 rn, u16 node count, per node u16 length + bytes, then per vnode (ascending, all
    /// `2^div_bits`) u32 clock, i8 count, count × u16 node index.
    ///
    /// Node ids found in `vIdx` but missing from `nodes` are appended to the node list of the dump
    /// (ROMA would crash); missing vnodes are written as clock 0 with no nodes.
    public func binDump() -> [UInt8] {
        var names = nodes
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        for vn in vnodes {
            for n in vIdx[vn]! where index[n] == nil {
                index[n] = names.count
                names.append(n)
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(9 + names.count * 24 + space.vnodeCount * (5 + 2 * rn))
        out += [UInt8(ascii: "R"), UInt8(ascii: "T")]
        appendBE16(1, &out)
        out.append(UInt8(truncatingIfNeeded: dgstBits))
        out.append(UInt8(truncatingIfNeeded: divBits))
        out.append(UInt8(truncatingIfNeeded: rn))
        appendBE16(names.count, &out)
        for n in names {
            let bytes = Array(n.utf8)
            appendBE16(bytes.count, &out)
            out += bytes
        }
        for vn in space.allVnodes {
            let clk = UInt32(truncatingIfNeeded: vClk[vn] ?? 0)
            out += [UInt8(truncatingIfNeeded: clk >> 24), UInt8(truncatingIfNeeded: clk >> 16),
                    UInt8(truncatingIfNeeded: clk >> 8), UInt8(truncatingIfNeeded: clk)]
            let list = vIdx[vn] ?? []
            out.append(UInt8(bitPattern: Int8(truncatingIfNeeded: list.count)))
            for n in list { appendBE16(index[n]!, &out) }
        }
        return out
    }

    /// Decodes a `routingdump bin` body (ROMA's `RoutingData.decode_binary`).
    public init(binary bin: [UInt8]) throws(RoutingError) {
        var p = 0
        func need(_ n: Int) throws(RoutingError) {
            if p + n > bin.count { throw .format("binary routing dump truncated") }
        }
        func u8() throws(RoutingError) -> Int { try need(1); p += 1; return Int(bin[p - 1]) }
        func u16() throws(RoutingError) -> Int { try need(2); p += 2; return Int(bin[p - 2]) << 8 | Int(bin[p - 1]) }
        try need(2)
        guard bin[0] == UInt8(ascii: "R"), bin[1] == UInt8(ascii: "T") else { throw .format("Illegal format error") }
        p = 2
        guard try u16() == 1 else { throw .format("Unsupported version error") }
        let dgst = try u8(), div = try u8(), rn = try u8()
        guard VnodeSpace.isValid(dgstBits: dgst, divBits: div) else {
            throw .invalidGeometry(dgstBits: dgst, divBits: div)
        }
        let count = try u16()
        var nodes: [String] = []
        for _ in 0..<count {
            let len = try u16()
            try need(len)
            nodes.append(String(decoding: bin[p ..< p + len], as: UTF8.self))
            p += len
        }
        let space = VnodeSpace(dgstBits: dgst, divBits: div)
        var vIdx: [UInt64: [String]] = [:]
        var vClk: [UInt64: Int] = [:]
        for vn in space.allVnodes {
            try need(5)
            let clk = Int(bin[p]) << 24 | Int(bin[p + 1]) << 16 | Int(bin[p + 2]) << 8 | Int(bin[p + 3])
            let n = Int(Int8(bitPattern: bin[p + 4]))
            p += 5
            var list: [String] = []
            if n > 0 {
                for _ in 0..<n {
                    let i = try u16()
                    guard i < nodes.count else { throw .format("node index \(i) out of range") }
                    list.append(nodes[i])
                }
            }
            vClk[vn] = clk
            vIdx[vn] = list
        }
        try self.init(dgstBits: dgst, divBits: div, rn: rn, nodes: nodes, vIdx: vIdx, vClk: vClk)
    }

    /// `routingdump` (no argument) body: Ruby Marshal 4.8 of `Roma::Routing::RoutingData` (R4.8),
    /// as read by the Ruby client and ROMA peers. Vnodes ascending; strings tagged UTF-8.
    public func marshalDump() -> [UInt8] {
        var m = RubyMarshalWriter()
        m.bytes += [4, 8]
        m.bytes.append(UInt8(ascii: "o"))
        m.symbol("Roma::Routing::RoutingData")
        m.long(6)
        m.symbol("@dgst_bits"); m.integer(Int64(dgstBits))
        m.symbol("@div_bits"); m.integer(Int64(divBits))
        m.symbol("@rn"); m.integer(Int64(rn))
        m.symbol("@nodes")
        m.stringArray(nodes)
        m.symbol("@v_idx")
        let keys = vIdx.keys.sorted()
        m.bytes.append(UInt8(ascii: "{"))
        m.long(keys.count)
        for vn in keys {
            m.unsigned(vn)
            m.stringArray(vIdx[vn]!)
        }
        m.symbol("@v_clk")
        let ckeys = vClk.keys.sorted()
        m.bytes.append(UInt8(ascii: "{"))
        m.long(ckeys.count)
        for vn in ckeys {
            m.unsigned(vn)
            m.integer(Int64(vClk[vn]!))
        }
        return m.bytes
    }
}

/// Minimal Ruby Marshal 4.8 writer (symbols with back-references, integers, UTF-8 strings, arrays).
struct RubyMarshalWriter {
    var bytes: [UInt8] = []
    private var symbols: [String: Int] = [:]

    /// Marshal's packed long (`w_long`).
    mutating func long(_ v: Int) {
        if v == 0 { bytes.append(0); return }
        if v > 0 && v < 123 { bytes.append(UInt8(v + 5)); return }
        if v < 0 && v > -124 { bytes.append(UInt8(bitPattern: Int8(v - 5))); return }
        var x = v
        var buf: [UInt8] = []
        for _ in 0..<MemoryLayout<Int>.size {
            buf.append(UInt8(truncatingIfNeeded: x))
            x >>= 8
            if (v >= 0 && x == 0) || (v < 0 && x == -1) { break }
        }
        bytes.append(v >= 0 ? UInt8(buf.count) : UInt8(bitPattern: Int8(-buf.count)))
        bytes += buf
    }

    mutating func symbol(_ s: String) {
        if let i = symbols[s] {
            bytes.append(UInt8(ascii: ";"))
            long(i)
            return
        }
        symbols[s] = symbols.count
        bytes.append(UInt8(ascii: ":"))
        let u = Array(s.utf8)
        long(u.count)
        bytes += u
    }

    /// A Ruby Integer: Fixnum (`i`) when it fits 31 signed bits (as 64-bit Ruby writes), else Bignum (`l`).
    mutating func integer(_ v: Int64) {
        if v >= -(1 << 30) && v < (1 << 30) {
            bytes.append(UInt8(ascii: "i"))
            long(Int(v))
        } else {
            bignum(negative: v < 0, magnitude: v.magnitude)
        }
    }

    mutating func unsigned(_ v: UInt64) {
        if v < (1 << 30) { integer(Int64(v)) } else { bignum(negative: false, magnitude: v) }
    }

    private mutating func bignum(negative: Bool, magnitude: UInt64) {
        bytes.append(UInt8(ascii: "l"))
        bytes.append(negative ? UInt8(ascii: "-") : UInt8(ascii: "+"))
        var le: [UInt8] = []
        var x = magnitude
        while x != 0 { le.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
        if le.count % 2 == 1 { le.append(0) }
        long(le.count / 2)
        bytes += le
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "I"))
        bytes.append(UInt8(ascii: "\""))
        let u = Array(s.utf8)
        long(u.count)
        bytes += u
        long(1)
        symbol("E")
        bytes.append(UInt8(ascii: "T"))
    }

    mutating func stringArray(_ list: [String]) {
        bytes.append(UInt8(ascii: "["))
        long(list.count)
        for s in list { string(s) }
    }
}

/// JSON string quoting as Ruby's `JSON.generate` does it (non-ASCII kept, `/` not escaped).
public enum JSONText {
    public static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 {
                    let h = String(c.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}

private func appendBE16(_ v: Int, _ out: inout [UInt8]) {
    out.append(UInt8(truncatingIfNeeded: v >> 8))
    out.append(UInt8(truncatingIfNeeded: v))
}
