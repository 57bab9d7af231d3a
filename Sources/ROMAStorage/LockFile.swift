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

    /// Takes the lock of `directory`.
    ///
    /// Races between openers are closed two ways: a lock file is only ever *created* whole (a
    /// temporary file holding the PID and already flocked is `link`ed into place, which fails if
    /// `lock` exists), so an empty lock is never one of ours; and after winning the flock the
    /// opener checks that `lock` still names the file it locked (a releasing owner unlinks it
    /// before closing), retrying otherwise.
    public init(directory: String) throws {
        path = directory + "/lock"
        let pidText = "\(getpid())\n"
        for _ in 0..<100 {
            let existing = open(path, O_RDWR | O_CLOEXEC)
            if existing < 0 {
                guard errno == ENOENT else { throw StorageError("cannot open \(path): \(String(cString: strerror(errno)))") }
                // Create: write the PID into a private file, lock it, then link it into place.
                let tmp = "\(directory)/.lock.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
                let t = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if t < 0 { throw StorageError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
                _ = Array(pidText.utf8).withUnsafeBytes { pwrite(t, $0.baseAddress, $0.count, 0) }
                _ = fsync(t)
                _ = flock(t, LOCK_EX)
                let linked = link(tmp, path) == 0
                let linkErrno = errno
                unlink(tmp)
                if linked {
                    FileSystem.syncDirectory(directory)
                    fd = t
                    staleOwner = nil
                    return
                }
                Glibc.close(t)
                if linkErrno != EEXIST { throw StorageError("cannot create \(path): \(String(cString: strerror(linkErrno)))") }
                continue  // someone else created it first: look at theirs
            }
            if flock(existing, LOCK_EX | LOCK_NB) != 0 {
                let owner = LockFile.contents(existing)
                Glibc.close(existing)
                throw StorageError("Lock file already exists: \(path) is held by a running process (PID \(owner.isEmpty ? "unknown" : owner)). Stop that process first, or start this node on another port or storage path.")
            }
            guard LockFile.sameFile(existing, path) else {
                Glibc.close(existing)  // its owner released it meanwhile; look again
                continue
            }
            let owner = LockFile.contents(existing)
            if owner.isEmpty {
                Glibc.close(existing)
                throw StorageError("Lock file already exists: \(path) has no owner PID (written by ROMA 1.3 or by hand). If no ROMA process uses \(directory), remove the file and start again.")
            }
            // Held by nobody: its owner died. Take it over.
            _ = ftruncate(existing, 0)
            _ = Array(pidText.utf8).withUnsafeBytes { pwrite(existing, $0.baseAddress, $0.count, 0) }
            _ = fsync(existing)
            fd = existing
            staleOwner = Int32(owner) ?? -1
            return
        }
        throw StorageError("cannot take \(path): it keeps changing (another process is starting and stopping on this directory)")
    }

    private static func contents(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 64)
        let n = pread(fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingSpaces : ""
    }

    private static func sameFile(_ fd: Int32, _ path: String) -> Bool {
        var a = stat(), b = stat()
        guard fstat(fd, &a) == 0, stat(path, &b) == 0 else { return false }
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }

    /// Removes the file and drops the lock (clean close). The name goes first, so an opener that
    /// wins the flock afterwards sees that `lock` no longer names its file and retries.
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
