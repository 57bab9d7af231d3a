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
/// Where the descriptor is not found, the bytes go out as `FileRegion`s from the event loop
/// (`FileSendWrites`), which SwiftNIO also writes with `sendfile`. At most two regions of `chunk`
/// bytes are queued at once, the next one when one has left, from the event loop itself (a task
/// of its own each time, so the loop serves its other connections between regions), so the
/// socket's pace throttles the queueing (SwiftNIO's backpressure-file-io pattern, the other way
/// round); a bandwidth limit (`delay`) holds each region back as long as it says. The queueing
/// ran on an idle-priority pool thread before, which got no CPU whenever the node's event loops
/// and the receiver kept both cores busy: the socket then ran dry.
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
    /// Called before each chunk goes out with its size: the seconds it must wait (a bandwidth
    /// limit), 0 for at once. Must not block (on the fallback path it runs on the event loop).
    let delay: @Sendable (Int) -> Double
    /// Called on the event loop once the connection is closed (must not block).
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

    /// Runs `prepare` on the calling pool thread, then sends from it (or, failing that, from the
    /// channel's event loop). The future gives the line that ends the reply.
    func start(on channel: any Channel) throws -> EventLoopFuture<ByteBuffer> {
        let (fd, size) = try prepare()
        if let socket = OffLoopSend.duplicateDescriptor(of: channel) {
            return OffLoopSend(self, file: fd, size: size, socket: socket, channel: channel).run()
        }
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        channel.eventLoop.execute { [self] in
            FileSendWrites(self, fd: fd, size: size, channel: channel, promise: promise).pump()
        }
        return promise.futureResult
    }
}

/// The writes of one `FileSend`, on its channel's event loop (every method runs there).
private final class FileSendWrites {
    private let file: FileSend
    private let size: Int
    private let channel: any Channel
    private let promise: EventLoopPromise<ByteBuffer>
    /// Lends the descriptor to the regions: taken back (and closed by us) once none is queued.
    private let handle: NIOFileHandle
    /// The next byte to queue, regions queued and not yet written, the first failure.
    private var next = 0
    private var inFlight = 0
    private var failure: (any Error)?
    private var ended = false

    init(_ file: FileSend, fd: Int32, size: Int, channel: any Channel, promise: EventLoopPromise<ByteBuffer>) {
        self.file = file
        self.size = size
        self.channel = channel
        self.promise = promise
        handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        var head = channel.allocator.buffer(capacity: 32)
        head.writeString("FILE \(size)\r\n")
        inFlight = 1
        written(channel.writeAndFlush(head))
    }

    /// Queues regions while fewer than two are on their way; ends once none is and none is left.
    func pump() {
        let loop = channel.eventLoop.assumeIsolated()
        while failure == nil && inFlight < 2 && next < size {
            let (offset, n) = (next, min(file.chunk, size - next))
            next += n
            inFlight += 1
            let wait = file.delay(n)
            let write = { [self] in
                written(channel.writeAndFlush(IOData.fileRegion(FileRegion(fileHandle: handle, readerIndex: offset, endIndex: offset + n))))
            }
            if wait > 0 {
                loop.scheduleTask(in: .nanoseconds(Int64(min(wait, 60) * 1e9))) { write() }
            } else {
                write()
            }
        }
        guard inFlight == 0, failure != nil || next >= size, !ended else { return }
        ended = true
        if let own = try? handle.takeDescriptorOwnership() { close(own) }
        let (finish, ok) = (file.finish, failure == nil)
        let lingering = ok ? loop.scheduleTask(in: file.linger) { [channel] in channel.close(promise: nil) } : nil
        if !ok { channel.close(promise: nil) }
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            lingering?.cancel()
            finish(ok)
        }
        if let failure {
            promise.fail(failure)
        } else {
            var end = channel.allocator.buffer(capacity: 8)
            end.writeString("END\r\n")
            promise.succeed(end)
        }
    }

    private func written(_ f: EventLoopFuture<Void>) {
        f.assumeIsolated().whenComplete { [self] result in
            inFlight -= 1
            if case .failure(let e) = result, failure == nil {
                failure = e
                // Fails whatever is still queued at once.
                channel.close(promise: nil)
            }
            // The next region on a later task of the loop, not from inside this write's flush:
            // queued from here, SwiftNIO went on writing region after region in the same turn,
            // and the loop's other connections (clients) waited up to 27 ms.
            channel.eventLoop.assumeIsolated().execute { [self] in pump() }
        }
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
