import CTokyoCabinet
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A minimal pthread mutex for storage code (no Foundation, no NIO in this module).
///
/// `@unchecked Sendable`: the pthread mutex is the synchronisation primitive itself; it is
/// heap-allocated once and never moved.
public final class PthreadMutex: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    /// Threads blocked in `lock()` right now (a long pass holding the mutex slice by slice
    /// steps aside between slices only when someone waits).
    private let waiters = Atomic<Int>(0)

    public init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    @inline(__always) public func lock() {
        guard pthread_mutex_trylock(m) != 0 else { return }
        waiters.add(1, ordering: .relaxed)
        pthread_mutex_lock(m)
        waiters.subtract(1, ordering: .relaxed)
    }

    @inline(__always) public func unlock() { pthread_mutex_unlock(m) }

    /// True when another thread waits for the mutex.
    public var hasWaiters: Bool { waiters.load(ordering: .relaxed) > 0 }

    /// Runs `body` with the mutex held.
    @inline(__always) public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}

/// Small POSIX file helpers used by the storage and the snapshot tools.
public enum FileSystem {
    /// Entry names of `directory` (without `.` and `..`); empty when it cannot be read.
    public static func list(_ directory: String) -> [String] {
        guard let d = opendir(directory) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    /// True when `path` exists.
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// True when `path` is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o755) != 0 && errno != EEXIST {
                throw StorageError("cannot create directory \(built): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Size of the file at `path`, nil when it does not exist.
    public static func size(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_size)
    }

    /// Absolute form of `path` (relative to the current directory), without resolving links.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        var buf = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buf, buf.count) != nil else { return path }
        let cwd = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return normalize(cwd + "/" + path)
    }

    /// Removes `.` components and duplicate slashes; resolves `..` lexically.
    public static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for p in path.split(separator: "/") {
            if p == "." || p.isEmpty { continue }
            if p == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(p)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Reads a whole (small) file as text.
    public static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Replaces the file at `path` with `bytes`; false when it cannot be written.
    public static func writeFile(_ path: String, _ bytes: [UInt8]) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            done += n
        }
        return true
    }

    /// `rm -rf` (does not follow symbolic links).
    public static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in list(path) { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Starts writing back a range of a file without waiting for it (`sync_file_range`), so that
    /// a later fsync is short and the disk sees a steady stream rather than one burst.
    public static func startWriteback(_ fd: Int32, offset: Int64, length: Int64) {
        _ = roma_start_writeback(fd, Int(offset), Int(length))
    }

    /// Switches `fd` to direct I/O (`O_DIRECT`: writes go from the caller's buffer to the device,
    /// bypassing the page cache; offsets, lengths and buffers must be block-aligned). False when
    /// the filesystem does not support it (tmpfs, some overlay setups).
    public static func enableDirectIO(_ fd: Int32) -> Bool {
        roma_enable_direct_io(fd) == 0
    }

    /// Disk I/O priority of the calling thread (Linux `ioprio_set`).
    public enum IOPriority: Sendable {
        /// `IOPRIO_CLASS_IDLE`: served only when no other I/O waits.
        case idle
        /// Best effort, level 7: the lowest ordinary priority.
        case lowest

        /// Applies it to the calling thread; false when the kernel refused.
        @discardableResult
        public func apply() -> Bool {
            switch self {
            case .idle: return roma_set_io_priority(3, 0) == 0
            case .lowest: return roma_set_io_priority(2, 7) == 0
            }
        }

        /// The calling thread's I/O priority as `(class, level)`, or nil.
        public static var current: (ioclass: Int32, level: Int32)? {
            let v = roma_io_priority()
            return v < 0 ? nil : (v >> 13, v & 0x1fff)
        }
    }

    /// fsyncs a directory so that renames and creations in it are durable.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
