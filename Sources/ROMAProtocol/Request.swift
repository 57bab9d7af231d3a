import NIOCore

/// Limits the parser enforces; violations get `CLIENT_ERROR` replies that keep the stream in sync.
public struct ProtocolLimits: Sendable {
    /// Longest key (the part before an ESC + hash-name suffix), memcached's 250.
    public var maxKeyLength: Int = 250
    /// Largest value a storage command may carry.
    public var maxValueSize: Int = 1 << 20
    /// Longest command line; longer lines are answered with an error and discarded.
    public var maxLineLength: Int = 256 * 1024
    public init() {}
}

/// One parsed request. Tokens are ranges into `line` (the command line without CR LF);
/// nothing is copied out of the receive buffer.
public struct Request {
    /// The matched command, nil when token 0 is not a known command.
    public var command: Command?
    /// The command line, CR LF stripped.
    public var line: ByteBuffer
    /// Token ranges relative to `line.readerIndex` (runs of spaces separate tokens).
    public var tokens: [Range<Int>]
    /// The data block of a storage command (CR LF stripped).
    public var data: ByteBuffer?
    /// `noreply` was given (storage commands; other commands decide in the dispatcher).
    public var noreply: Bool = false

    /// Number of tokens including the command name.
    @inlinable public var count: Int { tokens.count }

    /// Calls `body` with the bytes of token `i`.
    @inlinable public func withToken<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let r = tokens[i]
        return try line.withUnsafeReadableBytes { try body(UnsafeRawBufferPointer(rebasing: $0[r])) }
    }

    /// Token `i` as a ByteBuffer slice (no copy).
    @inlinable public func tokenSlice(_ i: Int) -> ByteBuffer {
        let r = tokens[i]
        return line.getSlice(at: line.readerIndex + r.lowerBound, length: r.count)!
    }

    /// Token `i` as bytes.
    public func tokenBytes(_ i: Int) -> [UInt8] { withToken(i) { Array($0) } }

    /// Token `i` as a String (lossy UTF-8).
    public func tokenString(_ i: Int) -> String { withToken(i) { String(decoding: $0, as: UTF8.self) } }

    /// True when token `i` equals `word` (case-sensitive ASCII).
    public func token(_ i: Int, is word: StaticString) -> Bool {
        guard i < tokens.count else { return false }
        return withToken(i) { t in
            t.count == word.utf8CodeUnitCount && memcmp(t.baseAddress!, word.utf8Start, t.count) == 0
        }
    }

    /// The whole line as a String.
    public var lineString: String { String(buffer: line) }
}

#if canImport(Glibc)
import Glibc
#endif
