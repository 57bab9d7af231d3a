import NIOCore
import Testing
@testable import ROMABench

@Suite("Reply parser")
struct ReplyParserTests {
    func parse(_ text: String) -> [ParsedReply] {
        var buffer = ByteBuffer(string: text)
        return ReplyParser.parseAll(&buffer)
    }

    func kinds(_ text: String) -> [ReplyKind] { parse(text).map(\.kind) }

    @Test func singleLineReplies() {
        #expect(kinds("STORED\r\n") == [.stored])
        #expect(kinds("NOT_STORED\r\n") == [.notStored])
        #expect(kinds("EXISTS\r\n") == [.exists])
        #expect(kinds("NOT_FOUND\r\n") == [.notFound])
        #expect(kinds("DELETED\r\n") == [.deleted])
        #expect(kinds("END\r\n") == [.end])
        #expect(kinds("ERROR\r\n") == [.error])
        #expect(kinds("CLIENT_ERROR bad data chunk\r\n") == [.clientError])
        #expect(kinds("SERVER_ERROR out of memory storing object\r\n") == [.serverError])
        #expect(kinds("STOREDX\r\n") == [.unexpected])
        #expect(kinds("hello\r\n") == [.unexpected])
        #expect(parse("STORED\r\n")[0].length == 8)
    }

    @Test func romaErrorLine() {
        // ROMA answers some errors as "ERROR: <text>".
        #expect(kinds("ERROR: 'sett' is not roma command.\r\n") == [.error])
    }

    @Test func valueReply() {
        let r = parse("VALUE key:0000000001 0 5\r\nhello\r\nEND\r\n")
        #expect(r.count == 1)
        #expect(r[0].kind == .value)
        #expect(r[0].valueOffset == 26)
        #expect(r[0].valueLength == 5)
        #expect(r[0].length == 26 + 5 + 2 + 5)
    }

    @Test func valueWithCasAndEmptyValue() {
        #expect(kinds("VALUE k 3 5 77\r\nhello\r\nEND\r\n") == [.value])
        let empty = parse("VALUE k 0 0\r\n\r\nEND\r\n")
        #expect(empty.map(\.kind) == [.value])
        #expect(empty[0].valueLength == 0)
    }

    @Test func valueContainingCRLF() {
        // The data block is skipped by length, never scanned.
        let r = parse("VALUE k 0 8\r\nEND\r\n\r\nX\r\nEND\r\nSTORED\r\n")
        #expect(r.map(\.kind) == [.value, .stored])
        #expect(r[0].valueLength == 8)
    }

    @Test func malformedValue() {
        #expect(kinds("VALUE k 0\r\n") == [.unexpected])
        #expect(kinds("VALUE k 0 x\r\nhello\r\nEND\r\n") == [.unexpected])
        #expect(kinds("VALUE k 0 5\r\nhelloXXEND\r\n") == [.unexpected])
        #expect(kinds("VALUE k 0 5\r\nhello\r\nENX\r\n") == [.unexpected])
    }

    @Test func incompleteNeedsMore() {
        #expect(parse("").isEmpty)
        #expect(parse("STOR").isEmpty)
        #expect(parse("STORED\r").isEmpty)
        #expect(parse("VALUE k 0 5\r\nhel").isEmpty)
        #expect(parse("VALUE k 0 5\r\nhello\r\nEND\r").isEmpty)
        var buffer = ByteBuffer(string: "STORED\r\nEN")
        #expect(ReplyParser.parseAll(&buffer).map(\.kind) == [.stored])
        #expect(buffer.readableBytes == 2)  // "EN" stays for the next read
    }

    @Test func overlongLineIsAnError() {
        let line = String(repeating: "x", count: ReplyParser.maxLineLength + 10)
        #expect(kinds(line) == [.unexpected])
    }

    static let stream: String = {
        var s = ""
        for i in 0..<20 {
            switch i % 7 {
            case 0: s += "VALUE key:\(i) 0 10\r\n0123456789\r\nEND\r\n"
            case 1: s += "STORED\r\n"
            case 2: s += "END\r\n"
            case 3: s += "DELETED\r\n"
            case 4: s += "NOT_FOUND\r\n"
            case 5: s += "VALUE k 0 3 99\r\n\r\n\n\r\nEND\r\n"
            default: s += "SERVER_ERROR busy\r\n"
            }
        }
        return s
    }()

    /// Feeds `chunks` like consecutive socket reads, keeping the unconsumed tail as the handler does.
    func feed(_ chunks: [ArraySlice<UInt8>]) -> [ParsedReply] {
        var pending = ByteBuffer()
        var replies: [ParsedReply] = []
        for chunk in chunks {
            pending.writeBytes(chunk)
            replies += ReplyParser.parseAll(&pending)
        }
        #expect(pending.readableBytes == 0)
        return replies
    }

    @Test func everySplitPointGivesTheSameReplies() {
        let bytes = Array(Self.stream.utf8)
        let whole = feed([bytes[...]])
        #expect(whole.count == 20)
        for cut in 1..<bytes.count {
            #expect(feed([bytes[..<cut], bytes[cut...]]) == whole, "split at \(cut)")
        }
    }

    @Test func byteByByte() {
        let bytes = Array(Self.stream.utf8)
        let whole = feed([bytes[...]])
        #expect(feed(bytes.indices.map { bytes[$0...$0] }) == whole)
    }

    @Test func randomChunks() {
        let bytes = Array(Self.stream.utf8)
        let whole = feed([bytes[...]])
        var rng = FastRandom(seed: 99)
        for _ in 0..<200 {
            var chunks: [ArraySlice<UInt8>] = []
            var i = 0
            while i < bytes.count {
                let n = min(bytes.count - i, 1 + rng.next(below: 40))
                chunks.append(bytes[i..<(i + n)])
                i += n
            }
            #expect(feed(chunks) == whole)
        }
    }
}

@Suite("Request templates")
struct RequestTemplateTests {
    func encode(_ t: RequestTemplates, _ op: OpKind, _ key: Int) -> String {
        var b = ByteBuffer()
        t.write(op, key: key, into: &b)
        return b.readString(length: b.readableBytes) ?? ""
    }

    @Test func encodesRequests() {
        let t = RequestTemplates(keyPrefix: "key:", valueSize: 16)
        #expect(encode(t, .get, 42) == "get key:0000000042\r\n")
        #expect(encode(t, .delete, 7) == "delete key:0000000007\r\n")
        #expect(encode(t, .set, 1_234_567_890) == "set key:1234567890 0 0 16\r\n1234567890-abcde\r\n")
        #expect(t.key(5) == "key:0000000005")
        #expect(t.requestSize(.get) == 20)
    }

    @Test func shortAndEmptyValues() {
        let t = RequestTemplates(keyPrefix: "p", valueSize: 3)
        #expect(encode(t, .set, 12345) == "set p0000012345 0 0 3\r\n345\r\n")
        let z = RequestTemplates(keyPrefix: "", valueSize: 0)
        #expect(encode(z, .set, 9) == "set 0000000009 0 0 0\r\n\r\n")
    }

    @Test func consecutiveWritesAppend() {
        let t = RequestTemplates(keyPrefix: "k", valueSize: 10)
        var b = ByteBuffer()
        for k in 0..<1000 { t.write(.get, key: k, into: &b) }
        let text = b.readString(length: b.readableBytes) ?? ""
        #expect(text.hasPrefix("get k0000000000\r\nget k0000000001\r\n"))
        #expect(text.hasSuffix("get k0000000999\r\n"))
    }

    @Test func valueCheck() {
        let t = RequestTemplates(keyPrefix: "key:", valueSize: 100)
        let v = t.value(77)
        #expect(v.count == 100)
        #expect(v.withUnsafeBytes { t.valueMatches(key: 77, $0) })
        #expect(!v.withUnsafeBytes { t.valueMatches(key: 78, $0) })
        var changed = v
        changed[99] ^= 1
        #expect(!changed.withUnsafeBytes { t.valueMatches(key: 77, $0) })
        #expect(!Array(v.dropLast()).withUnsafeBytes { t.valueMatches(key: 77, $0) })
        // The value a set carries is the value the check expects.
        let set = encode(t, .set, 77)
        let body = Array(set.utf8.dropFirst(set.utf8.count - 102).dropLast(2))
        #expect(body == v)
    }
}
