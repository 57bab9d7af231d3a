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

    /// The temporary name used while `name` is being written.
    public static func temporaryName(for name: String) -> String { ".\(name).\(getpid()).tmp" }

    /// Copies `source` to `directory/name`. With `replace == false` an existing `name` is never
    /// overwritten (the copy fails instead). `progress` receives the number of bytes copied by
    /// each step; `shouldStop` is polled between steps (returning true aborts the copy).
    /// Returns the number of bytes copied.
    @discardableResult
    public static func copy(from source: String, toDirectory directory: String, name: String, replace: Bool = false,
                            progress: ((Int) -> Void)? = nil, shouldStop: (() -> Bool)? = nil) throws -> UInt64 {
        try copy(from: source, toDirectory: directory, name: name, replace: replace, progress: progress,
                 shouldStop: shouldStop, hasher: nil)
    }

    /// `copy` that also computes the copy's SHA-256 in the same pass (read, hash, write), so the
    /// file is not read a second time; parallel copies then hash in parallel too.
    public static func copyHashing(from source: String, toDirectory directory: String, name: String, replace: Bool = false,
                                   progress: ((Int) -> Void)? = nil, shouldStop: (() -> Bool)? = nil) throws -> (size: UInt64, sha256: String) {
        var hash = SHA256()
        let size = try withUnsafeMutablePointer(to: &hash) { h in
            try copy(from: source, toDirectory: directory, name: name, replace: replace, progress: progress,
                     shouldStop: shouldStop, hasher: h)
        }
        return (size, SHA256.hex(hash.finalize()))
    }

    private static func copy(from source: String, toDirectory directory: String, name: String, replace: Bool,
                             progress: ((Int) -> Void)?, shouldStop: (() -> Bool)?,
                             hasher: UnsafeMutablePointer<SHA256>?) throws -> UInt64 {
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw SnapshotError("cannot open \(source): \(errorText(errno))") }
        defer { close(src) }
        var st = stat()
        guard fstat(src, &st) == 0 else { throw SnapshotError("cannot stat \(source): \(errorText(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw SnapshotError("\(source) is not a regular file") }
        let expected = UInt64(st.st_size)
        let copied = try withTemporaryFile(directory: directory, name: name, replace: replace) { dst, tmpPath in
            var total: UInt64 = 0
            var useSendfile = hasher == nil
            var buffer: [UInt8] = []
            while true {
                if let shouldStop, shouldStop() { throw SnapshotError("copy of \(source) interrupted") }
                var n: Int
                if useSendfile {
                    n = sendfile(dst, src, nil, chunkSize)
                    if n < 0 && total == 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
                        // Filesystem without in-kernel copy: fall back to buffered read/write.
                        useSendfile = false
                        continue
                    }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw SnapshotError("cannot copy \(source) to \(tmpPath): \(errorText(errno))")
                    }
                } else {
                    if buffer.isEmpty { buffer = [UInt8](repeating: 0, count: 1 << 20) }
                    n = buffer.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw SnapshotError("cannot read \(source): \(errorText(errno))")
                    }
                    if n > 0 {
                        if let hasher { buffer.withUnsafeBytes { hasher.pointee.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
                        try writeAll(dst, buffer, count: n, path: tmpPath)
                    }
                }
                if n == 0 { break }
                // Start writeback of this chunk now: the final fsync is then short and the disk
                // sees a steady stream instead of one burst that stalls the node's own writes.
                FileSystem.startWriteback(dst, offset: Int64(total), length: Int64(n))
                total += UInt64(n)
                progress?(n)
            }
            var after = stat()
            if fstat(src, &after) == 0, UInt64(after.st_size) != total {
                throw SnapshotError("\(source) changed size during the copy (\(expected) → \(after.st_size) bytes, copied \(total)); the node is writing to a division that should be quiescent")
            }
            return total
        }
        return copied
    }

    /// Writes `bytes` to `directory/name` durably (temporary file, fsync, link/rename, directory fsync).
    public static func write(_ bytes: [UInt8], toDirectory directory: String, name: String, replace: Bool = false) throws {
        try withTemporaryFile(directory: directory, name: name, replace: replace) { fd, tmpPath in
            try writeAll(fd, bytes, count: bytes.count, path: tmpPath)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], count: Int, path: String) throws {
        try bytes.withUnsafeBytes { raw in
            var off = 0
            while off < count {
                let n = Glibc.write(fd, raw.baseAddress! + off, count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SnapshotError("cannot write \(path): \(errorText(errno))")
                }
                off += n
            }
        }
    }

    /// Creates the temporary file, runs `body` on it, fsyncs and closes it, gives it its final
    /// name and fsyncs the directory. Any failure removes the temporary file.
    @discardableResult
    static func withTemporaryFile<R>(directory: String, name: String, replace: Bool,
                                     _ body: (Int32, String) throws -> R) throws -> R {
        let finalPath = "\(directory)/\(name)"
        let tmpPath = "\(directory)/\(temporaryName(for: name))"
        if !replace && FileSystem.exists(finalPath) { throw SnapshotError("\(finalPath) already exists") }
        var fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 && errno == EEXIST {
            // Left by an earlier crashed process with our PID: it is ours to remove.
            unlink(tmpPath)
            fd = open(tmpPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        }
        guard fd >= 0 else { throw SnapshotError("cannot create \(tmpPath): \(errorText(errno))") }
        var open = true
        do {
            let result = try body(fd, tmpPath)
            if fsync(fd) != 0 { throw SnapshotError("cannot fsync \(tmpPath): \(errorText(errno))") }
            let rc = close(fd)
            open = false
            if rc != 0 { throw SnapshotError("cannot close \(tmpPath): \(errorText(errno))") }
            if replace {
                if rename(tmpPath, finalPath) != 0 { throw SnapshotError("cannot rename \(tmpPath) to \(finalPath): \(errorText(errno))") }
            } else {
                // link() fails with EEXIST instead of replacing: an existing file is never clobbered.
                if link(tmpPath, finalPath) != 0 {
                    let code = errno
                    if code == EEXIST { throw SnapshotError("\(finalPath) already exists") }
                    if code == EPERM || code == EOPNOTSUPP || code == EXDEV {
                        // Filesystem without hard links: check-then-rename.
                        if FileSystem.exists(finalPath) { throw SnapshotError("\(finalPath) already exists") }
                        if rename(tmpPath, finalPath) != 0 { throw SnapshotError("cannot rename \(tmpPath) to \(finalPath): \(errorText(errno))") }
                    } else {
                        throw SnapshotError("cannot link \(tmpPath) to \(finalPath): \(errorText(code))")
                    }
                }
                unlink(tmpPath)
            }
            try syncDirectory(directory)
            return result
        } catch {
            if open { close(fd) }
            unlink(tmpPath)
            throw error
        }
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
