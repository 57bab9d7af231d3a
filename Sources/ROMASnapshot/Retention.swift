import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// `--keep N`: keeps the N newest snapshot runs of a node's hash in a directory.
///
/// A run is identified by its manifest (`snapshot-<YYYYMMDDhhmmss>.json`). Only runs of the same
/// node and hash are considered; snapshot files without a manifest (taken by ROMA's cpdb, or by
/// a failed run) and unreadable manifests are never touched.
public enum Retention {
    /// One run found in a directory.
    public struct Run: Sendable, Equatable {
        public var manifestName: String
        public var runTimestamp: String
        public var files: [String]

        public init(manifestName: String, runTimestamp: String, files: [String]) {
            self.manifestName = manifestName
            self.runTimestamp = runTimestamp
            self.files = files
        }
    }

    /// The runs to delete so that the `keep` newest remain (newest = latest timestamp; ties by name).
    public static func runsToDelete(_ runs: [Run], keep: Int) -> [Run] {
        precondition(keep >= 1, "keep must be at least 1")
        let sorted = runs.sorted { ($0.runTimestamp, $0.manifestName) > ($1.runTimestamp, $1.manifestName) }
        return Array(sorted.dropFirst(keep)).sorted { ($0.runTimestamp, $0.manifestName) < ($1.runTimestamp, $1.manifestName) }
    }

    /// True for a snapshot file name cpdb creates: `<division>.tc.<YYYYMMDDhhmmss>`.
    public static func isSnapshotFileName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1] == "tc", !parts[0].isEmpty,
              parts[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return Timestamp.isCompact(parts[2])
    }

    /// The runs of `node`/`hash` whose manifests are in `directory`.
    public static func runs(in directory: String, node: String, hash: String) -> [Run] {
        var out: [Run] = []
        for name in FileSystem.list(directory) {
            guard let ts = SnapshotManifest.runTimestamp(inFileName: name),
                  let m = try? SnapshotManifest.load("\(directory)/\(name)"),
                  m.node == node, m.hash == hash else { continue }
            out.append(Run(manifestName: name, runTimestamp: ts, files: m.files.map(\.file)))
        }
        return out
    }

    /// Deletes all but the `keep` newest runs of `node`/`hash` in `directory`: the manifest first
    /// (so no manifest ever names a deleted file), then its snapshot files. Returns the deleted paths.
    public static func apply(directory: String, node: String, hash: String, keep: Int) throws -> [String] {
        var deleted: [String] = []
        for run in runsToDelete(runs(in: directory, node: node, hash: hash), keep: keep) {
            let m = "\(directory)/\(run.manifestName)"
            guard unlink(m) == 0 else { throw SnapshotError("cannot delete \(m): \(errorText(errno))") }
            deleted.append(m)
            for f in run.files where isSnapshotFileName(f) {
                let p = "\(directory)/\(f)"
                if unlink(p) == 0 {
                    deleted.append(p)
                } else if errno != ENOENT {
                    throw SnapshotError("cannot delete \(p): \(errorText(errno))")
                }
            }
        }
        if !deleted.isEmpty { try DurableFile.syncDirectory(directory) }
        return deleted
    }
}
