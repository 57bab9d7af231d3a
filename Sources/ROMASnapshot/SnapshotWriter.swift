import Dispatch
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// The writing half of a snapshot's copies, on a thread of its own, shared by every copy of a
/// run: the copying thread reads a chunk of a source file into one of the writer's buffers,
/// hashes it and submits it; the writer writes it to the destination while the next chunk is
/// read. A copy is therefore finished, from its source's point of view, when its last chunk is
/// read: the division can go back to `normal` while the writer still writes that file's tail.
///
/// With direct I/O (`O_DIRECT`, where the filesystem has it) the device takes the data straight
/// from the buffer: no copy into the page cache, no dirty pages for the kernel to write back
/// later (which would compete with the node's own writes), and a short fsync at the end. The
/// writer mostly waits for the device, so a snapshot costs about one core (read + SHA-256).
/// Without direct I/O the chunks go through the page cache with their writeback started at
/// once (`sync_file_range`).
///
/// A ring of `depth` aligned buffers, allocated and touched once per run, passes between the
/// threads; no data is copied between them.
///
/// `@unchecked Sendable`: a buffer belongs to exactly one thread at a time (a copier from
/// `acquire` to `submit`, the writer from taking the job off `jobs` to `release`) and the
/// semaphores order those hand-overs; `jobs`, `idle` and each `Output.failure` are guarded by `lock`; each
/// `Output`'s fields are written by the copier before its first job is queued and then read
/// only by the writer, until its completion is signalled.
public final class SnapshotWriter: @unchecked Sendable {
    public static let defaultDepth = 4
    public static let chunkSize = 4 << 20
    /// Direct I/O alignment of offsets, lengths and buffers.
    static let alignment = 4096

    private enum Job {
        case write(Output, buffer: Int, count: Int, offset: Int64)
        case end(Output, size: UInt64?)
        case stop
    }

    /// One destination file being written.
    final class Output: @unchecked Sendable {
        let fd: Int32
        let path: String
        let direct: Bool
        let completion = WriteCompletion()
        /// The first write error (guarded by the writer's `lock`).
        fileprivate var failure: SnapshotError?
        init(fd: Int32, path: String, direct: Bool) {
            self.fd = fd
            self.path = path
            self.direct = direct
        }
    }

    private let buffers: [UnsafeMutableRawBufferPointer]
    /// Free buffers. Created at 0 and signalled once per buffer: libdispatch traps when a
    /// semaphore is released below its initial value, and a run may end holding a buffer.
    private let free = DispatchSemaphore(value: 0)
    private let queued = DispatchSemaphore(value: 0)
    private let lock = PthreadMutex()
    private var jobs: [Job] = []
    private let ended = DispatchGroup()
    /// Numbers of the buffers not acquired (guarded by `lock`).
    private var idle: [Int]
    private var stopped = false
    private let directIO: Bool

    /// `scheduling` applies to the writer thread.
    public init(depth: Int = SnapshotWriter.defaultDepth, directIO: Bool = true, scheduling: BackgroundScheduling = .normal) {
        self.directIO = directIO
        buffers = (0..<max(2, depth)).map { _ in Self.allocateBuffer() }
        idle = Array(buffers.indices)
        for _ in buffers { free.signal() }
        ended.enter()
        // A thread of its own (not a pooled one): its scheduling policy dies with it.
        let entry = WriterThread(writer: self, scheduling: scheduling)
        BackgroundScheduling.spawnThread(name: "snapshot-write") { entry.run() }
    }

    /// Size and alignment of a transparent huge page on x86-64 and most arm64 kernels (a
    /// multiple of the direct-I/O `alignment`).
    static let hugePage = 2 << 20

    /// A chunk buffer on transparent huge pages where the kernel gives them (`madvise`, the
    /// usual setting), on 4 KiB pages otherwise. Direct I/O pins the buffer's pages for the
    /// device and unpins them when the write completes, page by page for small pages: 1,024
    /// unpins per 4 MiB chunk. That completion runs in the block layer's softirq, on whatever
    /// thread the CPU was running, and perf found it in the node's event loops (in their socket
    /// writes) during a snapshot. Two huge pages per chunk make it two unpins.
    static func allocateBuffer() -> UnsafeMutableRawBufferPointer {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: hugePage)
        #if os(Linux)
        _ = madvise(b.baseAddress, b.count, MADV_HUGEPAGE)
        #endif
        // Touch every page now, once per run, rather than faulting them in during a copy.
        b.initializeMemory(as: UInt8.self, repeating: 0)
        return b
    }

    /// Reached only after `stop` (the writer thread holds a reference until it ends).
    deinit {
        for b in buffers { b.deallocate() }
    }

    /// Starts writing a file on `fd` (opened for writing by the caller; the writer closes it).
    func begin(fd: Int32, path: String) -> Output {
        Output(fd: fd, path: path, direct: directIO && FileSystem.enableDirectIO(fd))
    }

    /// A free buffer of `chunkSize` bytes and its number (waits while every buffer is queued).
    /// Several copying threads may share one writer.
    func acquire() -> (index: Int, buffer: UnsafeMutableRawBufferPointer) {
        free.wait()
        let i = lock.withLock { idle.removeLast() }
        return (i, buffers[i])
    }

    /// Queues buffer `index`, with `count` valid bytes for `offset` of `output`.
    func submit(_ output: Output, buffer index: Int, count: Int, offset: Int64) {
        enqueue(.write(output, buffer: index, count: count, offset: offset))
    }

    /// The write error of `output` so far, if any (a copier stops early on it).
    func failure(of output: Output) -> SnapshotError? {
        lock.withLock { output.failure }
    }

    /// Gives back buffer `index` unused.
    func release(_ index: Int) {
        lock.withLock { idle.append(index) }
        free.signal()
    }

    /// Queues the end of `output`: after its last chunk the writer cuts the file to `size` (direct
    /// I/O pads the last chunk), closes it and completes `output.completion`. With `size == nil`
    /// (an abandoned copy) it only closes the file.
    func end(_ output: Output, size: UInt64?) {
        enqueue(.end(output, size: size))
    }

    /// Stops the writer after the jobs already queued, and waits for it.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        enqueue(.stop)
        ended.wait()
    }

    private func enqueue(_ job: Job) {
        lock.withLock { jobs.append(job) }
        queued.signal()
    }

    fileprivate func loop(scheduling: BackgroundScheduling) {
        scheduling.apply()
        // This thread only writes the snapshot's own new files (no page of the node's files is
        // ever locked by it): its I/O can wait for everybody else's.
        if scheduling == .idle { FileSystem.IOPriority.idle.apply() }
        loop: while true {
            queued.wait()
            let job = lock.withLock { jobs.removeFirst() }
            switch job {
            case .stop:
                break loop
            case let .write(out, buffer, count, offset):
                if failure(of: out) == nil {
                    do {
                        try write(out, buffers[buffer], count: count, at: offset)
                    } catch {
                        let e = error as? SnapshotError ?? SnapshotError("\(error)")
                        lock.withLock { out.failure = e }
                    }
                }
                release(buffer)
            case let .end(out, size):
                var error = failure(of: out)
                if error == nil, let size, out.direct, size % UInt64(Self.alignment) != 0, ftruncate(out.fd, off_t(size)) != 0 {
                    error = SnapshotError("cannot truncate \(out.path) to \(size) bytes: \(errorText(errno))")
                }
                if close(out.fd) != 0, error == nil {
                    error = SnapshotError("cannot close \(out.path): \(errorText(errno))")
                }
                out.completion.complete(error)
            }
        }
        ended.leave()
    }

    private func write(_ out: Output, _ buffer: UnsafeMutableRawBufferPointer, count: Int, at offset: Int64) throws {
        var length = count
        if out.direct && count % Self.alignment != 0 {
            // A file's last chunk: pad it to the alignment with zeros; `end` cuts them off.
            length = (count + Self.alignment - 1) / Self.alignment * Self.alignment
            (buffer.baseAddress! + count).initializeMemory(as: UInt8.self, repeating: 0, count: length - count)
        }
        var done = 0
        while done < length {
            let n = pwrite(out.fd, buffer.baseAddress! + done, length - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotError("cannot write \(out.path): \(errorText(errno))")
            }
            if n == 0 { throw SnapshotError("cannot write \(out.path): no progress") }
            done += n
        }
        if !out.direct {
            // Start writeback of this chunk now: the final fsync is then short and the disk
            // sees a steady stream instead of one burst that stalls the node's own writes.
            FileSystem.startWriteback(out.fd, offset: offset, length: Int64(count))
        }
    }
}

/// The end of one file's writes: `wait` returns once the writer has written and closed it, and
/// throws its write error.
///
/// `@unchecked Sendable`: `result` is written once under `lock` before `done` is signalled.
public final class WriteCompletion: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = PthreadMutex()
    private var finished = false
    private var result: SnapshotError?

    init() {}

    func complete(_ error: SnapshotError?) {
        lock.withLock {
            result = error
            finished = true
        }
        done.signal()
    }

    /// Waits for the file to be written and closed; throws its error.
    public func wait() throws {
        let already = lock.withLock { finished }
        if !already {
            done.wait()
            done.signal()   // later waits return at once
        }
        if let e = lock.withLock({ result }) { throw e }
    }
}

/// The writer thread's entry (a `Sendable` box around the writer).
private struct WriterThread: Sendable {
    let writer: SnapshotWriter
    let scheduling: BackgroundScheduling
    func run() { writer.loop(scheduling: scheduling) }
}
