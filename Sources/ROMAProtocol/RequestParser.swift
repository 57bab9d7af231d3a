import NIOCore

/// What the parser produced from the input.
public enum ParseEvent {
    /// A complete request (with its data block, if it has one).
    case request(Request)
    /// A protocol error to send as one reply line (without CR LF); parsing goes on, in sync.
    case error(String)
    /// An error after which the stream cannot be resynchronised in reasonable time: send the
    /// line, then close the connection.
    case fatal(String)
}

/// Incremental parser of ROMA's text protocol (spec R3.1) working in place on the connection's
/// receive buffer. It is an explicit state machine:
/// - `line`: waiting for a command line ending in LF (one preceding CR stripped);
/// - `data`: a storage command waits for `<bytes>` + CR LF;
/// - `swallow`: discarding a data block that was refused (bad line, too large) so the next
///   command is parsed in sync;
/// - `discardLine`: discarding the rest of an over-long or corrupt line up to its LF.
public struct RequestParser {
    enum State {
        case line
        case data(Request, bytes: Int)
        case swallow(remaining: Int)
        case discardLine
    }

    public var limits: ProtocolLimits
    var state: State = .line
    /// Token storage reused across requests: once the previous request is gone the array is
    /// uniquely referenced again, so tokenising allocates nothing in the steady state.
    var tokenScratch: [Range<Int>] = []
    /// The line of the last request whose command is known, for `!!` (R3.4). A reused buffer:
    /// copying a short line into it allocates nothing in the steady state, and it never shares
    /// storage with the receive buffer (which would make appending to that buffer copy it).
    var lastLine: ByteBuffer?
    /// Set while the line being parsed is a repetition (`!!`), so it does not copy itself.
    var repeating = false

    public init(limits: ProtocolLimits = ProtocolLimits()) {
        self.limits = limits
    }

    /// True while a storage command's data block is incomplete (the read timeout applies).
    public var isAwaitingData: Bool {
        if case .data = state { return true }
        if case .swallow = state { return true }
        return false
    }

    /// Parses the next event from `buffer`, consuming what it used; nil when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) -> ParseEvent? {
        while true {
            switch state {
            case .swallow(let remaining):
                let n = min(remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                if n < remaining { state = .swallow(remaining: remaining - n); return nil }
                state = .line
            case .discardLine:
                guard let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                    return nil
                }
                buffer.moveReaderIndex(to: nl + 1)
                state = .line
            case .data(var request, let bytes):
                guard buffer.readableBytes >= bytes + 2 else { return nil }
                let data = buffer.readSlice(length: bytes)!
                let terminatorOK = buffer.withUnsafeReadableBytes { $0[0] == UInt8(ascii: "\r") && $0[1] == UInt8(ascii: "\n") }
                state = .line
                if terminatorOK {
                    buffer.moveReaderIndex(forwardBy: 2)
                    request.data = data
                    return .request(request)
                }
                // Longer than declared: refuse and resynchronise at the next LF.
                state = .discardLine
                if request.noreply { continue }
                return .error("CLIENT_ERROR bad data chunk")
            case .line:
                guard let event = parseLine(&buffer) else { return nil }
                switch event {
                case .some(let e): return e
                case .none: continue  // empty line or state change: keep going
                }
            }
        }
    }

    /// Reads one raw line (for prompts such as `balse`'s "Are you sure?"); nil when incomplete.
    public mutating func nextRawLine(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        guard case .line = state else { return nil }
        guard let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = buffer.readSlice(length: nl - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
        return line
    }

    /// nil: need more bytes. .some(nil): consumed something that yields no event. .some(e): an event.
    private mutating func parseLine(_ buffer: inout ByteBuffer) -> ParseEvent?? {
        let view = buffer.readableBytesView
        guard let nl = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > limits.maxLineLength {
                state = .discardLine
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return .some(.error("CLIENT_ERROR line too long"))
            }
            return nil
        }
        let lineLength = nl - buffer.readerIndex
        var line = buffer.readSlice(length: lineLength)!
        buffer.moveReaderIndex(forwardBy: 1)
        if lineLength > limits.maxLineLength { return .some(.error("CLIENT_ERROR line too long")) }
        if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
        return parseCommandLine(line)
    }

    /// Tokenises and classifies one command line (CR LF stripped).
    private mutating func parseCommandLine(_ line: ByteBuffer) -> ParseEvent?? {

        // Tokenise on runs of spaces (memcached; ROMA's empty tokens are never meaningful).
        var tokens = tokenScratch
        tokenScratch = []
        tokens.removeAll(keepingCapacity: true)
        line.withUnsafeReadableBytes { p in
            var i = 0
            let n = p.count
            while i < n {
                while i < n && p[i] == 0x20 { i += 1 }
                if i == n { break }
                let s = i
                while i < n && p[i] != 0x20 { i += 1 }
                tokens.append(s..<i)
            }
        }
        defer { tokenScratch = tokens }
        if tokens.isEmpty { return .some(nil) }  // empty line: no reply (R3.1)
        let command = line.withUnsafeReadableBytes { Command.match(UnsafeRawBufferPointer(rebasing: $0[tokens[0]])) }
        if command == nil && !repeating && RequestParser.isRepeat(line, tokens[0]) {
            // R3.4: `!!` runs the previous known command again (a storage command reads a new
            // data block); with nothing before it there is nothing to answer.
            guard let last = lastLine else { return .some(nil) }
            repeating = true
            defer { repeating = false }
            return parseCommandLine(last)
        }
        if command != nil && !repeating { remember(line) }
        var request = Request(command: command, line: line, tokens: tokens, data: nil)
        guard let command, command.hasDataBlock else { return .some(.request(request)) }
        return .some(storageLine(&request, command))
    }

    /// Whether token `t` of `line` is exactly `!!` (case does not apply).
    static func isRepeat(_ line: ByteBuffer, _ t: Range<Int>) -> Bool {
        t.count == 2 && line.withUnsafeReadableBytes { $0[t.lowerBound] == 0x21 && $0[t.lowerBound + 1] == 0x21 }
    }

    /// Keeps a copy of a known command's line for `!!`.
    private mutating func remember(_ line: ByteBuffer) {
        if lastLine == nil { lastLine = ByteBufferAllocator().buffer(capacity: max(64, line.readableBytes)) }
        lastLine!.clear()
        var l = line
        lastLine!.writeBuffer(&l)
    }

    /// Validates a storage command line and moves to the data state (or swallows the block).
    private mutating func storageLine(_ request: inout Request, _ command: Command) -> ParseEvent? {
        let base = command.storageTokenCount
        let n = request.count
        let bytesToken = command.byteCountToken
        guard n > bytesToken else { return .error("CLIENT_ERROR Wrong number of arguments.") }
        // The byte count (token 4; 5 for rset/rzset) decides how much to read or skip.
        let bytes: Int? = request.withToken(bytesToken) { t in
            guard !t.isEmpty, t.count <= 18 else { return nil }
            var v = 0
            for c in t {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let bytes else {
            // memcached: `noreply` silences even this error (the data block is then read as a line).
            if n == base + 1 && request.token(base, is: "noreply") { return nil }
            let negative = request.withToken(bytesToken) { $0.first == UInt8(ascii: "-") && $0.count > 1 && $0.dropFirst().allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
            return .error(negative ? "CLIENT_ERROR Wrong value size." : "CLIENT_ERROR bad command line format")
        }
        // A data block far beyond any acceptable size cannot be skipped in reasonable time.
        if bytes > max(limits.maxValueSize.multipliedReportingOverflow(by: 8).partialValue, 16 << 20) {
            return .fatal("CLIENT_ERROR object too large for cache (\(bytes) > \(limits.maxValueSize) bytes); closing connection")
        }
        // memcached accepts one more token and ignores it unless it is `noreply`.
        let noreply = n == base + 1 && request.token(base, is: "noreply")
        request.noreply = noreply
        if n != base && n != base + 1 {
            state = .swallow(remaining: bytes + 2)
            return .error("CLIENT_ERROR Wrong number of arguments.")
        }
        if let problem = keyProblem(request) {
            state = .swallow(remaining: bytes + 2)
            return noreply ? nil : .error(problem)
        }
        if bytes > limits.maxValueSize {
            state = .swallow(remaining: bytes + 2)
            return noreply ? nil : .error("CLIENT_ERROR object too large for cache (\(bytes) > \(limits.maxValueSize) bytes)")
        }
        state = .data(request, bytes: bytes)
        return nil
    }

    /// Checks token 1 as a key: not longer than the limit (the part before ESC), no control bytes.
    public func keyProblem(_ request: Request, token: Int = 1) -> String? {
        request.withToken(token) { RequestParser.keyProblem($0, limits: limits) }
    }

    /// Checks a key token (`key` or `key\x1Bhash`).
    @inlinable
    public static func keyProblem(_ t: UnsafeRawBufferPointer, limits: ProtocolLimits) -> String? {
        let n = t.count
        guard n > 0, let base = t.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            return "CLIENT_ERROR bad key: empty"
        }
        var keyLength = n
        var i = 0
        while i < n {
            let c = base[i]
            if c < 0x20 || c == 0x7f {
                if c == 0x1b {
                    if keyLength == n { keyLength = i }
                } else {
                    return "CLIENT_ERROR bad key: control characters are not allowed"
                }
            }
            i &+= 1
        }
        if keyLength == 0 { return "CLIENT_ERROR bad key: empty" }
        if keyLength > limits.maxKeyLength { return "CLIENT_ERROR bad key: longer than \(limits.maxKeyLength) bytes" }
        return nil
    }
}
