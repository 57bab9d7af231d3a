import Testing
import ROMAStorage
@testable import ROMASnapshot

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ManifestTests {
    func sample() -> SnapshotManifest {
        SnapshotManifest(node: "127.0.0.1_10001", host: "localhost", port: 10001, hash: "roma", divnum: 2,
                         storageClass: "TCStorage", engineOptions: "bnum=5000#opts=l", storagePath: "/d/127.0.0.1_10001/roma",
                         mode: "consistent", runTimestamp: "20261125154606", startedAt: "2026-11-25T15:46:06.302+00:00",
                         finishedAt: "2026-11-25T15:46:07.000+00:00",
                         files: [
                            .init(division: 0, file: "0.tc.20261125154606", source: "/d/127.0.0.1_10001/roma/0.tc", size: 1940480,
                                  records: 9800, sha256: String(repeating: "a", count: 64), safecopyAt: "x", copiedAt: "y"),
                            .init(division: 1, file: "1.tc.20261125154606", source: "/d/127.0.0.1_10001/roma/1.tc", size: 1874784,
                                  records: 9154, sha256: String(repeating: "b", count: 64), safecopyAt: "x", copiedAt: "y"),
                         ])
    }

    @Test func roundTrip() throws {
        let m = sample()
        let bytes = try m.encoded()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"engine_options\" : \"bnum=5000#opts=l\""))
        #expect(text.contains("\"sha256\""))
        #expect(text.contains("\"/d/127.0.0.1_10001/roma/0.tc\""), "slashes are not escaped")
        #expect(text.hasSuffix("}\n"))
        #expect(try SnapshotManifest.decode(bytes) == m)
        #expect(m.fileName == "snapshot-20261125154606.json")
    }

    @Test func fileWriteAndLoad() throws {
        let d = TempDir()
        defer { d.remove() }
        let m = sample()
        try m.write(toDirectory: d.path)
        #expect(try SnapshotManifest.load("\(d.path)/\(m.fileName)") == m)
        #expect(FileSystem.list(d.path) == [m.fileName], "no temporary file left")
        #expect(throws: SnapshotError.self) { try m.write(toDirectory: d.path) }   // never replaced
        #expect(FileSystem.list(d.path) == [m.fileName])
    }

    @Test func rejectsForeignDocuments() {
        #expect(throws: SnapshotError.self) { try SnapshotManifest.decode(Array("{}".utf8)) }
        #expect(throws: SnapshotError.self) { try SnapshotManifest.decode(Array("not json".utf8)) }
        var m = sample()
        m.format = "something-else/9"
        #expect(throws: SnapshotError.self) { try SnapshotManifest.decode(try m.encoded()) }
        m = sample()
        m.files[0].file = "../0.tc"
        #expect(throws: SnapshotError.self) { try SnapshotManifest.decode(try m.encoded()) }
    }

    @Test func manifestNames() {
        #expect(SnapshotManifest.runTimestamp(inFileName: "snapshot-20261125154606.json") == "20261125154606")
        #expect(SnapshotManifest.runTimestamp(inFileName: "snapshot-2026112515460.json") == nil)
        #expect(SnapshotManifest.runTimestamp(inFileName: "snapshot-2026112515460x.json") == nil)
        #expect(SnapshotManifest.runTimestamp(inFileName: "0.tc.20261125154606") == nil)
    }
}

@Suite struct DurableCopyTests {
    @Test func copyIsCompleteAndLeavesNoTemporary() throws {
        let d = TempDir()
        defer { d.remove() }
        // Larger than one sendfile chunk, odd size.
        let content = pseudoRandomBytes(DurableFile.chunkSize + 12345, seed: 42)
        writeFile("\(d.path)/0.tc", content)
        try FileSystem.makeDirectories("\(d.path)/dest")
        var progressed = 0
        let n = try DurableFile.copy(from: "\(d.path)/0.tc", toDirectory: "\(d.path)/dest", name: "0.tc.20261125000000",
                                     progress: { progressed += $0 })
        #expect(n == UInt64(content.count))
        #expect(progressed == content.count)
        #expect(readFile("\(d.path)/dest/0.tc.20261125000000") == content)
        #expect(FileSystem.list("\(d.path)/dest") == ["0.tc.20261125000000"])
    }

    @Test func neverReplacesAnExistingSnapshot() throws {
        let d = TempDir()
        defer { d.remove() }
        writeFile("\(d.path)/src", Array("new".utf8))
        writeFile("\(d.path)/0.tc.1", Array("old".utf8))
        #expect(throws: SnapshotError.self) {
            try DurableFile.copy(from: "\(d.path)/src", toDirectory: d.path, name: "0.tc.1")
        }
        #expect(readFile("\(d.path)/0.tc.1") == Array("old".utf8))
        #expect(FileSystem.list(d.path) == ["0.tc.1", "src"])
        // replace: true renames over it.
        try DurableFile.copy(from: "\(d.path)/src", toDirectory: d.path, name: "0.tc.1", replace: true)
        #expect(readFile("\(d.path)/0.tc.1") == Array("new".utf8))
        #expect(FileSystem.list(d.path) == ["0.tc.1", "src"])
    }

    @Test func failuresLeaveNothingBehind() throws {
        let d = TempDir()
        defer { d.remove() }
        writeFile("\(d.path)/src", pseudoRandomBytes(1000, seed: 1))
        // Missing source.
        #expect(throws: SnapshotError.self) { try DurableFile.copy(from: "\(d.path)/nope", toDirectory: d.path, name: "x") }
        // Missing destination directory.
        #expect(throws: SnapshotError.self) { try DurableFile.copy(from: "\(d.path)/src", toDirectory: "\(d.path)/nodir", name: "x") }
        // Interrupted copy removes its temporary file.
        #expect(throws: SnapshotError.self) {
            try DurableFile.copy(from: "\(d.path)/src", toDirectory: d.path, name: "x", shouldStop: { true })
        }
        #expect(FileSystem.list(d.path) == ["src"])
    }

    @Test func prepareDirectoryExplainsWhyNot() throws {
        let d = TempDir()
        defer { d.remove() }
        writeFile("\(d.path)/afile", [1])
        try DurableFile.prepareDirectory("\(d.path)/a/b/c")
        #expect(FileSystem.isDirectory("\(d.path)/a/b/c"))
        #expect(FileSystem.list("\(d.path)/a/b/c").isEmpty, "the write probe is removed")
        do {
            try DurableFile.prepareDirectory("\(d.path)/afile/sub")
            Issue.record("a path below a regular file must be refused")
        } catch let e as SnapshotError {
            #expect(e.message.contains("is not a directory"))
        }
    }
}

@Suite struct VerifyTests {
    @Test func freshSnapshotVerifies() throws {
        let d = TempDir()
        defer { d.remove() }
        let m = try makeSnapshot(in: d.path)
        let checks = Verifier.verify(m, directory: d.path)
        #expect(checks.count == 3)
        #expect(checks.allSatisfy { $0.ok })
        #expect(checks.map(\.records) == [10, 11, 12])
    }

    @Test func detectsAFlippedByteAMissingFileAndAnExtraByte() throws {
        let d = TempDir()
        defer { d.remove() }
        let m = try makeSnapshot(in: d.path)
        // Flip one byte in the middle of division 1's snapshot.
        let p1 = "\(d.path)/\(m.files[1].file)"
        var bytes = readFile(p1)!
        bytes[bytes.count / 2] ^= 0x01
        writeFile(p1, bytes)
        var checks = Verifier.verify(m, directory: d.path)
        #expect(checks.map(\.ok) == [true, false, true])
        #expect(checks[1].problems.count == 1)
        #expect(checks[1].problems[0].contains("SHA-256"))

        unlink("\(d.path)/\(m.files[2].file)")
        let p0 = "\(d.path)/\(m.files[0].file)"
        writeFile(p0, readFile(p0)! + [0])
        checks = Verifier.verify(m, directory: d.path)
        #expect(checks.map(\.ok) == [false, false, false])
        #expect(checks[0].problems.contains { $0.contains("size is") })
        #expect(checks[2].problems == ["missing"])
    }
}

@Suite struct RetentionTests {
    func run(_ ts: String) -> Retention.Run {
        Retention.Run(manifestName: "snapshot-\(ts).json", runTimestamp: ts, files: ["0.tc.\(ts)"])
    }

    @Test func keepsTheNewest() {
        let runs = ["20261125120000", "20261125120500", "20261124235959", "20261125130000", "20261126000000"].map(run)
        #expect(Retention.runsToDelete(runs, keep: 2).map(\.runTimestamp) == ["20261124235959", "20261125120000", "20261125120500"])
        #expect(Retention.runsToDelete(runs, keep: 5).isEmpty)
        #expect(Retention.runsToDelete(runs, keep: 9).isEmpty)
        #expect(Retention.runsToDelete(runs, keep: 1).count == 4)
        #expect(Retention.runsToDelete([], keep: 1).isEmpty)
    }

    @Test func snapshotFileNames() {
        #expect(Retention.isSnapshotFileName("0.tc.20261125120000"))
        #expect(Retention.isSnapshotFileName("12.tc.20261125120000"))
        #expect(!Retention.isSnapshotFileName("0.tc"))
        #expect(!Retention.isSnapshotFileName("0.cache.tc"))
        #expect(!Retention.isSnapshotFileName("x.tc.20261125120000"))
        #expect(!Retention.isSnapshotFileName("0.tc.2026112512000"))
        #expect(!Retention.isSnapshotFileName("status.log.1"))
    }

    @Test func appliesOnlyToTheSameNodeAndHash() throws {
        let d = TempDir()
        defer { d.remove() }
        for ts in ["20261125120000", "20261125120100", "20261125120200"] {
            _ = try makeSnapshot(in: d.path, divnum: 2, ts: ts)
        }
        // Another node's run and a file no manifest mentions (e.g. taken by ROMA's cpdb).
        let other = TempDir()
        defer { other.remove() }
        _ = try makeSnapshot(in: other.path, divnum: 2, ts: "20261101000000", node: "127.0.0.1_10002")
        for f in FileSystem.list(other.path) { rename("\(other.path)/\(f)", "\(d.path)/\(f)") }
        writeFile("\(d.path)/0.tc.20200101000000", [1, 2, 3])

        let deleted = try Retention.apply(directory: d.path, node: "127.0.0.1_10001", hash: "roma", keep: 2)
        #expect(deleted.map(baseName).sorted() == ["0.tc.20261125120000", "1.tc.20261125120000", "snapshot-20261125120000.json"])
        let left = FileSystem.list(d.path)
        #expect(left.contains("snapshot-20261125120100.json"))
        #expect(left.contains("snapshot-20261125120200.json"))
        #expect(left.contains("snapshot-20261101000000.json"), "other node's run is untouched")
        #expect(left.contains("0.tc.20261101000000"))
        #expect(left.contains("0.tc.20200101000000"), "files without a manifest are untouched")
        #expect(left.count == 10)
    }
}

@Suite struct RestoreTests {
    /// A node directory with live files that differ from the snapshot, plus a leftover cache.
    func setUp(_ root: String) throws -> (manifest: String, data: String, m: SnapshotManifest) {
        let data = "\(root)/data/127.0.0.1_10001/roma"
        try FileSystem.makeDirectories(data)
        let snap = "\(root)/snap"
        try FileSystem.makeDirectories(snap)
        let m = try makeSnapshot(in: snap, divnum: 3, sourceDir: data)
        for i in 0..<3 { try makeTCFile("\(data)/\(i).tc", records: 99, tag: "live") }
        try makeTCFile("\(data)/1.cache.tc", records: 5, tag: "cache")
        writeFile("\(data)/status.log.1", Array("x\n".utf8))
        return ("\(snap)/\(m.fileName)", data, m)
    }

    @Test func restoresAndMovesTheCurrentFilesAside() throws {
        let d = TempDir()
        defer { d.remove() }
        let (manifest, data, m) = try setUp(d.path)
        let plan = try Restore.plan(manifestPath: manifest, storagePath: nil, now: 1_700_000_000)
        #expect(plan.targetDirectory == data)
        #expect(plan.moveAside == ["0.tc", "1.cache.tc", "1.tc", "2.tc"])
        var log: [String] = []
        try Restore.execute(plan) { log.append($0) }
        for f in m.files {
            #expect(try DurableFile.sha256(of: "\(data)/\(f.division).tc").digest == f.sha256)
            #expect(try TCReader(path: "\(data)/\(f.division).tc").recordCount == f.records)
        }
        #expect(FileSystem.list(plan.asideDirectory) == ["0.tc", "1.cache.tc", "1.tc", "2.tc"])
        #expect(!FileSystem.exists("\(data)/1.cache.tc"))
        #expect(!FileSystem.exists("\(data)/lock"), "the temporary lock is removed")
        #expect(FileSystem.exists("\(data)/status.log.1"))
        #expect(log.count >= 4)
    }

    @Test func restoresIntoAnotherStoragePath() throws {
        let d = TempDir()
        defer { d.remove() }
        let (manifest, _, m) = try setUp(d.path)
        let plan = try Restore.plan(manifestPath: manifest, storagePath: "\(d.path)/elsewhere")
        #expect(plan.targetDirectory == "\(d.path)/elsewhere/127.0.0.1_10001/roma")
        #expect(plan.moveAside.isEmpty)
        try Restore.execute(plan) { _ in }
        #expect(FileSystem.list(plan.targetDirectory) == m.files.map { "\($0.division).tc" })
    }

    @Test func refusesWhileTheLockIsHeld() throws {
        let d = TempDir()
        defer { d.remove() }
        let (manifest, data, _) = try setUp(d.path)
        let lock = try LockFile(directory: data)   // what a running romad holds
        defer { lock.release() }
        let before = FileSystem.list(data)
        let plan = try Restore.plan(manifestPath: manifest, storagePath: nil)
        do {
            try Restore.execute(plan) { _ in }
            Issue.record("restore must refuse while the lock is held")
        } catch let e as SnapshotError {
            #expect(e.message.contains("held by a running process"))
        }
        #expect(FileSystem.list(data) == before)
    }

    @Test func refusesAnEmptyLockAndAcceptsAStaleOne() throws {
        let d = TempDir()
        defer { d.remove() }
        let (manifest, data, _) = try setUp(d.path)
        writeFile("\(data)/lock", [])
        let plan = try Restore.plan(manifestPath: manifest, storagePath: nil)
        do {
            try Restore.execute(plan) { _ in }
            Issue.record("restore must refuse an empty lock file")
        } catch let e as SnapshotError {
            #expect(e.message.contains("no owner PID"))
        }
        // A lock left by a dead process (PID, no flock) is fine.
        writeFile("\(data)/lock", Array("999999\n".utf8))
        try Restore.execute(plan) { _ in }
        #expect(FileSystem.exists("\(data)/lock"), "a stale lock is left for romad to take over")
    }

    @Test func refusesOnChecksumMismatchChangingNothing() throws {
        let d = TempDir()
        defer { d.remove() }
        let (manifest, data, m) = try setUp(d.path)
        let p = "\(directoryName(manifest))/\(m.files[2].file)"
        var bytes = readFile(p)!
        bytes[100] ^= 0x80
        writeFile(p, bytes)
        let before = FileSystem.list(data).map { ($0, readFile("\(data)/\($0)")) }
        let plan = try Restore.plan(manifestPath: manifest, storagePath: nil)
        do {
            try Restore.execute(plan) { _ in }
            Issue.record("restore must refuse a corrupted snapshot")
        } catch let e as SnapshotError {
            #expect(e.message.contains(m.files[2].file))
            #expect(e.message.contains("nothing was changed"))
        }
        let after = FileSystem.list(data).map { ($0, readFile("\(data)/\($0)")) }
        #expect(after.map(\.0) == before.map(\.0))
        #expect(after.map(\.1) == before.map(\.1))
    }
}

@Suite struct TCReaderTests {
    @Test func readsRecordsAndRefusesNonTCFiles() throws {
        let d = TempDir()
        defer { d.remove() }
        try makeTCFile("\(d.path)/a.tc", records: 25)
        let r = try TCReader(path: "\(d.path)/a.tc")
        #expect(r.recordCount == 25)
        #expect(try r.countByIterating() == 25)
        #expect(try r.value(forKey: Array("key7".utf8)) == Array("v-7".utf8))
        #expect(try r.value(forKey: Array("nope".utf8)) == nil)
        writeFile("\(d.path)/junk", pseudoRandomBytes(4096, seed: 9))
        #expect(throws: StorageError.self) { try TCReader(path: "\(d.path)/junk") }
        #expect(throws: StorageError.self) { try TCReader(path: "\(d.path)/missing") }
        #expect(!FileSystem.exists("\(d.path)/missing"), "read-only open never creates")
    }
}
