import FoundationEssentials
import ROMAStorage

/// The description of one snapshot run of one hash, written as `snapshot-<timestamp>.json`
/// beside the snapshot files (atomically, after every file was copied and checksummed).
///
/// JSON keys are snake_case. Snapshot file names are relative to the manifest's directory, so a
/// snapshot directory can be moved or archived as a whole and still verify/restore.
public struct SnapshotManifest: Codable, Equatable, Sendable {
    /// Identifies the document type and version.
    public var format: String = SnapshotManifest.formatID
    /// Node id `<address>_<port>`.
    public var node: String
    /// Host and port cpdb talked to.
    public var host: String
    public var port: Int
    /// Hash (namespace) name, e.g. `roma`.
    public var hash: String
    /// Number of division files.
    public var divnum: Int
    /// `storage.st_class` (always `TCStorage`).
    public var storageClass: String
    /// `storage.option`: the TokyoCabinet tuning string the node uses (empty = TC defaults).
    public var engineOptions: String
    /// Absolute directory the division files were copied from.
    public var storagePath: String
    /// `sequential` (one division at a time, ROMA's way) or `consistent` (one point-in-time cut).
    public var mode: String
    /// `YYYYMMDDhhmmss` of the run (the manifest's name).
    public var runTimestamp: String
    /// Local ISO 8601 times.
    public var startedAt: String
    public var finishedAt: String
    public var files: [File]

    public struct File: Codable, Equatable, Sendable {
        public var division: Int
        /// Snapshot file name, relative to the manifest's directory (`<i>.tc.<YYYYMMDDhhmmss>`).
        public var file: String
        /// Absolute path of the division file it was copied from.
        public var source: String
        public var size: UInt64
        /// Record count of the copy (TokyoCabinet `rnum`).
        public var records: UInt64
        /// Lower-case hex SHA-256 of the copy.
        public var sha256: String
        /// When the division entered safecopy and when the copy was taken (local ISO 8601).
        public var safecopyAt: String
        public var copiedAt: String

        public init(division: Int, file: String, source: String, size: UInt64, records: UInt64, sha256: String,
                    safecopyAt: String, copiedAt: String) {
            self.division = division
            self.file = file
            self.source = source
            self.size = size
            self.records = records
            self.sha256 = sha256
            self.safecopyAt = safecopyAt
            self.copiedAt = copiedAt
        }
    }

    public static let formatID = "swiftroma-cpdb-manifest/1"

    public init(node: String, host: String, port: Int, hash: String, divnum: Int, storageClass: String,
                engineOptions: String, storagePath: String, mode: String, runTimestamp: String,
                startedAt: String, finishedAt: String, files: [File]) {
        self.node = node
        self.host = host
        self.port = port
        self.hash = hash
        self.divnum = divnum
        self.storageClass = storageClass
        self.engineOptions = engineOptions
        self.storagePath = storagePath
        self.mode = mode
        self.runTimestamp = runTimestamp
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.files = files
    }

    /// `snapshot-<runTimestamp>.json`.
    public var fileName: String { SnapshotManifest.fileName(runTimestamp: runTimestamp) }

    public static func fileName(runTimestamp: String) -> String { "snapshot-\(runTimestamp).json" }

    /// The run timestamp in a manifest file name, nil for other names.
    public static func runTimestamp(inFileName name: String) -> String? {
        guard name.hasPrefix("snapshot-"), name.hasSuffix(".json") else { return nil }
        let ts = name.dropFirst("snapshot-".count).dropLast(".json".count)
        return Timestamp.isCompact(ts) ? String(ts) : nil
    }

    /// Pretty, key-sorted JSON with a final newline.
    public func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(self)) + [10]
    }

    /// Decodes a manifest; the error names what is wrong.
    public static func decode(_ bytes: [UInt8], path: String = "manifest") throws -> SnapshotManifest {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        let m: SnapshotManifest
        do {
            m = try d.decode(SnapshotManifest.self, from: Data(bytes))
        } catch {
            throw SnapshotError("\(path) is not a cpdb manifest: \(SnapshotManifest.describe(error))")
        }
        guard m.format == formatID else {
            throw SnapshotError("\(path): unsupported manifest format \(m.format) (expected \(formatID))")
        }
        for f in m.files where f.file.contains("/") || f.file.hasPrefix(".") {
            throw SnapshotError("\(path): invalid snapshot file name \(f.file)")
        }
        return m
    }

    /// Reads and decodes the manifest at `path`.
    public static func load(_ path: String) throws -> SnapshotManifest {
        guard FileSystem.exists(path) else { throw SnapshotError("\(path): no such file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SnapshotError("cannot read \(path)")
        }
        return try decode(Array(data), path: path)
    }

    /// Writes the manifest into `directory` atomically; never replaces an existing manifest.
    public func write(toDirectory directory: String) throws {
        try DurableFile.write(try encoded(), toDirectory: directory, name: fileName, replace: false)
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing key \(key.stringValue)"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx), DecodingError.dataCorrupted(let ctx):
            let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? ctx.debugDescription : "\(path): \(ctx.debugDescription)"
        default: return "\(error)"
        }
    }
}

/// Directory part of a path (`/a/b/c` → `/a/b`).
public func directoryName(_ path: String) -> String {
    guard let i = path.lastIndex(of: "/") else { return "." }
    return i == path.startIndex ? "/" : String(path[..<i])
}

/// Last path component.
public func baseName(_ path: String) -> String {
    guard let i = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: i)...])
}
