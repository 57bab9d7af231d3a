#if canImport(Glibc)
import Glibc
#endif

/// The storage directory's `lock` file (spec R6.3), made safe against crashes.
///
/// ROMA 1.3 refuses to open a directory whose `lock` exists and deletes it at clean close, so a
/// crashed node could never restart without an operator (§11 item 7). Here the file holds the
/// owner's PID and an exclusive `flock` for the owner's lifetime:
/// - held by a live process → refused, naming that PID and the fix;
/// - present but not held (its owner died) → a stale lock: taken over, and the caller is told;
/// - present, empty and not held (written by ROMA 1.3 or by hand) → refused, since a Ruby ROMA
///   process may still use the directory without holding any lock.
public final class LockFile: @unchecked Sendable {
    // @unchecked Sendable: fd is set in init and cleared only by release(), called once at close.
    public let path: String
    private var fd: Int32
    /// PID found in a stale lock that was taken over, if any.
    public let staleOwner: Int32?

    public init(directory: String) throws {
        path = directory + "/lock"
        let existed = FileSystem.exists(path)
        let previous = existed ? FileSystem.readText(path) ?? "" : ""
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw StorageError("cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let owner = previous.trimmingSpaces
            Glibc.close(fd)
            throw StorageError("Lock file already exists: \(path) is held by a running process (PID \(owner.isEmpty ? "unknown" : owner)). Stop that process first, or start this node on another port or storage path.")
        }
        let trimmed = previous.trimmingSpaces
        if existed && trimmed.isEmpty {
            Glibc.close(fd)
            throw StorageError("Lock file already exists: \(path) has no owner PID (written by ROMA 1.3 or by hand). If no ROMA process uses \(directory), remove the file and start again.")
        }
        staleOwner = existed ? Int32(trimmed) ?? -1 : nil
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = Array(pid.utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        _ = fsync(fd)
    }

    /// Removes the file and drops the lock (clean close).
    public func release() {
        guard fd >= 0 else { return }
        unlink(path)
        Glibc.close(fd)
        fd = -1
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}
