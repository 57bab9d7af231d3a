import NIOCore

/// What the server answered to one request.
public enum ReplyKind: UInt8, Sendable, Equatable, CaseIterable {
    case stored
    case notStored
    case exists
    case notFound
    case deleted
    /// `END` alone: a get miss.
    case end
    /// `VALUE <key> <flags> <bytes>[ <cas>]`, the data block, `END`: a get hit.
    case value
    /// `ERROR` (ROMA also sends `ERROR: <text>`).
    case error
    case clientError
    case serverError
    /// Anything else: the reply stream can no longer be trusted.
    case unexpected
}

/// One complete reply at the front of a buffer.
public struct ParsedReply: Sendable, Equatable {
    public var kind: ReplyKind
    /// Bytes the reply occupies (to consume).
    public var length: Int
    /// For `.value`: where the data block starts, relative to the start of the reply, and its size.
    public var valueOffset: Int
    public var valueLength: Int

    public init(kind: ReplyKind, length: Int, valueOffset: Int = 0, valueLength: Int = 0) {
        self.kind = kind
        self.length = length
        self.valueOffset = valueOffset
        self.valueLength = valueLength
    }
}

/// Incremental parser for the memcached text protocol replies to single-key get, set and delete.
///
/// `parse` looks at raw bytes and returns the first complete reply, or nil when more bytes are
/// needed; it never allocates and never consumes partially: the caller keeps the unconsumed
/// tail and calls again once more bytes arrived. A header line is rescanned at most once per
/// read, the data block of a `VALUE` is never scanned.
public enum ReplyParser {
    /// A line longer than this without `\n` is a protocol error.
    public static let maxLineLength = 8192

    @inline(__always)
    public static func parse(_ raw: UnsafeRawBufferPointer, from start: Int = 0) -> ParsedReply? {
        let end = raw.count
        guard start < end else { return nil }
        // Find '\n'.
        var i = start
        let scanLimit = Swift.min(end, start + maxLineLength)
        while i < scanLimit && raw[i] != 0x0A { i += 1 }
        guard i < scanLimit else {
            if end - start >= maxLineLength { return ParsedReply(kind: .unexpected, length: end - start) }
            return nil
        }
        let lineLength = i + 1 - start  // including "\n"
        var contentEnd = i  // exclusive, without "\r\n"
        if contentEnd > start && raw[contentEnd - 1] == 0x0D { contentEnd -= 1 }
        let n = contentEnd - start

        @inline(__always) func isLine(_ literal: StaticString) -> Bool {
            guard n == literal.utf8CodeUnitCount else { return false }
            let p = literal.utf8Start
            for k in 0..<n where raw[start + k] != p[k] { return false }
            return true
        }
        @inline(__always) func hasPrefix(_ literal: StaticString) -> Bool {
            let m = literal.utf8CodeUnitCount
            guard n >= m else { return false }
            let p = literal.utf8Start
            for k in 0..<m where raw[start + k] != p[k] { return false }
            return true
        }

        switch raw[start] {
        case UInt8(ascii: "V"):
            if hasPrefix("VALUE ") { return parseValue(raw, start: start, lineLength: lineLength, contentEnd: contentEnd) }
        case UInt8(ascii: "E"):
            if isLine("END") { return ParsedReply(kind: .end, length: lineLength) }
            if isLine("EXISTS") { return ParsedReply(kind: .exists, length: lineLength) }
            if hasPrefix("ERROR") { return ParsedReply(kind: .error, length: lineLength) }
        case UInt8(ascii: "S"):
            if isLine("STORED") { return ParsedReply(kind: .stored, length: lineLength) }
            if hasPrefix("SERVER_ERROR") { return ParsedReply(kind: .serverError, length: lineLength) }
        case UInt8(ascii: "N"):
            if isLine("NOT_STORED") { return ParsedReply(kind: .notStored, length: lineLength) }
            if isLine("NOT_FOUND") { return ParsedReply(kind: .notFound, length: lineLength) }
        case UInt8(ascii: "D"):
            if isLine("DELETED") { return ParsedReply(kind: .deleted, length: lineLength) }
        case UInt8(ascii: "C"):
            if hasPrefix("CLIENT_ERROR") { return ParsedReply(kind: .clientError, length: lineLength) }
        default:
            break
        }
        return ParsedReply(kind: .unexpected, length: lineLength)
    }

    /// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\nEND\r\n`
    @inline(__always)
    static func parseValue(_ raw: UnsafeRawBufferPointer, start: Int, lineLength: Int, contentEnd: Int) -> ParsedReply? {
        // Tokens after "VALUE ": key, flags, bytes, [cas].
        var p = start + 6
        var token = 0
        var bytes = -1
        while p < contentEnd {
            while p < contentEnd && raw[p] == 0x20 { p += 1 }
            guard p < contentEnd else { break }
            let tokenStart = p
            while p < contentEnd && raw[p] != 0x20 { p += 1 }
            if token == 2 {
                var v = 0
                for k in tokenStart..<p {
                    let d = raw[k] &- 0x30
                    guard d < 10, p - tokenStart <= 10 else { return ParsedReply(kind: .unexpected, length: lineLength) }
                    v = v * 10 + Int(d)
                }
                bytes = v
            }
            token += 1
        }
        guard token >= 3, token <= 4, bytes >= 0 else { return ParsedReply(kind: .unexpected, length: lineLength) }
        let dataStart = start + lineLength
        let total = lineLength + bytes + 2 + 5
        guard raw.count - start >= total else { return nil }
        let d = dataStart + bytes
        guard raw[d] == 0x0D, raw[d + 1] == 0x0A,
              raw[d + 2] == UInt8(ascii: "E"), raw[d + 3] == UInt8(ascii: "N"), raw[d + 4] == UInt8(ascii: "D"),
              raw[d + 5] == 0x0D, raw[d + 6] == 0x0A else {
            return ParsedReply(kind: .unexpected, length: lineLength)
        }
        return ParsedReply(kind: .value, length: total, valueOffset: lineLength, valueLength: bytes)
    }

    /// Convenience for tests and tools: parses and consumes every complete reply in `buffer`.
    public static func parseAll(_ buffer: inout ByteBuffer) -> [ParsedReply] {
        var replies: [ParsedReply] = []
        let consumed = buffer.withUnsafeReadableBytes { raw -> Int in
            var offset = 0
            while let reply = parse(raw, from: offset) {
                replies.append(reply)
                offset += reply.length
                if reply.kind == .unexpected { break }
            }
            return offset
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        return replies
    }
}
