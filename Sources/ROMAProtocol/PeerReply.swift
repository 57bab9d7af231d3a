import NIOCore

/// The shape of the reply a request to another node expects (the reader needs it to know where
/// the reply ends; the text protocol does not say).
public enum PeerReplyKind: Sendable {
    /// One line (`STORED`, `DELETED`, `<clk> <nid>…`, a number).
    case line
    /// `VALUE <key> <flags> <bytes>[ <cas>]` blocks until `END` (`fget`, `gets`), or one other
    /// line (an error) instead.
    case values
    /// `<len>\r\n<len bytes>\r\nEND\r\n` (`routingdump bin`), or one other line.
    case sized
    /// Lines until `END` (`get_expt` relayed, `stat`), or one error line.
    case lines
}

/// One VALUE block of a `values` reply.
public struct PeerValue: Sendable {
    /// The key as the VALUE line names it.
    public var key: [UInt8]
    public var flags: [UInt8]
    public var data: ByteBuffer
    /// The fifth token (cas unique), if present.
    public var cas: [UInt8]?
}

/// A decoded reply from another node.
public enum PeerReply: Sendable {
    /// A one-line reply, CR LF stripped.
    case line(ByteBuffer)
    /// The VALUE blocks of a `values` reply (possibly none: just `END`) and the whole reply's bytes.
    case values([PeerValue], raw: ByteBuffer)
    /// The payload of a `sized` reply.
    case sized(ByteBuffer)
    /// The lines of a `lines` reply before `END`.
    case lines([ByteBuffer])

    /// The reply line for `.line`, or the single error line a structured reply got instead.
    public var lineString: String? {
        if case .line(let b) = self { return String(buffer: b) }
        return nil
    }
}

/// Incremental reader of replies from another node: call `decode` with the receive buffer
/// whenever bytes arrive; it consumes one complete reply or nothing.
public enum PeerReplyDecoder {
    /// Decodes one reply of `kind` from `buffer`; nil (nothing consumed) until it is complete.
    /// Throws when the bytes cannot be a reply of that kind (the connection must then be closed).
    public static func decode(_ kind: PeerReplyKind, _ buffer: inout ByteBuffer) throws -> PeerReply? {
        let start = buffer.readerIndex
        var b = buffer
        guard let first = readLine(&b) else { return nil }
        switch kind {
        case .line:
            buffer = b
            return .line(first)
        case .sized:
            guard let n = Int(String(buffer: first)), n >= 0 else {
                buffer = b
                return .line(first)
            }
            guard b.readableBytes >= n + 2 else { return nil }
            let payload = b.readSlice(length: n)!
            b.moveReaderIndex(forwardBy: 2)
            guard let end = readLine(&b) else { return nil }
            guard end.readableBytesView.elementsEqual("END".utf8) else { throw PeerProtocolError("expected END after \(n) bytes") }
            buffer = b
            return .sized(payload)
        case .lines:
            if isError(first) { buffer = b; return .line(first) }
            var lines: [ByteBuffer] = []
            var line = first
            while !line.readableBytesView.elementsEqual("END".utf8) {
                lines.append(line)
                guard let next = readLine(&b) else { return nil }
                line = next
            }
            buffer = b
            return .lines(lines)
        case .values:
            var values: [PeerValue] = []
            var line = first
            while true {
                if line.readableBytesView.elementsEqual("END".utf8) { break }
                let tokens = line.readableBytesView.split(separator: 0x20, omittingEmptySubsequences: true)
                guard tokens.count >= 4, tokens[0].elementsEqual("VALUE".utf8) else {
                    if values.isEmpty { buffer = b; return .line(line) }
                    throw PeerProtocolError("unexpected line in a VALUE reply: \(String(buffer: line))")
                }
                guard let n = Int(String(decoding: tokens[3], as: UTF8.self)), n >= 0 else {
                    throw PeerProtocolError("bad VALUE line: \(String(buffer: line))")
                }
                guard b.readableBytes >= n + 2 else { return nil }
                let data = b.readSlice(length: n)!
                b.moveReaderIndex(forwardBy: 2)
                values.append(PeerValue(key: Array(tokens[1]), flags: Array(tokens[2]), data: data,
                                        cas: tokens.count >= 5 ? Array(tokens[4]) : nil))
                guard let next = readLine(&b) else { return nil }
                line = next
            }
            let raw = buffer.getSlice(at: start, length: b.readerIndex - start)!
            buffer = b
            return .values(values, raw: raw)
        }
    }

    /// Reads one line (CR LF or LF stripped) or nothing.
    static func readLine(_ b: inout ByteBuffer) -> ByteBuffer? {
        guard let nl = b.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = b.readSlice(length: nl - b.readerIndex)!
        b.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
        return line
    }

    /// Whether a line is an error reply (`ERROR…`, `CLIENT_ERROR…`, `SERVER_ERROR…`).
    public static func isError(_ line: ByteBuffer) -> Bool {
        let v = line.readableBytesView
        return v.starts(with: "ERROR".utf8) || v.starts(with: "CLIENT_ERROR".utf8) || v.starts(with: "SERVER_ERROR".utf8)
    }
}

/// Bytes from another node that cannot be the reply expected.
public struct PeerProtocolError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}
