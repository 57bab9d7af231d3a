import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// A failure of a snapshot operation, with a message fit for an operator.
public struct SnapshotError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `strerror` text of an errno value.
@inline(__always) func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// Crash-safe file creation: data goes to a hidden temporary name in the destination directory,
/// is fsynced, and only then gets its final name (link or rename), after which the directory is
/// fsynced. A file with a final name is therefore always complete; on failure the temporary file
/// is removed.
public enum DurableFile {
    /// Bytes per `sendfile` call (the progress callback runs after each).
    public static let chunkSize = 8 << 20

    /// Copies read and hash their chunks in slices of this size and yield the CPU after each.
    /// A `SCHED_IDLE` thread gives way at once to a thread that wakes up, but not to one that
    /// is already runnable: the scheduler (EEVDF) may pick the idle thread and let it run until
    /// the next tick (4 ms at HZ=250) while an event loop of the node waits (ftrace showed
    /// 3.7 ms). A slice takes about 0.05 ms to read and hash; `sched_yield` then hands the CPU
    /// to any runnable thread.
    static let slice = 64 << 10

    /// The temporary name used while `name` is being written.
    public static func temporaryName(for name: String) -> String { ".\(name).\(getpid()).tmp" }

    /// Copies `source` to `directory/name`. With `replace == false` an existing `name` is never
    /// overwritten (the copy fails instead). `progress` receives the number of bytes copied by
    /// each step; `shouldStop` is polled between steps (returning true aborts the copy).
    /// Returns the number of bytes copied.
    @discardableResult
    public static func copy(from source: String, toDirectory directory: String, name: String, replace: Bool = false,
                            progress: ((Int) -> Void)? = nil, shouldStop: (() -> Bool)? = nil) throws -> UInt64 {
        let pending = PendingFile(directory: directory, name: name, replace: replace)
        let size = try copy(from: source, to: pending, progress: progress, shouldStop: shouldStop)
        try commit([pending])
        return size
    }

    /// Reads `source` once, hashing it and handing its chunks to `writer`, which writes them to
    /// a temporary name in `directory`. Returns as soon as the last byte is read: the source
    /// may change from then on, while the writer may still be writing the copy's tail. The
    /// copy is neither fsynced nor named yet: `commit` waits for the writer, then does both, for
    /// many files at once (one journal commit instead of one per file); on a failure here the
    /// temporary file is removed. A snapshot thus releases each division as soon as it is read.
    public static func copyHashingDeferred(from source: String, toDirectory directory: String, name: String, replace: Bool = false,
                                           writer: SnapshotWriter,
                                           progress: ((Int) -> Void)? = nil, shouldStop: (() -> Bool)? = nil)
    throws -> (size: UInt64, sha256: String, pending: PendingFile) {
        var pending = PendingFile(directory: directory, name: name, replace: replace)
        let src = try openSource(source)
        defer { close(src.fd) }
        let out = writer.begin(fd: try createTemporary(pending), path: pending.temporaryPath)
        var hash = SHA256()
        var total: UInt64 = 0
        do {
            var pacer = BackgroundScheduling.StarvationGuard()
            while true {
                if let shouldStop, shouldStop() { throw SnapshotError("copy of \(source) interrupted") }
                if let e = writer.failure(of: out) { throw e }
                let (index, buffer) = writer.acquire()
                // Read and hash the chunk in slices, yielding the CPU after each: see `slice`.
                var n = 0
                var readError: Int32 = 0
                while n < buffer.count {
                    let want = min(slice, buffer.count - n)
                    let got = pread(src.fd, buffer.baseAddress! + n, want, off_t(total) + off_t(n))
                    if got < 0 {
                        if errno == EINTR { continue }
                        readError = errno
                        break
                    }
                    if got == 0 { break }
                    hash.update(UnsafeRawBufferPointer(rebasing: buffer[n..<(n + got)]))
                    n += got
                    pacer.pace()
                    if got < want { break }
                }
                if readError != 0 || n == 0 {
                    writer.release(index)
                    if readError != 0 { throw SnapshotError("cannot read \(source): \(errorText(readError))") }
                    break
                }
                writer.submit(out, buffer: index, count: n, offset: Int64(total))
                total += UInt64(n)
                progress?(n)
            }
            try checkUnchanged(source, src.size, copied: total)
        } catch {
            writer.end(out, size: nil)
            try? out.completion.wait()
            pending.discard()
            throw error
        }
        writer.end(out, size: total)
        pending.completion = out.completion
        return (total, SHA256.hex(hash.finalize()), pending)
    }

    /// Opens a regular file for copying; returns its descriptor and size.
    private static func openSource(_ source: String) throws -> (fd: Int32, size: UInt64) {
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotError("cannot open \(source): \(errorText(errno))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw SnapshotError("cannot stat \(source): \(errorText(code))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw SnapshotError("\(source) is not a regular file")
        }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        return (fd, UInt64(st.st_size))
    }

    /// Fails when the source's size moved during the copy (its division was not quiescent).
    private static func checkUnchanged(_ source: String, _ expected: UInt64, copied total: UInt64) throws {
        var after = stat()
        if stat(source, &after) == 0, UInt64(after.st_size) != total {
            throw SnapshotError("\(source) changed size during the copy (\(expected) → \(after.st_size) bytes, copied \(total)); the node is writing to a division that should be quiescent")
        }
    }

    /// A copy written under its temporary name, waiting for `commit`.
    public struct PendingFile: Sendable {
        public let directory: String
        public let name: String
        public let replace: Bool
        /// When set, the file is still being written by a `SnapshotWriter`.
        public var completion: WriteCompletion?
        public var finalPath: String { "\(directory)/\(name)" }
        public var temporaryPath: String { "\(directory)/\(DurableFile.temporaryName(for: name))" }

        /// Removes the temporary file.
        public func discard() { unlink(temporaryPath) }
    }

    /// Makes pending copies durable and gives them their final names: fsync of every temporary
    /// file, then the names (link, or rename with `replace`), then an fsync of each directory.
    /// On failure every temporary file not yet named is removed and the error names the file.
    /// `named` is called for each file once it carries its final name (so that a caller can
    /// remove exactly those after a later failure).
    public static func commit(_ files: [PendingFile], named onNamed: ((PendingFile) -> Void)? = nil) throws {
        var named = 0
        do {
            // Every file completely written first (a write error fails the whole commit).
            var writeError: Error?
            for f in files {
                do { try f.completion?.wait() } catch { if writeError == nil { writeError = error } }
            }
            if let writeError { throw writeError }
            for f in files {
                let fd = open(f.temporaryPath, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw SnapshotError("cannot open \(f.temporaryPath): \(errorText(errno))") }
                let rc = fsync(fd)
                let code = errno
                close(fd)
                if rc != 0 { throw SnapshotError("cannot fsync \(f.temporaryPath): \(errorText(code))") }
            }
            for f in files {
                try name(f.temporaryPath, as: f.finalPath, replace: f.replace)
                named += 1
                onNamed?(f)
            }
            for d in Set(files.map(\.directory)).sorted() { try syncDirectory(d) }
        } catch {
            for f in files.dropFirst(named) { f.discard() }
            throw error
        }
    }

    /// Gives the complete, fsynced `tmpPath` its final name. Without `replace` an existing file is
    /// never clobbered (link fails with EEXIST instead).
    private static func name(_ tmpPath: String, as finalPath: String, replace: Bool) throws {
        if replace {
            if rename(tmpPath, finalPath) != 0 { throw SnapshotError("cannot rename \(tmpPath) to \(finalPath): \(errorText(errno))") }
            return
        }
        if link(tmpPath, finalPath) != 0 {
            let code = errno
            if code == EEXIST { throw SnapshotError("\(finalPath) already exists") }
            if code == EPERM || code == EOPNOTSUPP || code == EXDEV {
                // Filesystem without hard links: check-then-rename.
                if FileSystem.exists(finalPath) { throw SnapshotError("\(finalPath) already exists") }
                if rename(tmpPath, finalPath) != 0 { throw SnapshotError("cannot rename \(tmpPath) to \(finalPath): \(errorText(errno))") }
                return
            }
            throw SnapshotError("cannot link \(tmpPath) to \(finalPath): \(errorText(code))")
        }
        unlink(tmpPath)
    }

    /// Copies `source` to `pending`'s temporary name (not fsynced, not named; removed on
    /// failure): `sendfile`, or buffered read/write where the filesystem has no in-kernel copy.
    private static func copy(from source: String, to pending: PendingFile,
                             progress: ((Int) -> Void)?, shouldStop: (() -> Bool)?) throws -> UInt64 {
        let src = try openSource(source)
        defer { close(src.fd) }
        return try withTemporaryFile(pending) { dst, tmpPath in
            var total: UInt64 = 0
            var useSendfile = true
            var buffer: UnsafeMutableRawBufferPointer? = nil
            defer { buffer?.deallocate() }
            while true {
                if let shouldStop, shouldStop() { throw SnapshotError("copy of \(source) interrupted") }
                var n: Int
                if useSendfile {
                    n = sendfile(dst, src.fd, nil, chunkSize)
                    if n < 0 && total == 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
                        useSendfile = false   // no in-kernel copy on this filesystem
                        continue
                    }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw SnapshotError("cannot copy \(source) to \(tmpPath): \(errorText(errno))")
                    }
                } else {
                    if buffer == nil { buffer = .allocate(byteCount: 1 << 20, alignment: 4096) }
                    repeat { n = read(src.fd, buffer!.baseAddress, buffer!.count) } while n < 0 && errno == EINTR
                    if n < 0 { throw SnapshotError("cannot read \(source): \(errorText(errno))") }
                    if n > 0 { try writeAll(dst, UnsafeRawBufferPointer(rebasing: buffer![0..<n]), path: tmpPath) }
                }
                if n == 0 { break }
                FileSystem.startWriteback(dst, offset: Int64(total), length: Int64(n))
                total += UInt64(n)
                progress?(n)
            }
            try checkUnchanged(source, src.size, copied: total)
            return total
        }
    }

    /// Writes `bytes` to `directory/name` durably (temporary file, fsync, link/rename, directory fsync).
    public static func write(_ bytes: [UInt8], toDirectory directory: String, name: String, replace: Bool = false) throws {
        try withTemporaryFile(directory: directory, name: name, replace: replace) { fd, tmpPath in
            try writeAll(fd, bytes, count: bytes.count, path: tmpPath)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], count: Int, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            try writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[0..<count]), path: path)
        }
    }

    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws {
        var off = 0
        while off < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotError("cannot write \(path): \(errorText(errno))")
            }
            off += n
        }
    }

    /// Creates `pending`'s temporary file and runs `body` on it, then closes it (no fsync, no
    /// name: see `commit`). Any failure removes the temporary file.
    static func withTemporaryFile<R>(_ pending: PendingFile, _ body: (Int32, String) throws -> R) throws -> R {
        let tmpPath = pending.temporaryPath
        var fd = try createTemporary(pending)
        do {
            let result = try body(fd, tmpPath)
            if close(fd) != 0 { fd = -1; throw SnapshotError("cannot close \(tmpPath): \(errorText(errno))") }
            return result
        } catch {
            if fd >= 0 { close(fd) }
            unlink(tmpPath)
            throw error
        }
    }

    /// Creates `pending`'s temporary file for writing (refusing when the final name exists and
    /// may not be replaced). Returns its descriptor.
    static func createTemporary(_ pending: PendingFile) throws -> Int32 {
        let tmpPath = pending.temporaryPath
        if !pending.replace && FileSystem.exists(pending.finalPath) { throw SnapshotError("\(pending.finalPath) already exists") }
        var fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 && errno == EEXIST {
            // Left by an earlier crashed process with our PID: it is ours to remove.
            unlink(tmpPath)
            fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else { throw SnapshotError("cannot create \(tmpPath): \(errorText(errno))") }
        return fd
    }

    /// Creates the temporary file, runs `body` on it, then fsyncs it, gives it its final name
    /// and fsyncs the directory (`commit`). Any failure removes the temporary file.
    @discardableResult
    static func withTemporaryFile<R>(directory: String, name: String, replace: Bool,
                                     _ body: (Int32, String) throws -> R) throws -> R {
        let pending = PendingFile(directory: directory, name: name, replace: replace)
        let result = try withTemporaryFile(pending, body)
        try commit([pending])
        return result
    }

    /// fsyncs `directory`, so that names created or removed in it are durable.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotError("cannot open directory \(directory): \(errorText(errno))") }
        defer { close(fd) }
        if fsync(fd) != 0 && errno != EINVAL { throw SnapshotError("cannot fsync directory \(directory): \(errorText(errno))") }
    }

    /// Creates `directory` (and parents) if needed and checks that files can be created in it.
    public static func prepareDirectory(_ directory: String) throws {
        if !FileSystem.isDirectory(directory) {
            // Walk up to the first existing ancestor to give a precise reason.
            var built = ""
            for part in directory.split(separator: "/") {
                built += "/" + part
                var st = stat()
                if stat(built, &st) == 0 {
                    if (st.st_mode & S_IFMT) != S_IFDIR {
                        throw SnapshotError("cannot create directory \(directory): \(built) is not a directory")
                    }
                    continue
                }
                if mkdir(built, 0o755) != 0 && errno != EEXIST {
                    throw SnapshotError("cannot create directory \(directory): \(built): \(errorText(errno))")
                }
            }
        }
        let probe = "\(directory)/.cpdb-probe.\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SnapshotError("cannot write to directory \(directory): \(errorText(errno))") }
        close(fd)
        unlink(probe)
    }

    /// Bytes available to an unprivileged writer on the filesystem holding `directory`.
    public static func availableBytes(_ directory: String) -> UInt64? {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { return nil }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    /// SHA-256 and size of the file at `path` (read in 1 MiB chunks), computed with libcrypto,
    /// which uses the CPU's SHA instructions: hashing is then cheaper than reading the file.
    public static func sha256(of path: String) throws -> (digest: String, size: UInt64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotError("cannot open \(path): \(errorText(errno))") }
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hash = SHA256()
        var size: UInt64 = 0
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotError("cannot read \(path): \(errorText(errno))")
            }
            if n == 0 { break }
            hash.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
            size += UInt64(n)
        }
        let digest = hash.finalize()
        return (SHA256.hex(digest), size)
    }

    /// Size of a regular file, nil when it does not exist.
    public static func fileSize(_ path: String) -> UInt64? { FileSystem.size(path) }
}
