import NIOCore

/// What a request expects back; the parser needs it because ROMA's replies are not
/// self-describing (a `get` miss is `END`, a `set` answer is one line, a routing dump is a
/// length-prefixed block).
public enum ReplyShape: Sendable, Equatable {
    /// One line (`STORED`, `DELETED`, `42`, a `mklhash` hex digest, an error line).
    case line
    /// Zero or more `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n` blocks, then `END\r\n`
    /// (`get`, `gets`). An error line in place of the first `VALUE` is returned as `.line`.
    case values
    /// `<len>\r\n<len bytes>\r\nEND\r\n` (`routingdump bin`). A first line that is not a decimal
    /// length is returned as `.line`.
    case sizedBlock
}

/// One `VALUE` block of a `get`/`gets` reply.
public struct RomaValue: Sendable, Equatable {
    /// The key as the server printed it (`get`: as sent, with ESC+hash; `gets`: without it).
    public var key: String
    /// Flags (ROMA always reports 0).
    public var flags: UInt32
    /// The data block, exactly `<bytes>` bytes.
    public var value: [UInt8]
    /// The cas unique (logical clock), present in `gets` replies.
    public var cas: UInt32?

    public init(key: String, flags: UInt32 = 0, value: [UInt8], cas: UInt32? = nil) {
        self.key = key
        self.flags = flags
        self.value = value
        self.cas = cas
    }
}

/// A complete reply.
public enum RomaReply: Sendable, Equatable {
    /// One line without its `\r\n`.
    case line(String)
    /// The `VALUE` blocks of a `get`/`gets` reply, in the server's order (empty for a bare `END`).
    case values([RomaValue])
    /// The body of a length-prefixed block (`routingdump bin`).
    case block([UInt8])
}

/// A reply that does not follow the protocol; the connection it came from cannot be trusted
/// any more and is closed.
public struct RomaProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "protocol error: \(message)" }
}

/// Incremental reply parser over a `ByteBuffer`.
///
/// Feed it the bytes received so far with `parse(_:expecting:)`: it consumes what it can and
/// returns the reply once complete, or nil when it needs more bytes (its position inside a
/// multi-part reply is kept between calls, so packets may be split anywhere, including inside
/// `\r\n`). Data blocks are read by their exact byte count, so they may contain `\r\n`.
public struct ReplyParser: Sendable {
    /// Longest accepted line (a `VALUE` header carries the key; ROMA keys are short).
    public static let maxLineLength = 64 * 1024
    /// Largest accepted data block.
    public static let maxBlockLength = Int(Int32.max)

    enum State: Sendable, Equatable {
        /// Waiting for the first line of a reply.
        case start
        /// `.values`: waiting for a `VALUE` header or `END`.
        case valueHeader
        /// `.values`: waiting for `length + 2` bytes of the current value.
        case valueData(key: String, flags: UInt32, length: Int, cas: UInt32?)
        /// `.sizedBlock`: waiting for `length + 2` bytes.
        case blockData(length: Int)
        /// `.sizedBlock`: waiting for `END`.
        case blockEnd
    }

    private(set) var state = State.start
    private var values: [RomaValue] = []
    private var block: [UInt8] = []
    /// Bytes at the front of the readable region already searched for `\n` (no rescans).
    private var scanned = 0

    public init() {}

    /// Whether the parser is between replies (no partial reply kept).
    public var isIdle: Bool { state == .start }

    /// Consumes bytes of `buffer` and returns the reply of shape `shape` once it is complete.
    /// Throws `RomaProtocolError` on malformed input (then discard the parser and the connection).
    public mutating func parse(_ buffer: inout ByteBuffer, expecting shape: ReplyShape) throws(RomaProtocolError) -> RomaReply? {
        while true {
            switch state {
            case .start:
                guard let line = try readLine(&buffer) else { return nil }
                switch shape {
                case .line:
                    return .line(line)
                case .values:
                    state = .valueHeader
                    values = []
                    if let reply = try valueHeader(line) { return reply }
                case .sizedBlock:
                    guard let n = Self.decimal(line[...]), n <= Self.maxBlockLength else { return .line(line) }
                    state = .blockData(length: n)
                }
            case .valueHeader:
                guard let line = try readLine(&buffer) else { return nil }
                if let reply = try valueHeader(line) { return reply }
            case let .valueData(key, flags, length, cas):
                guard let data = try readBlock(&buffer, length: length) else { return nil }
                values.append(RomaValue(key: key, flags: flags, value: data, cas: cas))
                state = .valueHeader
            case let .blockData(length):
                guard let data = try readBlock(&buffer, length: length) else { return nil }
                block = data
                state = .blockEnd
            case .blockEnd:
                guard let line = try readLine(&buffer) else { return nil }
                guard line == "END" else { throw RomaProtocolError("expected END after the block, got '\(Self.clip(line))'") }
                state = .start
                defer { block = [] }
                return .block(block)
            }
        }
    }

    /// Handles a line read while waiting for `VALUE`/`END`; returns the reply when complete.
    private mutating func valueHeader(_ line: String) throws(RomaProtocolError) -> RomaReply? {
        if line == "END" {
            state = .start
            defer { values = [] }
            return .values(values)
        }
        guard line.hasPrefix("VALUE ") else {
            if values.isEmpty {
                // An error line (SERVER_ERROR …, CLIENT_ERROR …) instead of the values.
                state = .start
                return .line(line)
            }
            throw RomaProtocolError("expected VALUE or END, got '\(Self.clip(line))'")
        }
        // VALUE <key> <flags> <bytes> [<cas>]
        let parts = line.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 4 || parts.count == 5,
              let flags = Self.decimal(parts[2]).flatMap({ UInt32(exactly: $0) }),
              let length = Self.decimal(parts[3]), length <= Self.maxBlockLength else {
            throw RomaProtocolError("malformed VALUE line '\(Self.clip(line))'")
        }
        var cas: UInt32?
        if parts.count == 5 {
            guard let c = Self.decimal(parts[4]).flatMap({ UInt32(exactly: $0) }) else {
                throw RomaProtocolError("malformed cas in '\(Self.clip(line))'")
            }
            cas = c
        }
        state = .valueData(key: String(decoding: parts[1], as: UTF8.self), flags: flags, length: length, cas: cas)
        return nil
    }

    /// Reads one line ending in `\n` (a preceding `\r` is dropped), or nil if none is complete.
    private mutating func readLine(_ buffer: inout ByteBuffer) throws(RomaProtocolError) -> String? {
        let view = buffer.readableBytesView
        let from = view.startIndex + min(scanned, view.count)
        guard let nl = view[from...].firstIndex(of: UInt8(ascii: "\n")) else {
            scanned = view.count
            if scanned > Self.maxLineLength { throw RomaProtocolError("reply line longer than \(Self.maxLineLength) bytes") }
            return nil
        }
        scanned = 0
        var end = nl
        if end > view.startIndex && view[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = String(decoding: view[view.startIndex ..< end], as: UTF8.self)
        buffer.moveReaderIndex(forwardBy: nl - view.startIndex + 1)
        return line
    }

    /// Reads `length` bytes plus the `\r\n` that follows, or nil if not all have arrived.
    private mutating func readBlock(_ buffer: inout ByteBuffer, length: Int) throws(RomaProtocolError) -> [UInt8]? {
        guard buffer.readableBytes >= length + 2 else { return nil }
        let data = buffer.readBytes(length: length)!
        let tail = buffer.readBytes(length: 2)!
        guard tail == [0x0D, 0x0A] else { throw RomaProtocolError("data block of \(length) bytes not followed by CRLF") }
        scanned = 0
        return data
    }

    /// A non-negative decimal number (ASCII digits only), or nil.
    static func decimal<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var n = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            n = n * 10 + Int(b - 0x30)
        }
        return n
    }

    static func decimal(_ s: Substring) -> Int? { decimal(s.utf8) }

    static func clip(_ s: String) -> String { s.count > 80 ? String(s.prefix(80)) + "…" : s }
}
