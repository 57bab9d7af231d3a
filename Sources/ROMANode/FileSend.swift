#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// A file sent on a connection: `prepare` (off the event loop) opens it and says how many bytes
/// to send; the reply is `FILE <size>`, the bytes, `END`. The bytes go out with `sendfile(2)`:
/// the kernel hands the page-cache pages to the socket, with no copy through user space.
///
/// They are sent from the calling pool thread (idle priority) on a duplicate of the connection's
/// descriptor, found by its addresses (`OffLoopSend`): SwiftNIO does not hand a channel's
/// descriptor out, and sent from an event loop the bytes took that loop's core at normal
/// priority, so the clients of the node (woken on that core) waited behind them, 5–15 ms at a
/// time in a join. The loop does nothing on the connection meanwhile: its handler waits for the
/// reply, and the receiver sends nothing until `END`.
///
/// Where the descriptor is not found (no `/proc`), nothing is sent: the reply is
/// `SERVER_ERROR …`, and the joining node copies those vnodes as records instead. (A fallback that
/// queued `FileRegion`s from the event loop was dropped: no system this runs on takes it, so no
/// test could.)
///
/// Pages handed over by `sendfile` are read when the receiver reads them, not when the write
/// completes: the file must not change until then. So the sender does not finish when its last
/// write leaves but when the connection closes (the receiver closes it once it has read `END`,
/// or `linger` seconds after the bytes, we do): only then `finish` runs, told whether every byte went
/// out, and may let the file change again. A failure before the first byte is answered
/// `SERVER_ERROR …`; one after it closes the connection (the receiver counts the bytes, so it
/// sees a short file).
final class FileSend: Sendable {
    let chunk: Int
    let linger: TimeAmount
    let prepare: @Sendable () throws -> (fd: Int32, size: Int)
    /// Called on the sending thread before each chunk goes out, with its size: the seconds it
    /// must wait first (a bandwidth limit), 0 for at once.
    let delay: @Sendable (Int) -> Double
    /// Called once the file may change again, told whether every byte went out: on the event
    /// loop once the connection is closed, or on the calling thread when nothing was sent (must
    /// not block).
    let finish: @Sendable (Bool) -> Void

    init(chunk: Int, linger: TimeAmount, prepare: @escaping @Sendable () throws -> (fd: Int32, size: Int),
         delay: @escaping @Sendable (Int) -> Double, finish: @escaping @Sendable (Bool) -> Void) {
        self.chunk = max(chunk, 4096)
        self.linger = linger
        self.prepare = prepare
        self.delay = delay
        self.finish = finish
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `prepare` on the calling pool thread, then sends from it. The future gives the line
    /// that ends the reply; a throw (nothing sent) is answered `SERVER_ERROR …`.
    func start(on channel: any Channel) throws -> EventLoopFuture<ByteBuffer> {
        let (fd, size) = try prepare()
        guard let socket = OffLoopSend.duplicateDescriptor(of: channel) else {
            close(fd)
            finish(false)
            throw Failure(description: "the connection's socket was not found in /proc/self/fd")
        }
        return OffLoopSend(self, file: fd, size: size, socket: socket, channel: channel).run()
    }
}

/// The bytes of one `FileSend` from the calling (pool) thread, on a duplicate of the channel's
/// descriptor: the `FILE` line through the channel, then `sendfile(2)` until every byte left
/// (waiting with `poll` when the socket is full), then `END` through the channel again.
struct OffLoopSend {
    let file: FileSend
    let fd: Int32
    let size: Int
    let socket: Int32
    let channel: any Channel

    init(_ file: FileSend, file fd: Int32, size: Int, socket: Int32, channel: any Channel) {
        self.file = file
        self.fd = fd
        self.size = size
        self.socket = socket
        self.channel = channel
    }

    func run() -> EventLoopFuture<ByteBuffer> {
        var ok = false
        defer {
            close(socket)
            close(fd)
            let (finish, linger, channel) = (file.finish, file.linger, channel)
            if !ok { channel.close(promise: nil) }
            let sent = ok
            channel.eventLoop.execute {
                let lingering = sent ? channel.eventLoop.scheduleTask(in: linger) { channel.close(promise: nil) } : nil
                channel.closeFuture.whenComplete { _ in
                    lingering?.cancel()
                    finish(sent)
                }
            }
        }
        do {
            var head = channel.allocator.buffer(capacity: 32)
            head.writeString("FILE \(size)\r\n")
            try channel.writeAndFlush(head).wait()
            var offset = off_t(0)
            while Int(offset) < size {
                let n = min(file.chunk, size - Int(offset))
                let wait = file.delay(n)
                if wait > 0 { usleep(useconds_t(min(wait, 60) * 1_000_000)) }
                var left = n
                while left > 0 {
                    let w = sendfile(socket, fd, &offset, left)
                    if w > 0 { left -= w; continue }
                    if w == 0 { throw FileSend.Failure(description: "the file ended early") }
                    switch errno {
                    case EINTR: continue
                    case EAGAIN:
                        var p = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
                        guard poll(&p, 1, 30_000) > 0 else {
                            throw FileSend.Failure(description: "the receiver took nothing for 30 s")
                        }
                    default:
                        throw FileSend.Failure(description: "sendfile: \(String(cString: strerror(errno)))")
                    }
                }
            }
            ok = true
            var end = channel.allocator.buffer(capacity: 8)
            end.writeString("END\r\n")
            return channel.eventLoop.makeSucceededFuture(end)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    /// A duplicate of the descriptor of `channel`'s socket: the open socket whose local and remote
    /// addresses are the channel's (a TCP connection is the only one with both), or nil.
    static func duplicateDescriptor(of channel: any Channel) -> Int32? {
        guard let local = channel.localAddress, let remote = channel.remoteAddress,
              let localKey = key(local), let remoteKey = key(remote), let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name) else { continue }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK,
                  address(fd, getsockname) == localKey, address(fd, getpeername) == remoteKey else { continue }
            let copy = dup(fd)
            // Checked again on the copy: the number may have been closed and reused meanwhile.
            guard copy >= 0 else { return nil }
            if address(copy, getsockname) == localKey && address(copy, getpeername) == remoteKey { return copy }
            close(copy)
        }
        return nil
    }

    /// "address port" of a NIO address.
    private static func key(_ a: SocketAddress) -> String? {
        guard let ip = a.ipAddress, let port = a.port else { return nil }
        return "\(ip) \(port)"
    }

    private static func text(_ c: [CChar]) -> String {
        String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "address port" of a socket's own (`getsockname`) or peer's (`getpeername`) address.
    private static func address(_ fd: Int32, _ get: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let got = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { get(fd, $0, &length) }
        }
        guard got == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafePointer(to: &storage) { p -> String? in
            switch Int32(p.pointee.ss_family) {
            case AF_INET:
                return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    var addr = a.pointee.sin_addr
                    guard inet_ntop(AF_INET, &addr, &text, socklen_t(text.count)) != nil else { return nil }
                    return "\(Self.text(text)) \(UInt16(bigEndian: a.pointee.sin_port))"
                }
            case AF_INET6:
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    var addr = a.pointee.sin6_addr
                    guard inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count)) != nil else { return nil }
                    return "\(Self.text(text)) \(UInt16(bigEndian: a.pointee.sin6_port))"
                }
            default:
                return nil
            }
        }
    }
}
