import Dispatch
import ROMAStorage

/// The result of checking one snapshot file against its manifest entry.
public struct FileCheck: Sendable, Equatable {
    public var division: Int
    public var file: String
    public var path: String
    /// Empty when the file matches; otherwise one line per problem.
    public var problems: [String]
    public var size: UInt64?
    public var sha256: String?
    public var records: UInt64?

    public var ok: Bool { problems.isEmpty }
}

/// Recomputes sizes, SHA-256 checksums and record counts of a snapshot's files.
public enum Verifier {
    /// Checks every file of `manifest`, whose files live in `directory`. Files are checked in
    /// parallel; the result is in manifest order.
    public static func verify(_ manifest: SnapshotManifest, directory: String, checkRecords: Bool = true) -> [FileCheck] {
        let results = ResultSlots<FileCheck>(count: manifest.files.count)
        let files = manifest.files
        DispatchQueue.concurrentPerform(iterations: files.count) { i in
            results.set(i, check(files[i], directory: directory, checkRecords: checkRecords))
        }
        return results.values.compactMap { $0 }
    }

    /// Checks one file.
    public static func check(_ f: SnapshotManifest.File, directory: String, checkRecords: Bool = true) -> FileCheck {
        let path = "\(directory)/\(f.file)"
        var c = FileCheck(division: f.division, file: f.file, path: path, problems: [])
        guard FileSystem.exists(path) else {
            c.problems.append("missing")
            return c
        }
        do {
            let (digest, size) = try DurableFile.sha256(of: path)
            c.size = size
            c.sha256 = digest
            if size != f.size { c.problems.append("size is \(size) bytes, manifest says \(f.size)") }
            if digest != f.sha256 { c.problems.append("SHA-256 is \(digest), manifest says \(f.sha256)") }
        } catch {
            c.problems.append("\(error)")
            return c
        }
        if checkRecords && c.problems.isEmpty {
            do {
                let n = try TCReader(path: path).recordCount
                c.records = n
                if n != f.records { c.problems.append("holds \(n) records, manifest says \(f.records)") }
            } catch {
                c.problems.append("\(error)")
            }
        }
        return c
    }
}

/// Fixed slots filled by concurrent workers, each slot written once.
///
/// `@unchecked Sendable`: every access to `slots` happens under `lock`.
final class ResultSlots<T: Sendable>: @unchecked Sendable {
    private let lock = PthreadMutex()
    private var slots: [T?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ value: T) { lock.withLock { slots[i] = value } }

    var values: [T?] { lock.withLock { slots } }
}
