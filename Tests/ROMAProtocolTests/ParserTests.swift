import NIOCore
import Testing
@testable import ROMAProtocol

// MARK: - helpers

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Renders a byte string readably: printable ASCII as is, everything else as \xHH.
private func show(_ b: [UInt8]) -> String {
    var out = ""
    for c in b {
        if c >= 0x20 && c < 0x7F && c != UInt8(ascii: "\\") { out.append(Character(UnicodeScalar(c))) } else {
            out += "\\x" + String(c, radix: 16, uppercase: true).leftPad2
        }
    }
    return out
}

private extension String {
    var leftPad2: String { count < 2 ? "0" + self : self }
}

/// A comparable rendering of a parse event.
private func describe(_ e: ParseEvent) -> String {
    switch e {
    case .error(let m): return "ERR " + m
    case .fatal(let m): return "FATAL " + m
    case .request(let r):
        let name = r.command?.name ?? "?"
        let toks = (0..<r.count).map { show(r.tokenBytes($0)) }.joined(separator: "|")
        var s = "REQ \(name) [\(toks)]"
        if let d = r.data { s += " data=\(show(Array(d.readableBytesView)))" }
        if r.noreply { s += " noreply" }
        return s
    }
}

/// Feeds `input` split into chunks of the given sizes (the rest in one chunk), draining events
/// after every chunk like a channel handler would. Optionally compacts the buffer like NIO does.
private func feed(_ input: [UInt8], chunks: [Int] = [], limits: ProtocolLimits = ProtocolLimits(),
                  parser: inout RequestParser, buffer: inout ByteBuffer, compact: Bool = false) -> [String] {
    var out: [String] = []
    var pos = 0
    var sizes = chunks
    while pos < input.count {
        let n = sizes.isEmpty ? input.count - pos : min(sizes.removeFirst(), input.count - pos)
        buffer.writeBytes(input[pos..<(pos + n)])
        pos += n
        while let e = parser.next(&buffer) { out.append(describe(e)) }
        if compact { buffer.discardReadBytes() }
    }
    return out
}

private func parse(_ input: [UInt8], chunks: [Int] = [], limits: ProtocolLimits = ProtocolLimits()) -> [String] {
    var p = RequestParser(limits: limits)
    var buf = ByteBufferAllocator().buffer(capacity: 64)
    return feed(input, chunks: chunks, limits: limits, parser: &p, buffer: &buf)
}

private func parse(_ input: String, limits: ProtocolLimits = ProtocolLimits()) -> [String] {
    parse(bytes(input), limits: limits)
}

/// Byte by byte.
private func parseBytewise(_ input: [UInt8], limits: ProtocolLimits = ProtocolLimits()) -> [String] {
    parse(input, chunks: Array(repeating: 1, count: input.count), limits: limits)
}

private func limits(maxValue: Int? = nil, maxLine: Int? = nil, maxKey: Int? = nil) -> ProtocolLimits {
    var l = ProtocolLimits()
    if let maxValue { l.maxValueSize = maxValue }
    if let maxLine { l.maxLineLength = maxLine }
    if let maxKey { l.maxKeyLength = maxKey }
    return l
}

private struct RNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func randomSplits(_ n: Int, using rng: inout RNG) -> [Int] {
    var out: [Int] = []
    var left = n
    while left > 0 {
        let k = Int.random(in: 1...max(1, min(left, 17)), using: &rng)
        out.append(k)
        left -= k
    }
    return out
}

// MARK: - tests

@Suite("Request parser (R3.1, R3.8, R3.9)")
struct ParserTests {
    // MARK: lines and tokens

    @Test("tokens are separated by runs of spaces; leading and trailing spaces dropped")
    func tokenisation() {
        #expect(parse("get  a   b\r\n") == ["REQ get [get|a|b]"])
        #expect(parse("   get a\r\n") == ["REQ get [get|a]"])
        #expect(parse("get a    \r\n") == ["REQ get [get|a]"])
        #expect(parse("gets a b c d e f g\r\n") == ["REQ gets [gets|a|b|c|d|e|f|g]"])
        // tabs are not separators
        #expect(parse("get a\tb\r\n") == ["REQ get [get|a\\x09b]"])
        // a 5-token storage line with a trailing space is valid (R3.1)
        #expect(parse("set k 1 0 5 \r\nhello\r\n") == ["REQ set [set|k|1|0|5] data=hello"])
        #expect(parse("set  k  1  0  5\r\nhello\r\n") == ["REQ set [set|k|1|0|5] data=hello"])
    }

    @Test("command names match case-insensitively; unknown names are requests without command")
    func caseInsensitive() {
        #expect(parse("GET k\r\n") == ["REQ get [GET|k]"])
        #expect(parse("gEtS k\r\n") == ["REQ gets [gEtS|k]"])
        #expect(parse("SeT k 0 0 1\r\nx\r\n") == ["REQ set [SeT|k|0|0|1] data=x"])
        #expect(parse("SET_EXPT k 10\r\n") == ["REQ set_expt [SET_EXPT|k|10]"])
        #expect(parse("Flush_All\r\n") == ["REQ flush_all [Flush_All]"])
        #expect(parse("sett k\r\n") == ["REQ ? [sett|k]"])
        #expect(parse("g\r\n") == ["REQ ? [g]"])
        #expect(parse("\u{1B}get k\r\n") == ["REQ ? [\\x1Bget|k]"])
    }

    @Test("every command matches its own name in any case")
    func allCommandsMatch() {
        for c in Command.allCases {
            for name in [c.name, c.name.uppercased()] {
                let r = bytes(name).withUnsafeBytes { Command.match($0) }
                #expect(r == c, "\(name)")
            }
        }
        #expect(bytes("").withUnsafeBytes { Command.match($0) } == nil)
        #expect(bytes("get ").withUnsafeBytes { Command.match($0) } == nil)
        #expect(Set(Command.allCases.map(\.name)).count == Command.allCases.count)
        #expect(Command.allCases.filter(\.hasDataBlock) == [.set, .add, .replace, .append, .prepend, .cas,
                                                             .fset, .fadd, .freplace, .fappend, .fprepend, .fcas, .rset, .rzset])
    }

    @Test("CR LF and bare LF both end a line; only one CR is stripped")
    func lineEndings() {
        #expect(parse("get a\nget b\r\n") == ["REQ get [get|a]", "REQ get [get|b]"])
        #expect(parse("get a\r\r\n") == ["REQ get [get|a\\x0D]"])
        #expect(parse("get a\rb\n") == ["REQ get [get|a\\x0Db]"])
        #expect(parse("set k 0 0 2\nhi\r\n") == ["REQ set [set|k|0|0|2] data=hi"])
    }

    @Test("empty and blank lines are ignored")
    func emptyLines() {
        #expect(parse("\r\n\n   \r\n \n\r\nget a\r\n\r\n") == ["REQ get [get|a]"])
        #expect(parse("\r\n") == [])
        #expect(parse("\n\n\n") == [])
    }

    @Test("an incomplete line yields nothing")
    func incompleteLine() {
        #expect(parse("get a") == [])
        #expect(parse("get a\r") == [])
        var p = RequestParser()
        var buf = ByteBuffer()
        #expect(feed(bytes("get a"), parser: &p, buffer: &buf) == [])
        #expect(feed(bytes("b\r"), parser: &p, buffer: &buf) == [])
        #expect(feed(bytes("\n"), parser: &p, buffer: &buf) == ["REQ get [get|ab]"])
        #expect(buf.readableBytes == 0)
    }

    // MARK: storage commands and data blocks

    @Test("a storage command waits for its data block")
    func waitsForData() {
        var p = RequestParser()
        var buf = ByteBuffer()
        #expect(feed(bytes("set k 0 0 5\r\n"), parser: &p, buffer: &buf) == [])
        #expect(p.isAwaitingData)
        #expect(feed(bytes("hel"), parser: &p, buffer: &buf) == [])
        #expect(feed(bytes("lo"), parser: &p, buffer: &buf) == [])
        #expect(feed(bytes("\r"), parser: &p, buffer: &buf) == [])
        #expect(p.isAwaitingData)
        #expect(feed(bytes("\n"), parser: &p, buffer: &buf) == ["REQ set [set|k|0|0|5] data=hello"])
        #expect(!p.isAwaitingData)
        #expect(buf.readableBytes == 0)
    }

    @Test("data blocks may contain CR, LF, NUL, 0xFF and command text")
    func binaryData() {
        let data: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF] + bytes("get x\r\n")
        let input = bytes("set k 0 0 \(data.count)\r\n") + data + bytes("\r\n")
        let expected = ["REQ set [set|k|0|0|\(data.count)] data=\(show(data))"]
        #expect(parse(input) == expected)
        #expect(parseBytewise(input) == expected)
    }

    @Test("empty data block (R3.13)")
    func emptyData() {
        #expect(parse("set k 0 0 0\r\n\r\nget k\r\n") == ["REQ set [set|k|0|0|0] data=", "REQ get [get|k]"])
    }

    @Test("all storage commands carry data; cas takes its unique as token 5")
    func storageCommands() {
        for c in ["set", "add", "replace", "append", "prepend"] {
            #expect(parse("\(c) k 3 100 2\r\nab\r\n") == ["REQ \(c) [\(c)|k|3|100|2] data=ab"])
        }
        #expect(parse("cas k 0 0 2 42\r\nab\r\n") == ["REQ cas [cas|k|0|0|2|42] data=ab"])
        // non-storage commands never wait for data
        #expect(parse("incr k 5\r\ndelete k\r\n") == ["REQ incr [incr|k|5]", "REQ delete [delete|k]"])
    }

    @Test("keys with an ESC hash-name suffix are accepted; the 250-byte limit applies before ESC")
    func hashSuffix() {
        let key = String(repeating: "a", count: 250) + "\u{1B}myhash"
        #expect(parse("set \(key) 0 0 1\r\nx\r\n") == ["REQ set [set|\(String(repeating: "a", count: 250))\\x1Bmyhash|0|0|1] data=x"])
        #expect(parse("set k\u{1B}roma 0 0 1\r\nx\r\n") == ["REQ set [set|k\\x1Broma|0|0|1] data=x"])
    }

    @Test("pipelined commands in one buffer come out in order")
    func pipelined() {
        let input = "set a 0 0 1\r\nx\r\nget a\r\nadd b 0 0 3\r\nyyy\r\ndelete a\r\ngets a b\nincr n 1\r\n"
        let expected = [
            "REQ set [set|a|0|0|1] data=x", "REQ get [get|a]", "REQ add [add|b|0|0|3] data=yyy",
            "REQ delete [delete|a]", "REQ gets [gets|a|b]", "REQ incr [incr|n|1]",
        ]
        #expect(parse(input) == expected)
        #expect(parseBytewise(bytes(input)) == expected)
        // the same after the buffer is compacted between reads
        var p = RequestParser()
        var buf = ByteBuffer()
        var rng = RNG(state: 3)
        #expect(feed(bytes(input), chunks: randomSplits(input.utf8.count, using: &rng), parser: &p, buffer: &buf, compact: true) == expected)
    }

    @Test("noreply is detected as the token after the last required one")
    func noreply() {
        #expect(parse("set k 0 0 2 noreply\r\nhi\r\n") == ["REQ set [set|k|0|0|2|noreply] data=hi noreply"])
        #expect(parse("append k 0 0 2 noreply\r\nhi\r\n") == ["REQ append [append|k|0|0|2|noreply] data=hi noreply"])
        #expect(parse("cas k 0 0 2 7 noreply\r\nhi\r\n") == ["REQ cas [cas|k|0|0|2|7|noreply] data=hi noreply"])
        #expect(parse("set k 0 0 2\r\nhi\r\n") == ["REQ set [set|k|0|0|2] data=hi"])
        #expect(parse("cas k 0 0 2 7\r\nhi\r\n") == ["REQ cas [cas|k|0|0|2|7] data=hi"])
    }

    // MARK: errors that keep the stream in sync

    @Test("wrong token count with a readable byte count: error, data block skipped, next command parses")
    func wrongTokenCount() {
        let wrong = "ERR CLIENT_ERROR Wrong number of arguments."
        #expect(parse("set k 0 0 5 extra more\r\nhello\r\nget k\r\n") == [wrong, "REQ get [get|k]"])
        #expect(parse("set k 0 0 5 a b c\r\nhello\r\nget k\r\n") == [wrong, "REQ get [get|k]"])
        #expect(parse("cas k 0 0 5\r\nhello\r\nget k\r\n") == [wrong, "REQ get [get|k]"])
        #expect(parse("cas k 0 0 5 1 2 3\r\nhello\r\nget k\r\n") == [wrong, "REQ get [get|k]"])
        // data containing what looks like commands is skipped as well
        #expect(parse("set k 0 0 8 x y\r\nget y\r\nz\r\nget k\r\n") == [wrong, "REQ get [get|k]"])
        #expect(parseBytewise(bytes("set k 0 0 5 extra more\r\nhello\r\nget k\r\n")) == [wrong, "REQ get [get|k]"])
    }

    @Test("too few tokens: error, no byte count to skip by, so the next line is read as a command (R3.9)")
    func tooFewTokens() {
        #expect(parse("set k 0 5\r\nget k\r\n") == ["ERR CLIENT_ERROR Wrong number of arguments.", "REQ get [get|k]"])
        #expect(parse("set\r\n") == ["ERR CLIENT_ERROR Wrong number of arguments."])
        #expect(parse("cas k\r\n") == ["ERR CLIENT_ERROR Wrong number of arguments."])
    }

    @Test("negative byte count: Wrong value size, nothing skipped")
    func negativeBytes() {
        #expect(parse("set k 0 0 -1\r\nget k\r\n") == ["ERR CLIENT_ERROR Wrong value size.", "REQ get [get|k]"])
        #expect(parse("append k 0 0 -20\r\nget k\r\n") == ["ERR CLIENT_ERROR Wrong value size.", "REQ get [get|k]"])
    }

    @Test("non-numeric byte count: bad command line format, nothing skipped",
          arguments: ["abc", "5x", "-", "--1", "+5", "1.0", "0x10", "99999999999999999999999"])
    func nonNumericBytes(count: String) {
        #expect(parse("set k 0 0 \(count)\r\nget k\r\n") == ["ERR CLIENT_ERROR bad command line format", "REQ get [get|k]"])
    }

    @Test("value larger than maxValueSize: CLIENT_ERROR, block swallowed without buffering")
    func tooLarge() {
        let l = limits(maxValue: 100)
        var p = RequestParser(limits: l)
        var buf = ByteBuffer()
        let first = feed(bytes("set k 0 0 5000\r\n"), parser: &p, buffer: &buf)
        #expect(first.count == 1)
        #expect(first.first?.hasPrefix("ERR CLIENT_ERROR") == true)
        #expect(p.isAwaitingData)
        // 5000 bytes of data that look like commands, then CR LF, in 64-byte chunks
        var data: [UInt8] = []
        while data.count < 5000 { data += bytes("get x\r\nset y 0 0 1\r\n") }
        data = Array(data.prefix(5000)) + bytes("\r\n")
        var pos = 0
        var maxBuffered = 0
        while pos < data.count {
            let n = min(64, data.count - pos)
            #expect(feed(Array(data[pos..<(pos + n)]), parser: &p, buffer: &buf) == [])
            maxBuffered = max(maxBuffered, buf.readableBytes)
            pos += n
        }
        #expect(maxBuffered == 0)
        #expect(!p.isAwaitingData)
        #expect(feed(bytes("get k\r\n"), parser: &p, buffer: &buf) == ["REQ get [get|k]"])
        // at the limit is fine
        let at = String(repeating: "v", count: 100)
        #expect(parse("set k 0 0 100\r\n\(at)\r\n", limits: l) == ["REQ set [set|k|0|0|100] data=\(at)"])
        // noreply: nothing is said, the block is still skipped
        #expect(parse("set k 0 0 101 noreply\r\n\(at)x\r\nget k\r\n", limits: l) == ["REQ get [get|k]"])
    }

    @Test("bad keys: CLIENT_ERROR and the data block swallowed")
    func badKeys() {
        let k250 = String(repeating: "k", count: 250)
        let k251 = String(repeating: "k", count: 251)
        #expect(parse("set \(k250) 0 0 1\r\nx\r\n") == ["REQ set [set|\(k250)|0|0|1] data=x"])
        for key in [k251, "a\u{01}b", "a\tb", "a\u{7F}", "\u{00}", "k\rx", "\u{1B}hash"] {
            let out = parse(bytes("set \(key) 0 0 5\r\nhello\r\nget k\r\n"))
            #expect(out.count == 2, "\(show(bytes(key)))")
            #expect(out.first?.hasPrefix("ERR CLIENT_ERROR") == true, "\(show(bytes(key)))")
            #expect(out.last == "REQ get [get|k]", "\(show(bytes(key)))")
        }
        // noreply: silent, still swallowed
        #expect(parse("set \(k251) 0 0 5 noreply\r\nhello\r\nget k\r\n") == ["REQ get [get|k]"])
        // keyProblem API
        var limits = ProtocolLimits()
        limits.maxKeyLength = 3
        #expect(bytes("abc").withUnsafeBytes { RequestParser.keyProblem($0, limits: limits) } == nil)
        #expect(bytes("abcd").withUnsafeBytes { RequestParser.keyProblem($0, limits: limits) } != nil)
        #expect(bytes("abc\u{1B}longhashname").withUnsafeBytes { RequestParser.keyProblem($0, limits: limits) } == nil)
    }

    @Test("data longer than declared: bad data chunk, no request, next command after the next LF parses")
    func badDataChunk() {
        let input = "set k 0 0 3\r\nhello\r\nget k\r\n"
        let expected = ["ERR CLIENT_ERROR bad data chunk", "REQ get [get|k]"]
        #expect(parse(input) == expected)
        #expect(parseBytewise(bytes(input)) == expected)
        #expect(parse("set k 0 0 0\r\nxx\r\nget k\r\n") == expected)
        // noreply: silent
        #expect(parse("set k 0 0 3 noreply\r\nhello\r\nget k\r\n") == ["REQ get [get|k]"])
        // a long excess is discarded up to its LF even if it arrives piecewise
        let long = "set k 0 0 1\r\n" + String(repeating: "z", count: 3000) + "\r\nget k\r\n"
        #expect(parse(bytes(long), chunks: Array(repeating: 100, count: 40)) == expected)
    }

    @Test("a line longer than maxLineLength: CLIENT_ERROR line too long, then discard until LF")
    func lineTooLong() {
        let l = limits(maxLine: 64)
        var p = RequestParser(limits: l)
        var buf = ByteBuffer()
        #expect(feed(Array(repeating: UInt8(ascii: "x"), count: 60), parser: &p, buffer: &buf) == [])
        #expect(feed(Array(repeating: UInt8(ascii: "x"), count: 40), parser: &p, buffer: &buf) == ["ERR CLIENT_ERROR line too long"])
        #expect(buf.readableBytes == 0)
        for _ in 0..<10 {
            #expect(feed(Array(repeating: UInt8(ascii: "y"), count: 100), parser: &p, buffer: &buf) == [])
            #expect(buf.readableBytes == 0)
        }
        #expect(feed(bytes("yyy\r\nget k\r\n"), parser: &p, buffer: &buf) == ["REQ get [get|k]"])

        // a too-long line that arrives complete
        let long = "get " + String(repeating: "k", count: 100) + "\r\nget k\r\n"
        #expect(parse(long, limits: l) == ["ERR CLIENT_ERROR line too long", "REQ get [get|k]"])
        #expect(parseBytewise(bytes(long), limits: l) == ["ERR CLIENT_ERROR line too long", "REQ get [get|k]"])
        // exactly at the limit is accepted
        let exact = "get " + String(repeating: "k", count: 60)
        #expect(parse(exact + "\n", limits: l) == ["REQ get [get|\(String(repeating: "k", count: 60))]"])
        #expect(parseBytewise(bytes(exact + "\n"), limits: l).count == 1)
    }

    @Test("a storage line with bad arguments inside a pipeline does not desynchronise it")
    func mixedPipeline() {
        let input = "set a 0 0 1 x y\r\nA\r\nset b 0 0 -1\r\nset c 0 0 2\r\nCC\r\nset d 0 0 1\r\nDDDD\r\nget a b c d\r\n"
        let expected = [
            "ERR CLIENT_ERROR Wrong number of arguments.",
            "ERR CLIENT_ERROR Wrong value size.",
            "REQ set [set|c|0|0|2] data=CC",
            "ERR CLIENT_ERROR bad data chunk",
            "REQ get [get|a|b|c|d]",
        ]
        #expect(parse(input) == expected)
        #expect(parseBytewise(bytes(input)) == expected)
    }

    // MARK: truncation and fuzzing

    @Test("truncated inputs produce no event until complete")
    func truncation() {
        let commands = [
            "get k\r\n", "gets a b\n", "set k 0 0 5\r\nhello\r\n", "cas k 0 0 3 9\r\nabc\r\n",
            "set k 0 0 0\r\n\r\n", "delete k\r\n", "set k 0 0 5 noreply\r\nhello\r\n",
        ]
        for c in commands {
            let b = bytes(c)
            for n in 0..<b.count {
                #expect(parse(Array(b.prefix(n))) == [], "prefix \(n) of \(show(b))")
            }
            #expect(parse(b).count == 1, "\(show(b))")
        }
        // a refused storage line answers at its LF, and nothing more comes until the skipped block ends
        let refused = bytes("set k 0 0 5 extra more\r\nhello\r\nget k\r\n")
        let lineEnd = "set k 0 0 5 extra more\r\n".utf8.count
        for n in 0..<refused.count {
            let expected: [String] = n < lineEnd ? [] : ["ERR CLIENT_ERROR Wrong number of arguments."]
            #expect(parse(Array(refused.prefix(n))) == expected, "prefix \(n)")
        }
        #expect(parse(refused).count == 2)
    }

    @Test("random garbage never crashes and never loses sync for a valid command after a LF")
    func garbage() {
        var rng = RNG(state: 0xC0FFEE)
        let special: [UInt8] = [0x00, 0xFF, 0x0D, 0x0A, 0x20, 0x1B, 0x7F]
        for iteration in 0..<3000 {
            let n = Int.random(in: 0...300, using: &rng)
            let junk = (0..<n).map { _ -> UInt8 in
                Bool.random(using: &rng) ? special.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let input = junk + bytes("\r\nget sentinel\r\n")
            var p = RequestParser()
            var buf = ByteBuffer()
            let events = feed(input, chunks: randomSplits(input.count, using: &rng), parser: &p, buffer: &buf,
                              compact: Bool.random(using: &rng))
            #expect(events.last == "REQ get [get|sentinel]", "iteration \(iteration): \(show(junk))")
            #expect(!p.isAwaitingData)
            #expect(buf.readableBytes == 0)
        }
    }

    @Test("garbage with small limits, too-long lines and swallowed blocks never crashes")
    func garbageSmallLimits() {
        var rng = RNG(state: 77)
        let l = limits(maxValue: 16, maxLine: 32, maxKey: 8)
        let pieces: [[UInt8]] = [
            bytes("set "), bytes("cas "), bytes("get "), bytes("k "), bytes("0 "), bytes("5 "), bytes("-1 "),
            bytes("20 "), bytes("noreply"), bytes("\r\n"), bytes("\n"), bytes("hello"), [0x00], [0xFF], [0x1B],
            bytes("  "), Array(repeating: UInt8(ascii: "x"), count: 40),
        ]
        for _ in 0..<2000 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 0...20, using: &rng) { input += pieces.randomElement(using: &rng)! }
            var p = RequestParser(limits: l)
            var buf = ByteBuffer()
            _ = feed(input, chunks: randomSplits(input.count, using: &rng), limits: l, parser: &p, buffer: &buf)
            // resynchronise: end any data block or swallow, then any pending or discarded line
            for _ in 0..<4 {
                switch p.state {
                case .data, .swallow:
                    _ = feed(Array(repeating: UInt8(ascii: "."), count: 40) + bytes("\r\n"), parser: &p, buffer: &buf)
                case .discardLine:
                    _ = feed(bytes("\r\n"), parser: &p, buffer: &buf)
                case .line:
                    if buf.readableBytes > 0 { _ = feed(bytes("\r\n"), parser: &p, buffer: &buf) }
                }
            }
            let tail = bytes("get sentinel\r\n")
            let events = feed(tail, parser: &p, buffer: &buf)
            #expect(events.last == "REQ get [get|sentinel]", "\(show(input))")
        }
    }

    @Test("events do not depend on how the input is split")
    func splitInvariance() {
        var rng = RNG(state: 12345)
        let l = limits(maxValue: 64, maxLine: 48, maxKey: 16)
        let pieces: [[UInt8]] = [
            bytes("set k 0 0 3\r\nabc\r\n"), bytes("set k 0 0 3\r\nabcdef\r\n"), bytes("get a b\r\n"),
            bytes("cas k 0 0 2 5\r\nzz\r\n"), bytes("set k 0 0 2 x\r\nzz\r\n"), bytes("set k 0 0 -4\r\n"),
            bytes("set k 0 0 100\r\n"), Array(repeating: UInt8(ascii: "q"), count: 104), bytes("\r\n"),
            bytes("set " + String(repeating: "K", count: 20) + " 0 0 1\r\nx\r\n"), bytes("\n"),
            Array(repeating: UInt8(ascii: "L"), count: 70), bytes("set k 0 0 2 noreply\r\nab\r\n"),
            [0x00, 0xFF, 0x0D], bytes("incr k 1\r\n"),
        ]
        for _ in 0..<1500 {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 1...12, using: &rng) { input += pieces.randomElement(using: &rng)! }
            let whole = parse(input, limits: l)
            #expect(parseBytewise(input, limits: l) == whole, "\(show(input))")
            #expect(parse(input, chunks: randomSplits(input.count, using: &rng), limits: l) == whole, "\(show(input))")
        }
    }

    // MARK: raw lines

    @Test("nextRawLine reads one line for prompts")
    func rawLine() {
        var p = RequestParser()
        var buf = ByteBuffer()
        buf.writeString("ye")
        #expect(p.nextRawLine(&buf) == nil)
        buf.writeString("s\r\nget k\r\n")
        let line = p.nextRawLine(&buf)
        #expect(line.map { String(buffer: $0) } == "yes")
        #expect(p.next(&buf).map(describe) == "REQ get [get|k]")
        buf.writeString("no\n")
        #expect(p.nextRawLine(&buf).map { String(buffer: $0) } == "no")
    }

    @Test("requests stay valid after the receive buffer is compacted and refilled")
    func requestsOutliveBuffer() {
        var p = RequestParser()
        var buf = ByteBuffer()
        buf.writeString("set key 0 0 5\r\nvalue\r\nget other\r\n")
        var held: [Request] = []
        while let e = p.next(&buf) {
            if case .request(let r) = e { held.append(r) }
        }
        buf.discardReadBytes()
        for i in 0..<2000 { buf.writeString("overwrite \(i) ") }
        buf.clear()
        buf.writeString(String(repeating: "Z", count: 10_000))
        #expect(held.count == 2)
        #expect(held[0].tokenString(1) == "key")
        #expect(held[0].data.map { String(buffer: $0) } == "value")
        #expect(held[0].lineString == "set key 0 0 5")
        #expect(held[1].tokenString(1) == "other")
    }

    @Test("Request accessors")
    func requestAccessors() throws {
        var p = RequestParser()
        var buf = ByteBuffer(string: "set key 7 0 3 noreply\r\nabc\r\n")
        guard case .request(let r) = p.next(&buf) else {
            Issue.record("no request")
            return
        }
        #expect(r.count == 6)
        #expect(r.command == .set)
        #expect(r.tokenString(1) == "key")
        #expect(r.tokenBytes(2) == bytes("7"))
        #expect(String(buffer: r.tokenSlice(1)) == "key")
        #expect(r.token(5, is: "noreply"))
        #expect(!r.token(5, is: "noreplyx"))
        #expect(!r.token(6, is: "noreply"))
        #expect(r.lineString == "set key 7 0 3 noreply")
        #expect(r.data.map { String(buffer: $0) } == "abc")
    }
}


@Suite struct ParserHugeDeclarationTests {
    @Test func absurdByteCountClosesInsteadOfSwallowingForever() {
        var parser = RequestParser()
        var buf = ByteBuffer(string: "set k 0 0 999999999999 extra\r\nget k\r\n")
        guard case .fatal(let line)? = parser.next(&buf) else {
            Issue.record("expected a fatal error")
            return
        }
        #expect(line.hasPrefix("CLIENT_ERROR object too large for cache"))
    }
}

@Suite struct CommandMatchTests {
    @Test func matchesCaseInsensitivelyAndExactlyByLength() {
        func m(_ s: [UInt8]) -> Command? { s.withUnsafeBytes { Command.match($0) } }
        #expect(m(Array("GET".utf8)) == .get)
        #expect(m(Array("get".utf8) + [0]) == nil)
        #expect(m([0] + Array("get".utf8)) == nil)
        #expect(m(Array("set_storage_status".utf8)) == .setStorageStatus)
        #expect(m(Array("SET_STORAGE_STATUS".utf8)) == .setStorageStatus)
        #expect(m(Array("set_storage_statu".utf8)) == nil)
        #expect(m(Array("flush_all".utf8)) == .flushAll)
        #expect(m([]) == nil)
        for c in Command.allCases { #expect(m(Array(c.name.utf8)) == c) }
    }
}

@Suite("!! repeats the previous known command (R3.4)")
struct RepeatTests {
    @Test func nothingBeforeAnswersNothing() {
        #expect(parse("!!\r\n!! a b\r\n") == [])
    }

    @Test func repeatsTheLastKnownCommandWithItsTokens() {
        #expect(parse("get a b\r\n!!\r\n") == ["REQ get [get|a|b]", "REQ get [get|a|b]"])
        #expect(parse("version\r\nfoo x\r\n!!\r\n") == ["REQ version [version]", "REQ ? [foo|x]", "REQ version [version]"])
        #expect(parse("whoami\r\n!!\r\n!!\r\n") == ["REQ whoami [whoami]", "REQ whoami [whoami]", "REQ whoami [whoami]"])
    }

    @Test func storageCommandReadsANewDataBlock() {
        let input = bytes("set k 0 0 3\r\nabc\r\n!!\r\nxyz\r\nget k\r\n")
        let expected = ["REQ set [set|k|0|0|3] data=abc", "REQ set [set|k|0|0|3] data=xyz", "REQ get [get|k]"]
        #expect(parse(input) == expected)
        #expect(parseBytewise(input) == expected)
    }

    @Test func onlyExactlyTwoBangs() {
        #expect(parse("version\r\n!!!\r\n") == ["REQ version [version]", "REQ ? [!!!]"])
    }
}

@Suite struct StorageExtraTokenTests {
    @Test func oneExtraTokenIsIgnoredLikeMemcached() {
        #expect(parse("set k 0 0 1 foo\r\na\r\n") == ["REQ set [set|k|0|0|1|foo] data=a"])
        #expect(parse("cas k 0 0 1 5 foo\r\na\r\n") == ["REQ cas [cas|k|0|0|1|5|foo] data=a"])
        #expect(parse("set k 0 0 1 foo bar\r\na\r\nversion\r\n") == ["ERR CLIENT_ERROR Wrong number of arguments.", "REQ version [version]"])
    }

    @Test func noreplySilencesABadByteCount() {
        #expect(parse("set k 0 0 x noreply\r\nversion\r\n") == ["REQ version [version]"])
    }
}

@Suite("peer commands with data blocks (R5.1, R5.2)")
struct PeerCommandParseTests {
    @Test func rsetReadsTheByteCountFromTokenFive() {
        #expect(parse("rset k\u{1B}roma 123 4 2147483647 5\r\nhello\r\nget k\r\n")
            == ["REQ rset [rset|k\\x1Broma|123|4|2147483647|5] data=hello", "REQ get [get|k]"])
        #expect(parse("rzset k\u{1B}roma 0 1 0 3\r\nabc\r\n") == ["REQ rzset [rzset|k\\x1Broma|0|1|0|3] data=abc"])
    }

    @Test func forwardedStorageCommandsUseTheSetLayout() {
        #expect(parse("fset k 3847252694 0 5\r\nworld\r\n") == ["REQ fset [fset|k|3847252694|0|5] data=world"])
        #expect(parse("fcas k\u{1B}roma 1 0 2 7\r\nxy\r\n") == ["REQ fcas [fcas|k\\x1Broma|1|0|2|7] data=xy"])
    }

    @Test func rsetWithoutByteCountIsAnError() {
        #expect(parse("rset k 1 2 3\r\nversion\r\n") == ["ERR CLIENT_ERROR Wrong number of arguments.", "REQ version [version]"])
    }
}
