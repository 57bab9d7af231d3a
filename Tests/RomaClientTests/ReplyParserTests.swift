import NIOCore
import Testing
@testable import RomaClient

/// Feeds `chunks` one at a time, as separate packets, and returns every reply completed.
private func parseChunks(_ chunks: [[UInt8]], shapes: [ReplyShape]) throws -> [RomaReply] {
    var parser = ReplyParser()
    var buffer = ByteBuffer()
    var replies: [RomaReply] = []
    var shapeIndex = 0
    for chunk in chunks {
        buffer.writeBytes(chunk)
        while shapeIndex < shapes.count, let r = try parser.parse(&buffer, expecting: shapes[shapeIndex]) {
            replies.append(r)
            shapeIndex += 1
        }
    }
    return replies
}

/// Splits `bytes` into pieces of at most `size` bytes.
private func split(_ bytes: [UInt8], every size: Int) -> [[UInt8]] {
    stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0 ..< min($0 + size, bytes.count)]) }
}

@Suite struct ReplyParserTests {
    @Test func singleLines() throws {
        let replies = try parseChunks([Array("STORED\r\nNOT_FOUND\r\n42\r\n".utf8)], shapes: [.line, .line, .line])
        #expect(replies == [.line("STORED"), .line("NOT_FOUND"), .line("42")])
    }

    @Test func lineWithoutCR() throws {
        #expect(try parseChunks([Array("DELETED\n".utf8)], shapes: [.line]) == [.line("DELETED")])
    }

    @Test func emptyLineIsAReply() throws {
        // `mklhash <unknown id>` answers an empty line.
        #expect(try parseChunks([Array("\r\n".utf8)], shapes: [.line]) == [.line("")])
    }

    @Test func lineSplitAtEveryByte() throws {
        let bytes = Array("SERVER_ERROR Message forward failed.\r\nSTORED\r\n".utf8)
        let replies = try parseChunks(split(bytes, every: 1), shapes: [.line, .line])
        #expect(replies == [.line("SERVER_ERROR Message forward failed."), .line("STORED")])
    }

    @Test func incompleteLineWaits() throws {
        var parser = ReplyParser()
        var buffer = ByteBuffer(string: "STOR")
        #expect(try parser.parse(&buffer, expecting: .line) == nil)
        buffer.writeString("ED\r")
        #expect(try parser.parse(&buffer, expecting: .line) == nil)
        buffer.writeString("\n")
        #expect(try parser.parse(&buffer, expecting: .line) == .line("STORED"))
        #expect(buffer.readableBytes == 0)
        #expect(parser.isIdle)
    }

    @Test func getMissIsEmptyValues() throws {
        #expect(try parseChunks([Array("END\r\n".utf8)], shapes: [.values]) == [.values([])])
    }

    @Test func valueBlockContainingCRLF() throws {
        // The data holds "\r\nEND\r\n": only the byte count tells where it ends.
        let data: [UInt8] = Array("a\r\nEND\r\nb".utf8)
        let bytes = Array("VALUE k\u{1B}roma 0 \(data.count)\r\n".utf8) + data + Array("\r\nEND\r\n".utf8)
        for size in [1, 2, 3, 7, bytes.count] {
            let replies = try parseChunks(split(bytes, every: size), shapes: [.values])
            #expect(replies == [.values([RomaValue(key: "k\u{1B}roma", value: data)])], "chunk size \(size)")
        }
    }

    @Test func getsValuesWithCas() throws {
        let bytes = Array("VALUE a 0 1 7\r\nx\r\nVALUE b 0 0 9\r\n\r\nEND\r\n".utf8)
        for size in [1, 5, bytes.count] {
            let replies = try parseChunks(split(bytes, every: size), shapes: [.values])
            #expect(replies == [.values([RomaValue(key: "a", value: [UInt8(ascii: "x")], cas: 7),
                                         RomaValue(key: "b", value: [], cas: 9)])])
        }
    }

    @Test func binaryValueWithAllByteValues() throws {
        let data = (0..<256).map { UInt8($0) } + [13, 10, 13, 10]
        let bytes = Array("VALUE bin 0 \(data.count)\r\n".utf8) + data + Array("\r\nEND\r\n".utf8)
        let replies = try parseChunks(split(bytes, every: 13), shapes: [.values])
        #expect(replies == [.values([RomaValue(key: "bin", value: data)])])
    }

    @Test func pipelinedRepliesOfDifferentShapes() throws {
        let bytes = Array("VALUE k 0 2\r\nhi\r\nEND\r\nSTORED\r\nEND\r\n3\r\nabc\r\nEND\r\nDELETED\r\n".utf8)
        for size in [1, 4, bytes.count] {
            let replies = try parseChunks(split(bytes, every: size), shapes: [.values, .line, .values, .sizedBlock, .line])
            #expect(replies == [.values([RomaValue(key: "k", value: Array("hi".utf8))]), .line("STORED"), .values([]),
                                .block(Array("abc".utf8)), .line("DELETED")])
        }
    }

    @Test func errorLineInPlaceOfValues() throws {
        let replies = try parseChunks([Array("SERVER_ERROR foo does not exists.\r\nCLIENT_ERROR Wrong number of arguments.\r\n".utf8)],
                                      shapes: [.values, .values])
        #expect(replies == [.line("SERVER_ERROR foo does not exists."), .line("CLIENT_ERROR Wrong number of arguments.")])
    }

    @Test func sizedBlock() throws {
        let body: [UInt8] = [0x52, 0x54, 0x0D, 0x0A, 0x00, 0x45, 0x4E, 0x44]  // contains CRLF and "END"
        let bytes = Array("\(body.count)\r\n".utf8) + body + Array("\r\nEND\r\n".utf8)
        for size in [1, 3, bytes.count] {
            #expect(try parseChunks(split(bytes, every: size), shapes: [.sizedBlock]) == [.block(body)])
        }
    }

    @Test func sizedBlockErrorLine() throws {
        #expect(try parseChunks([Array("CLIENT_ERROR bad\r\n".utf8)], shapes: [.sizedBlock]) == [.line("CLIENT_ERROR bad")])
    }

    @Test func malformedValueHeaderThrows() {
        var parser = ReplyParser()
        var buffer = ByteBuffer(string: "VALUE k zero 5\r\n")
        #expect(throws: RomaProtocolError.self) { try parser.parse(&buffer, expecting: .values) }
    }

    @Test func dataNotFollowedByCRLFThrows() {
        var parser = ReplyParser()
        var buffer = ByteBuffer(string: "VALUE k 0 2\r\nabcd\r\nEND\r\n")
        #expect(throws: RomaProtocolError.self) { try parser.parse(&buffer, expecting: .values) }
    }

    @Test func garbageAfterValuesThrows() {
        var parser = ReplyParser()
        var buffer = ByteBuffer(string: "VALUE k 0 1\r\na\r\nSTORED\r\n")
        #expect(throws: RomaProtocolError.self) { try parser.parse(&buffer, expecting: .values) }
    }

    @Test func missingENDAfterBlockThrows() {
        var parser = ReplyParser()
        var buffer = ByteBuffer(string: "1\r\nx\r\nSTORED\r\n")
        #expect(throws: RomaProtocolError.self) { try parser.parse(&buffer, expecting: .sizedBlock) }
    }

    @Test func overlongLineThrows() {
        var parser = ReplyParser()
        var buffer = ByteBuffer(repeating: UInt8(ascii: "a"), count: ReplyParser.maxLineLength + 1)
        #expect(throws: RomaProtocolError.self) { try parser.parse(&buffer, expecting: .line) }
    }
}
