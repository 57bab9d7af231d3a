import NIOCore
import Testing
@testable import ROMAProtocol

private func text(_ build: (inout ByteBuffer) -> Void) -> String {
    var buf = ByteBuffer()
    build(&buf)
    return String(buffer: buf)
}

private func raw(_ build: (inout ByteBuffer) -> Void) -> [UInt8] {
    var buf = ByteBuffer()
    build(&buf)
    return Array(buf.readableBytesView)
}

@Suite("Reply encoding (R3.1, R3.9)")
struct ReplyTests {
    @Test("fixed replies are exact and end with CR LF")
    func fixed() {
        let table: [(StaticString, String)] = [
            (Reply.stored, "STORED\r\n"), (Reply.notStored, "NOT_STORED\r\n"), (Reply.exists, "EXISTS\r\n"),
            (Reply.notFound, "NOT_FOUND\r\n"), (Reply.deleted, "DELETED\r\n"), (Reply.touched, "TOUCHED\r\n"),
            (Reply.end, "END\r\n"), (Reply.ok, "OK\r\n"), (Reply.error, "ERROR\r\n"), (Reply.pushed, "PUSHED\r\n"),
            (Reply.bye, "BYE\r\n"), (Reply.wrongArguments, "CLIENT_ERROR Wrong number of arguments.\r\n"),
        ]
        for (reply, expected) in table {
            #expect(text { $0.writeStaticString(reply) } == expected)
        }
    }

    @Test("writeLine appends CR LF")
    func writeLine() {
        #expect(text { $0.writeLine("VERSION ROMA-1.3.0" as String) } == "VERSION ROMA-1.3.0\r\n")
        #expect(text { $0.writeLine("" as String) } == "\r\n")
        let s: StaticString = "END"
        #expect(text { $0.writeLine(s) } == "END\r\n")
        #expect(text { $0.writeLine("a" as String); $0.writeLine("b" as String) } == "a\r\nb\r\n")
    }

    @Test("writeDecimal", arguments: [
        (UInt64(0), "0"), (1, "1"), (9, "9"), (10, "10"), (42, "42"), (1_000_000, "1000000"),
        (4_294_967_295, "4294967295"), (2_147_483_647, "2147483647"),
        (UInt64.max, "18446744073709551615"), (10_000_000_000_000_000_000, "10000000000000000000"),
    ])
    func writeDecimal(value: UInt64, expected: String) {
        #expect(text { $0.writeDecimal(value) } == expected)
        #expect(text { $0.writeDecimal(value); $0.writeDecimal(value) } == expected + expected)
    }

    @Test("writeDecimal with other integer types")
    func writeDecimalTypes() {
        #expect(text { $0.writeDecimal(UInt32.max) } == "4294967295")
        #expect(text { $0.writeDecimal(Int(123)) } == "123")
        #expect(text { $0.writeDecimal(UInt8(7)) } == "7")
        #expect(text { $0.writeDecimal(Int64.max) } == "9223372036854775807")
    }

    @Test("writeDecimal matches String(describing:) for random values")
    func writeDecimalRandom() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let v = UInt64.random(in: 0 ... .max, using: &g) >> UInt64.random(in: 0...63, using: &g)
            #expect(text { $0.writeDecimal(v) } == String(v))
        }
    }

    @Test("VALUE line for get (no cas) and gets (with cas); flags 0; data may be binary or empty")
    func value() {
        let key = Array("foo".utf8)
        let data: [UInt8] = Array("bar".utf8)
        let get = raw { buf in key.withUnsafeBytes { k in data.withUnsafeBytes { d in buf.writeValue(key: k, data: d, cas: nil) } } }
        #expect(get == Array("VALUE foo 0 3\r\nbar\r\n".utf8))
        let gets = raw { buf in key.withUnsafeBytes { k in data.withUnsafeBytes { d in buf.writeValue(key: k, data: d, cas: 4_294_967_295) } } }
        #expect(gets == Array("VALUE foo 0 3 4294967295\r\nbar\r\n".utf8))
        let zeroCas = raw { buf in key.withUnsafeBytes { k in data.withUnsafeBytes { d in buf.writeValue(key: k, data: d, cas: 0) } } }
        #expect(zeroCas == Array("VALUE foo 0 3 0\r\nbar\r\n".utf8))
        let empty = raw { buf in key.withUnsafeBytes { k in buf.writeValue(key: k, data: UnsafeRawBufferPointer(start: nil, count: 0), cas: nil) } }
        #expect(empty == Array("VALUE foo 0 0\r\n\r\n".utf8))
        let bin: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF]
        let binary = raw { buf in key.withUnsafeBytes { k in bin.withUnsafeBytes { d in buf.writeValue(key: k, data: d, cas: nil) } } }
        #expect(binary == Array("VALUE foo 0 4\r\n".utf8) + bin + [0x0D, 0x0A])
        // key token as sent (with ESC + hash name) is written verbatim
        let hk = Array("k\u{1B}roma".utf8)
        let hashed = raw { buf in hk.withUnsafeBytes { k in data.withUnsafeBytes { d in buf.writeValue(key: k, data: d, cas: nil) } } }
        #expect(hashed == Array("VALUE k\u{1B}roma 0 3\r\nbar\r\n".utf8))
        let flagged = raw { buf in key.withUnsafeBytes { k in data.withUnsafeBytes { d in buf.writeValue(key: k, flags: 12, data: d, cas: nil) } } }
        #expect(flagged == Array("VALUE foo 12 3\r\nbar\r\n".utf8))
    }

    @Test("a full get reply")
    func fullGetReply() {
        let key = Array("k".utf8)
        let data = Array("v".utf8)
        let reply = text { buf in
            key.withUnsafeBytes { k in data.withUnsafeBytes { d in buf.writeValue(key: k, data: d, cas: nil) } }
            buf.writeStaticString(Reply.end)
        }
        #expect(reply == "VALUE k 0 1\r\nv\r\nEND\r\n")
    }
}

@Suite("replies from other nodes (PeerReplyDecoder)")
struct PeerReplyDecoderTests {
    private func buf(_ s: String) -> ByteBuffer { var b = ByteBufferAllocator().buffer(capacity: s.utf8.count); b.writeString(s); return b }

    @Test func lineNeedsItsNewline() throws {
        var b = buf("STOR")
        #expect(try PeerReplyDecoder.decode(.line, &b) == nil)
        b.writeString("ED\r\nDELETED\r\n")
        #expect(try PeerReplyDecoder.decode(.line, &b)?.lineString == "STORED")
        #expect(try PeerReplyDecoder.decode(.line, &b)?.lineString == "DELETED")
        #expect(b.readableBytes == 0)
    }

    @Test func valuesWithEmbeddedCRLFAndSplitInput() throws {
        let whole = "VALUE a 0 4 7\r\nx\r\ny\r\nVALUE b 0 0 1\r\n\r\nEND\r\n"
        for cut in 0..<whole.utf8.count {
            var b = buf(String(decoding: Array(whole.utf8.prefix(cut)), as: UTF8.self))
            #expect(try PeerReplyDecoder.decode(.values, &b) == nil, "cut \(cut)")
        }
        var b = buf(whole + "STORED\r\n")
        guard case .values(let v, let raw)? = try PeerReplyDecoder.decode(.values, &b) else { Issue.record("no values"); return }
        #expect(v.count == 2)
        #expect(v[0].key == Array("a".utf8) && v[0].cas == Array("7".utf8) && Array(v[0].data.readableBytesView) == Array("x\r\ny".utf8))
        #expect(v[1].data.readableBytes == 0)
        #expect(String(buffer: raw) == whole)
        #expect(try PeerReplyDecoder.decode(.line, &b)?.lineString == "STORED")
    }

    @Test func anErrorLineInsteadOfValues() throws {
        var b = buf("SERVER_ERROR Routing table is inconsistent.\r\n")
        #expect(try PeerReplyDecoder.decode(.values, &b)?.lineString == "SERVER_ERROR Routing table is inconsistent.")
    }

    @Test func sizedAndLines() throws {
        var b = buf("3\r\nRT\n\r\nEND\r\n1796519171\r\nEND\r\n")
        guard case .sized(let p)? = try PeerReplyDecoder.decode(.sized, &b) else { Issue.record("no payload"); return }
        #expect(Array(p.readableBytesView) == Array("RT\n".utf8))
        guard case .lines(let l)? = try PeerReplyDecoder.decode(.lines, &b) else { Issue.record("no lines"); return }
        #expect(l.map { String(buffer: $0) } == ["1796519171"])
    }

    @Test func garbageInAValueReplyThrows() {
        var b = buf("VALUE a 0 1\r\nx\r\nSTORED\r\n")
        #expect(throws: PeerProtocolError.self) { try PeerReplyDecoder.decode(.values, &b) }
    }
}
