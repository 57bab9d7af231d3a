#if canImport(Glibc)
import Glibc
import CSplice
#endif

/// A failure of a ROMA client connection, with a message fit for an operator.
public struct ROMAClientError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The TCP connection could not be made (refused, unreachable, unknown host, timeout).
        case connect
        /// The server closed the connection.
        case closed
        /// No complete answer arrived within the timeout.
        case timeout
        /// A socket call failed.
        case io
        /// The server answered something this client cannot interpret.
        case proto
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// A small blocking client for ROMA's text protocol (memcached-compatible), on POSIX sockets.
///
/// One connection, used from one thread at a time (the type is deliberately not `Sendable`).
/// Every read has a deadline (`timeout` seconds), so a silent server cannot hang a tool.
public final class ROMAConnection {
    public let host: String
    public let port: Int
    /// Seconds each read may wait for the server.
    public var timeout: Double

    private var fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    /// What one `recv` reads into before the bytes are appended to `buffer` (allocated once: a
    /// zero-filled 64 KiB appended per read cost about 15 ms a read in debug builds).
    private let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 65536)

    /// `host:port` as shown in messages.
    public var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Connects to `host:port`, trying every address `host` resolves to, each within `connectTimeout`.
    /// Throws `ROMAClientError(.connect, "cannot connect to host:port: <reason>")`.
    public init(host: String = "127.0.0.1", port: Int, connectTimeout: Double = 5, timeout: Double = 30) throws {
        self.host = host
        self.port = port
        self.timeout = timeout
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard port > 0 && port < 65536 else {
            throw ROMAClientError(.connect, "cannot connect to \(endpoint): invalid port number \(port)")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw ROMAClientError(.connect, "cannot connect to \(endpoint): cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        var connected: Int32 = -1
        while let a = ai {
            ai = a.pointee.ai_next
            switch ROMAConnection.connect(a.pointee, timeout: connectTimeout) {
            case .success(let s): connected = s
            case .failure(let why): reason = why
            }
            if connected >= 0 { break }
        }
        guard connected >= 0 else {
            throw ROMAClientError(.connect, "cannot connect to \(endpoint): \(reason)")
        }
        fd = connected
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        scratch.deallocate()
    }

    private enum ConnectResult { case success(Int32), failure(String) }

    private static func connect(_ a: addrinfo, timeout: Double) -> ConnectResult {
        let s = socket(a.ai_family, a.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.ai_protocol)
        guard s >= 0 else { return .failure(errnoText()) }
        let flags = fcntl(s, F_GETFL, 0)
        _ = fcntl(s, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(s, a.ai_addr, a.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let why = errnoText()
                Glibc.close(s)
                return .failure(why)
            }
            var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
            let n = poll(&p, 1, Int32(max(1, timeout * 1000)))
            if n == 0 {
                Glibc.close(s)
                return .failure("timed out after \(timeout) s")
            }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len)
            if n < 0 || err != 0 {
                let why = String(cString: strerror(n < 0 ? errno : err))
                Glibc.close(s)
                return .failure(why)
            }
        }
        _ = fcntl(s, F_SETFL, flags)
        var one: Int32 = 1
        setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return .success(s)
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Closes the connection (idempotent).
    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    // MARK: - Sending

    /// Sends raw bytes.
    public func send(_ bytes: [UInt8]) throws {
        guard fd >= 0 else { throw ROMAClientError(.closed, "connection to \(endpoint) is closed") }
        try bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK {
                        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                        if poll(&p, 1, Int32(timeout * 1000)) == 0 {
                            throw ROMAClientError(.timeout, "timed out sending to \(endpoint)")
                        }
                        continue
                    }
                    let why = ROMAConnection.errnoText()
                    if errno == EPIPE || errno == ECONNRESET {
                        throw ROMAClientError(.closed, "connection to \(endpoint) closed by the server (\(why))")
                    }
                    throw ROMAClientError(.io, "send to \(endpoint) failed: \(why)")
                }
                off += n
            }
        }
    }

    /// Sends `line` followed by CRLF (as ROMA's tools do).
    public func sendLine(_ line: String) throws {
        try send(Array(line.utf8) + [13, 10])
    }

    // MARK: - Receiving

    /// Reads more bytes into the buffer, waiting at most until `deadline` (monotonic seconds).
    private func fill(deadline: Double, waitingFor what: String) throws {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65536 {
            buffer.removeFirst(start)
            start = 0
        }
        let n = try receive(into: scratch.baseAddress!, max: scratch.count, deadline: deadline, waitingFor: what)
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<n]))
    }

    /// Waits (until the monotonic `deadline`) for the socket to be readable, then receives up to
    /// `max` bytes into `p`: how many (0 after an interrupted call). Throws on a timeout, an error
    /// or the server's end of stream, with `what` the reader was waiting for.
    private func receive(into p: UnsafeMutableRawPointer, max: Int, deadline: Double, waitingFor what: String) throws -> Int {
        try awaitReadable(deadline: deadline, waitingFor: what)
        let n = recv(fd, p, max, 0)
        if n <= 0 {
            let code = errno
            if n < 0 && code == EINTR { return 0 }
            throw endOfStream(n < 0 ? code : 0, waitingFor: what)
        }
        return n
    }

    /// Waits until the socket has bytes (or its end) to read; throws after `deadline`.
    private func awaitReadable(deadline: Double, waitingFor what: String) throws {
        guard fd >= 0 else { throw ROMAClientError(.closed, "connection to \(endpoint) is closed") }
        while true {
            let remaining = deadline - ROMAConnection.now()
            if remaining <= 0 {
                throw ROMAClientError(.timeout, "no answer from \(endpoint) within \(timeout) s while waiting for \(what)")
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(min(remaining * 1000 + 1, 1_000_000)))
            if r < 0 {
                if errno == EINTR { continue }
                throw ROMAClientError(.io, "poll on \(endpoint) failed: \(ROMAConnection.errnoText())")
            }
            if r > 0 { return }
        }
    }

    /// The error for a read that found the server's end of stream (`code` 0) or failed.
    private func endOfStream(_ code: Int32, waitingFor what: String) -> ROMAClientError {
        let why = code != 0 ? String(cString: strerror(code)) : "end of stream"
        return ROMAClientError(.closed, "connection to \(endpoint) closed by the server while waiting for \(what) (\(why))")
    }

    /// Monotonic clock in seconds.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Reads whatever arrives until the server has been silent for `idle` seconds, closed the
    /// connection, or `limit` seconds have passed (`roma-adm`'s way of reading an unknown reply).
    public func readUntilIdle(idle: Double, limit: Double) throws -> (bytes: [UInt8], closed: Bool) {
        let hardDeadline = ROMAConnection.now() + limit
        var closed = false
        while true {
            let deadline = min(ROMAConnection.now() + idle, hardDeadline)
            do {
                try fill(deadline: deadline, waitingFor: "more output")
            } catch let e as ROMAClientError where e.kind == .timeout {
                break
            } catch let e as ROMAClientError where e.kind == .closed {
                closed = true
                break
            }
            if ROMAConnection.now() >= hardDeadline { break }
        }
        let out = Array(buffer[start...])
        start = buffer.count
        return (out, closed)
    }

    /// Reads one line terminated by CRLF; returns its bytes without the terminator.
    public func readLineBytes() throws -> [UInt8] {
        let deadline = ROMAConnection.now() + timeout
        // Bytes after `start` already scanned without finding CR LF (offsets survive compaction).
        var scanned = 0
        while true {
            var i = start + scanned
            while i + 1 < buffer.count {
                if buffer[i] == 13 && buffer[i + 1] == 10 {
                    let line = Array(buffer[start..<i])
                    start = i + 2
                    return line
                }
                i += 1
            }
            scanned = max(0, i - start)
            try fill(deadline: deadline, waitingFor: "a reply line")
        }
    }

    /// Reads one CRLF-terminated line as text (invalid UTF-8 is replaced).
    public func readLine() throws -> String {
        String(decoding: try readLineBytes(), as: UTF8.self)
    }

    /// Reads exactly `n` bytes.
    public func readExact(_ n: Int) throws -> [UInt8] {
        let deadline = ROMAConnection.now() + timeout
        while buffer.count - start < n {
            try fill(deadline: deadline, waitingFor: "\(n) bytes")
        }
        let out = Array(buffer[start..<(start + n)])
        start += n
        return out
    }

    /// Reads exactly `n` bytes and writes them to the file descriptor `out` as they arrive (a
    /// file the server sends: a division file for a joining node). Each wait for more bytes
    /// lasts at most `timeout`; a short file (the server closed) or a failed write throws.
    public func readExact(_ n: Int, writingTo out: Int32) throws {
        var left = n
        let have = min(buffer.count - start, left)
        if have > 0 {
            try buffer.withUnsafeBytes { try ROMAConnection.writeAll(out, UnsafeRawBufferPointer(rebasing: $0[start..<(start + have)])) }
            start += have
            left -= have
        }
        guard left > 0 else { return }
        if try spliceExact(left, of: n, to: out) { return }
        // Straight from the socket to the file, a MiB at a time (not through the line buffer).
        let size = 1 << 20
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { chunk.deallocate() }
        while left > 0 {
            let got = try receive(into: chunk, max: min(size, left), deadline: ROMAConnection.now() + timeout,
                                  waitingFor: "\(left) of \(n) bytes")
            try ROMAConnection.writeAll(out, UnsafeRawBufferPointer(start: chunk, count: got))
            left -= got
        }
    }

    /// The next `left` bytes (of a file of `n`) from the socket into `out` with splice(2), through
    /// a pipe: the kernel moves the socket's pages to the pipe and copies them into the page
    /// cache, with no copy through user space (half the copying of recv and write). False, with
    /// nothing read, where splice cannot join these descriptors (the caller then copies).
    private func spliceExact(_ left: Int, of n: Int, to out: Int32) throws -> Bool {
        var p: [Int32] = [-1, -1]
        guard pipe(&p) == 0 else { return false }
        defer { Glibc.close(p[0]); Glibc.close(p[1]) }
        let capacity = max(Int(cs_set_pipe_size(p[1], 1 << 20)), 1 << 16)
        var left = left
        var first = true
        while left > 0 {
            try awaitReadable(deadline: ROMAConnection.now() + timeout, waitingFor: "\(left) of \(n) bytes")
            let got = cs_splice(fd, p[1], min(capacity, left), CS_SPLICE_F_MOVE | CS_SPLICE_F_NONBLOCK)
            if got < 0 {
                let code = errno
                if code == EINTR || code == EAGAIN { continue }
                if first && (code == EINVAL || code == ENOSYS) { return false }
                throw endOfStream(code, waitingFor: "\(left) of \(n) bytes")
            }
            if got == 0 { throw endOfStream(0, waitingFor: "\(left) of \(n) bytes") }
            first = false
            var inPipe = got
            while inPipe > 0 {
                let w = cs_splice(p[0], out, inPipe, CS_SPLICE_F_MOVE)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw ROMAClientError(.io, "writing the received file failed: \(ROMAConnection.errnoText())")
                }
                inPipe -= w
            }
            left -= got
        }
        return true
    }

    /// Writes all of `bytes` to the file descriptor `fd`.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let w = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if w < 0 {
                if errno == EINTR { continue }
                throw ROMAClientError(.io, "writing the received file failed: \(ROMAConnection.errnoText())")
            }
            done += w
        }
    }

    /// Reads lines until the line `END`; returns the lines before it.
    /// A line starting with `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR` ends the reply as an error.
    public func readUntilEnd() throws -> [String] {
        var lines: [String] = []
        while true {
            let l = try readLine()
            if l == "END" { return lines }
            if lines.isEmpty && ROMAConnection.isErrorReply(l) {
                throw ROMAClientError(.proto, "\(endpoint) answered: \(l)")
            }
            lines.append(l)
        }
    }

    /// True for `ERROR…`, `CLIENT_ERROR…` and `SERVER_ERROR…` replies.
    public static func isErrorReply(_ line: String) -> Bool {
        line.hasPrefix("ERROR") || line.hasPrefix("CLIENT_ERROR") || line.hasPrefix("SERVER_ERROR")
    }

    // MARK: - Commands

    /// Sends one command line and returns the single reply line.
    public func request(_ line: String) throws -> String {
        try sendLine(line)
        return try readLine()
    }

    /// `stat [regexp]` as `(key, value)` pairs, in the server's order.
    /// The key is everything before the first space, the value everything after it.
    public func stat(_ regexp: String? = nil) throws -> [(key: String, value: String)] {
        try sendLine(regexp.map { "stat \($0)" } ?? "stat")
        return try readUntilEnd().map(ROMAStat.split)
    }

    /// `set <key> <flags> <exptime> <len>` + data; returns the reply line (`STORED` on success).
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], flags: UInt32 = 0, exptime: Int = 0) throws -> String {
        try store("set", key, value, flags: flags, exptime: exptime)
    }

    /// Any set-family command (`set add replace append prepend`); returns the reply line.
    public func store(_ command: String, _ key: String, _ value: [UInt8], flags: UInt32 = 0, exptime: Int = 0) throws -> String {
        try send(Array("\(command) \(key) \(flags) \(exptime) \(value.count)\r\n".utf8) + value + [13, 10])
        return try readLine()
    }

    /// `get <key>`: the value, or nil when the key is absent. Error replies throw.
    public func get(_ key: String) throws -> [UInt8]? {
        try gets(key)?.value
    }

    /// `gets <key>`: value, flags and cas unique, or nil when absent.
    public func gets(_ key: String) throws -> (value: [UInt8], flags: UInt32, cas: UInt64?)? {
        try sendLine("gets \(key)")
        let line = try readLine()
        if line == "END" { return nil }
        let parts = line.split(separator: " ")
        guard parts.count >= 4, parts[0] == "VALUE", let flags = UInt32(parts[2]), let n = Int(parts[3]) else {
            if ROMAConnection.isErrorReply(line) { throw ROMAClientError(.proto, "\(endpoint) answered: \(line)") }
            throw ROMAClientError(.proto, "unexpected reply from \(endpoint): \(line)")
        }
        let data = try readExact(n + 2)
        guard data[n] == 13 && data[n + 1] == 10 else {
            throw ROMAClientError(.proto, "value block from \(endpoint) is not followed by CRLF")
        }
        let end = try readLine()
        guard end == "END" else { throw ROMAClientError(.proto, "expected END from \(endpoint), got: \(end)") }
        return (Array(data[0..<n]), flags, parts.count >= 5 ? UInt64(parts[4]) : nil)
    }

    /// `delete <key>`; returns the reply line (`DELETED` / `NOT_FOUND`).
    @discardableResult
    public func delete(_ key: String) throws -> String { try request("delete \(key)") }

    /// `incr <key> <delta>`; returns the reply line (the new value or `NOT_FOUND`).
    @discardableResult
    public func incr(_ key: String, _ delta: UInt64) throws -> String { try request("incr \(key) \(delta)") }

    /// `decr <key> <delta>`; returns the reply line.
    @discardableResult
    public func decr(_ key: String, _ delta: UInt64) throws -> String { try request("decr \(key) \(delta)") }

    /// `version` reply line.
    public func version() throws -> String { try request("version") }
}

/// Helpers for ROMA's `stat` output.
public enum ROMAStat {
    /// Splits a stat line `name value…` at the first space.
    public static func split(_ line: String) -> (key: String, value: String) {
        if let i = line.firstIndex(of: " ") {
            return (String(line[..<i]), String(line[line.index(after: i)...]))
        }
        return (line, "")
    }

    /// Parses a Ruby inspect array of symbols, e.g. `[:normal, :safecopy_flushed]`, into
    /// `["normal", "safecopy_flushed"]`; nil when the text is not such an array. (ROMA's cpdb
    /// `eval`s this text; a parser is the safe equivalent.)
    public static func symbolArray(_ text: String) -> [String]? {
        var s = Substring(text)
        while s.last == " " { s.removeLast() }
        guard s.first == "[", s.last == "]" else { return nil }
        s = s.dropFirst().dropLast()
        if s.allSatisfy({ $0 == " " }) { return [] }
        var out: [String] = []
        for item in s.split(separator: ",", omittingEmptySubsequences: false) {
            let t = item.drop(while: { $0 == " " })
            let trimmed = t.reversed().drop(while: { $0 == " " }).reversed()
            let name = String(trimmed)
            guard name.hasPrefix(":"), name.count > 1,
                  name.dropFirst().allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
            out.append(String(name.dropFirst()))
        }
        return out
    }

    /// Escapes `text` for use inside a `stat` regular expression (every non-alphanumeric ASCII
    /// character gets a backslash).
    public static func escapeRegex(_ text: String) -> String {
        var out = ""
        for c in text {
            if c.isASCII && !(c.isLetter || c.isNumber || c == "_") { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
