import ROMAStorage
@testable import ROMASnapshot

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed with its contents by `remove()`.
struct TempDir {
    let path: String

    init(_ tag: String = "cpdb-test") {
        var template = Array("/tmp/\(tag).XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    func remove() { TempDir.removeTree(path) }

    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            chmod(path, 0o755)
            for name in FileSystem.list(path) { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "cannot create \(path)")
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// Deterministic pseudo-random bytes.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8]()
    out.reserveCapacity(count)
    for _ in 0..<count {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        out.append(UInt8(truncatingIfNeeded: x))
    }
    return out
}

/// Creates a TokyoCabinet hash DB with `records` records at `path`.
func makeTCFile(_ path: String, records: Int, tag: String = "v") throws {
    let e = try TCEngine(path: path, options: TCOptions())
    for i in 0..<records {
        try e.put(key: Array("key\(i)".utf8), value: Array("\(tag)-\(i)".utf8))
    }
    try e.sync()
    try e.close()
}

/// A snapshot directory with `divnum` TC files `<i>.tc.<ts>` and its manifest, as cpdb writes it.
func makeSnapshot(in dir: String, divnum: Int = 3, ts: String = "20261125120000", node: String = "127.0.0.1_10001",
                  hash: String = "roma", sourceDir: String = "/data/127.0.0.1_10001/roma") throws -> SnapshotManifest {
    var files: [SnapshotManifest.File] = []
    for i in 0..<divnum {
        let name = "\(i).tc.\(ts)"
        let path = "\(dir)/\(name)"
        try makeTCFile(path, records: 10 + i, tag: "\(ts)-\(i)")
        let (digest, size) = try DurableFile.sha256(of: path)
        files.append(.init(division: i, file: name, source: "\(sourceDir)/\(i).tc", size: size, records: UInt64(10 + i),
                           sha256: digest, safecopyAt: "2026-11-25T12:00:00.000+00:00", copiedAt: "2026-11-25T12:00:00.001+00:00"))
    }
    let m = SnapshotManifest(node: node, host: "localhost", port: 10001, hash: hash, divnum: divnum, storageClass: "TCStorage",
                             engineOptions: "", storagePath: sourceDir, mode: "sequential", runTimestamp: ts,
                             startedAt: "2026-11-25T12:00:00.000+00:00", finishedAt: "2026-11-25T12:00:01.000+00:00", files: files)
    try m.write(toDirectory: dir)
    return m
}
