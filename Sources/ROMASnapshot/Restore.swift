import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// The storage directory's `lock` file, seen from an offline tool.
///
/// romad holds an exclusive `flock` on `<dir>/lock` while it runs (Sources/ROMAStorage/LockFile.swift),
/// and ROMA 1.3 leaves an empty `lock` while it runs. So: held → a node is running; present and
/// empty → possibly a ROMA 1.3 node (refused); present with a PID but not held → left by a node
/// that died (safe). While a `DirectoryLock` is held, a romad starting on the directory is refused.
public final class DirectoryLock {
    public let path: String
    private var fd: Int32
    private let created: Bool

    /// Checks, without taking it, that no process holds the lock; throws the reason otherwise.
    public static func check(directory: String) throws {
        let path = "\(directory)/lock"
        guard FileSystem.exists(path) else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotError("cannot open \(path): \(errorText(errno))") }
        defer { close(fd) }
        try inspect(fd: fd, path: path, directory: directory)
        flock(fd, LOCK_UN)
    }

    private static func inspect(fd: Int32, path: String, directory: String) throws {
        let owner = (FileSystem.readText(path) ?? "").filter { !$0.isWhitespace }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            throw SnapshotError("\(path) is held by a running process (PID \(owner.isEmpty ? "unknown" : owner)): stop the node using \(directory) first")
        }
        if owner.isEmpty {
            throw SnapshotError("\(path) exists and names no owner PID (ROMA 1.3 leaves such a file while it runs, or it was made by hand): make sure no ROMA process uses \(directory), then remove the file")
        }
    }

    /// Takes the lock for the duration of an offline operation.
    public init(directory: String) throws {
        path = "\(directory)/lock"
        let existed = FileSystem.exists(path)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SnapshotError("cannot open \(path): \(errorText(errno))") }
        created = !existed
        if existed {
            do { try DirectoryLock.inspect(fd: fd, path: path, directory: directory) } catch {
                close(fd)
                throw error
            }
        } else {
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                close(fd)
                throw SnapshotError("\(path) was just taken by another process: stop the node using \(directory) first")
            }
            let pid = Array("\(getpid())\n".utf8)
            _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
    }

    /// Drops the lock; a lock file this object created is removed.
    public func release() {
        guard fd >= 0 else { return }
        if created { unlink(path) }
        close(fd)
        fd = -1
    }

    deinit { release() }
}

/// What `cpdb restore` will do.
public struct RestorePlan: Sendable {
    public struct Item: Sendable, Equatable {
        public var division: Int
        /// Absolute path of the snapshot file.
        public var snapshot: String
        /// Name in the target directory (`<i>.tc`).
        public var target: String
        public var size: UInt64
        public var sha256: String
    }

    public var manifestPath: String
    public var manifest: SnapshotManifest
    /// Directory of the manifest and its snapshot files.
    public var snapshotDirectory: String
    /// The hash's data directory to restore into.
    public var targetDirectory: String
    /// Where the current files go (`<target>/before-restore-<YYYYMMDDhhmmss>`).
    public var asideDirectory: String
    /// Names in the target directory that will be moved aside (division and cache files).
    public var moveAside: [String]
    public var items: [Item]
}

/// Offline restore of a snapshot into a stopped node's data directory.
public enum Restore {
    /// True for names of division and cache files: `<n>.tc`, `<n>.cache.tc`.
    public static func isDataFileName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty, !parts[0].isEmpty, parts[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return (parts.count == 2 && parts[1] == "tc") || (parts.count == 3 && parts[1] == "cache" && parts[2] == "tc")
    }

    /// Works out the plan. `storagePath` (the node's `--storage-path`) restores into
    /// `<storagePath>/<node>/<hash>`; nil restores into the directory the snapshot was taken from.
    public static func plan(manifestPath: String, storagePath: String?, now: Int = Timestamp.now()) throws -> RestorePlan {
        let abs = FileSystem.absolute(manifestPath)
        let m = try SnapshotManifest.load(abs)
        let snapDir = directoryName(abs)
        let divisions = m.files.map(\.division).sorted()
        guard m.divnum > 0, divisions == Array(0..<m.divnum) else {
            throw SnapshotError("\(abs) does not list exactly one file for each of the \(m.divnum) divisions (found divisions \(divisions)); it cannot be restored as a whole")
        }
        let target: String
        if let storagePath {
            target = FileSystem.absolute(storagePath) + "/\(m.node)/\(m.hash)"
        } else {
            target = FileSystem.normalize(m.storagePath)
            for f in m.files where directoryName(f.source) != target {
                throw SnapshotError("\(abs): source \(f.source) is not in storage_path \(m.storagePath); pass --storage-path")
            }
        }
        if FileSystem.exists(target) && !FileSystem.isDirectory(target) {
            throw SnapshotError("\(target) exists and is not a directory")
        }
        let existing = FileSystem.list(target)
        var aside = "\(target)/before-restore-\(Timestamp.compact(now))"
        var n = 2
        while FileSystem.exists(aside) {
            aside = "\(target)/before-restore-\(Timestamp.compact(now))-\(n)"
            n += 1
        }
        let items = m.files.sorted { $0.division < $1.division }.map {
            RestorePlan.Item(division: $0.division, snapshot: "\(snapDir)/\($0.file)", target: "\($0.division).tc",
                             size: $0.size, sha256: $0.sha256)
        }
        return RestorePlan(manifestPath: abs, manifest: m, snapshotDirectory: snapDir, targetDirectory: target,
                           asideDirectory: aside, moveAside: existing.filter(isDataFileName), items: items)
    }

    /// Runs the plan: refuses while the directory is locked by a running node, verifies every
    /// snapshot file first (changing nothing on mismatch), moves the current division and cache
    /// files aside, copies the snapshot files into place durably and checks the copies. On a
    /// failure after files were moved, the previous files are put back.
    public static func execute(_ plan: RestorePlan, log: (String) -> Void) throws {
        let target = plan.targetDirectory
        if FileSystem.isDirectory(target) { try DirectoryLock.check(directory: target) }
        let bad = Verifier.verify(plan.manifest, directory: plan.snapshotDirectory).filter { !$0.ok }
        if !bad.isEmpty {
            let lines = bad.map { "  \($0.path): \($0.problems.joined(separator: "; "))" }.joined(separator: "\n")
            throw SnapshotError("refusing to restore: \(bad.count) snapshot file(s) do not match \(plan.manifestPath):\n\(lines)\nnothing was changed")
        }
        log("verified \(plan.items.count) snapshot files against \(plan.manifestPath)")
        try DurableFile.prepareDirectory(target)
        let lock = try DirectoryLock(directory: target)
        defer { lock.release() }

        // Move the current files aside.
        var moved: [String] = []
        var restored: [String] = []
        func rollback() {
            for name in restored { unlink("\(target)/\(name)") }
            for name in moved { rename("\(plan.asideDirectory)/\(name)", "\(target)/\(name)") }
            if moved.isEmpty || FileSystem.list(plan.asideDirectory).isEmpty { rmdir(plan.asideDirectory) }
            try? DurableFile.syncDirectory(target)
        }
        do {
            let current = FileSystem.list(target).filter(isDataFileName)
            if !current.isEmpty {
                if mkdir(plan.asideDirectory, 0o755) != 0 {
                    throw SnapshotError("cannot create \(plan.asideDirectory): \(errorText(errno))")
                }
                for name in current {
                    if rename("\(target)/\(name)", "\(plan.asideDirectory)/\(name)") != 0 {
                        throw SnapshotError("cannot move \(target)/\(name) aside: \(errorText(errno))")
                    }
                    moved.append(name)
                }
                try DurableFile.syncDirectory(plan.asideDirectory)
                try DurableFile.syncDirectory(target)
                log("moved aside \(moved.joined(separator: " ")) -> \(plan.asideDirectory)/")
            }
            for item in plan.items {
                try DurableFile.copy(from: item.snapshot, toDirectory: target, name: item.target, replace: false)
                restored.append(item.target)
                let (digest, size) = try DurableFile.sha256(of: "\(target)/\(item.target)")
                guard digest == item.sha256 && size == item.size else {
                    throw SnapshotError("\(target)/\(item.target) does not match the snapshot after copying (size \(size), SHA-256 \(digest))")
                }
                log("restored \(target)/\(item.target) <- \(item.snapshot) (\(item.size) bytes, SHA-256 \(item.sha256))")
            }
        } catch {
            rollback()
            throw SnapshotError("restore failed: \(error); the previous files were put back")
        }
    }
}
