import Dispatch
import Testing
import ROMAStorage
@testable import ROMASnapshot

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SnapshotWriterTests {
    /// Sizes around the direct-I/O alignment and the writer's chunk size.
    static let sizes = [0, 1, 4095, 4096, 4097, SnapshotWriter.chunkSize - 1, SnapshotWriter.chunkSize,
                        SnapshotWriter.chunkSize + 1, 2 * SnapshotWriter.chunkSize + 12_345]

    @Test(arguments: [true, false])
    func deferredCopiesAreExactAndOnlyNamedByCommit(directIO: Bool) throws {
        let d = TempDir()
        defer { d.remove() }
        let writer = SnapshotWriter(depth: 3, directIO: directIO)
        defer { writer.stop() }
        var pending: [DurableFile.PendingFile] = []
        var expected: [String: (bytes: [UInt8], sha: String)] = [:]
        for (k, size) in Self.sizes.enumerated() {
            let content = pseudoRandomBytes(size, seed: UInt64(k + 7))
            writeFile("\(d.path)/\(k).tc", content)
            var progressed = 0
            let r = try DurableFile.copyHashingDeferred(from: "\(d.path)/\(k).tc", toDirectory: d.path, name: "\(k).tc.1",
                                                        writer: writer, progress: { progressed += $0 })
            #expect(r.size == UInt64(size))
            #expect(progressed == size)
            #expect(!FileSystem.exists("\(d.path)/\(k).tc.1"), "no final name before commit")
            pending.append(r.pending)
            expected["\(k).tc.1"] = (content, r.sha256)
        }
        var named: [String] = []
        try DurableFile.commit(pending) { named.append($0.name) }
        #expect(named == Self.sizes.indices.map { "\($0).tc.1" })
        for (name, e) in expected {
            #expect(readFile("\(d.path)/\(name)") == e.bytes, "\(name)")
            #expect(try DurableFile.sha256(of: "\(d.path)/\(name)").digest == e.sha, "\(name): digest of what was written")
        }
        #expect(!FileSystem.list(d.path).contains { $0.hasSuffix(".tmp") }, "no temporary file left")
    }

    /// Chunk buffers sit on 2 MiB boundaries, start zeroed, and (Linux) are marked for
    /// transparent huge pages, so that a direct write pins and unpins two pages, not 1,024.
    @Test func chunkBuffersAreHugePageAlignedAndMarked() throws {
        let b = SnapshotWriter.allocateBuffer()
        defer { b.deallocate() }
        let address = UInt(bitPattern: b.baseAddress)
        #expect(b.count == SnapshotWriter.chunkSize)
        #expect(address % UInt(SnapshotWriter.hugePage) == 0)
        #expect(b.allSatisfy { $0 == 0 })
        #if os(Linux)
        // The mapping that holds the buffer carries VmFlags "hg" (madvise(MADV_HUGEPAGE)).
        let smaps = String(decoding: try #require(readFile("/proc/self/smaps")), as: UTF8.self)
        var inside = false
        var flags: String?
        for line in smaps.split(separator: "\n") {
            let first = line.split(separator: " ").first ?? ""
            let bounds = first.split(separator: "-")
            if bounds.count == 2, let lo = UInt(bounds[0], radix: 16), let hi = UInt(bounds[1], radix: 16) {
                inside = lo <= address && address < hi
            } else if inside, line.hasPrefix("VmFlags:") {
                flags = String(line)
                break
            }
        }
        let vmFlags = try #require(flags)
        #expect(vmFlags.split(separator: " ").contains("hg"), "\(vmFlags)")
        #endif
    }

    @Test func copiersOnSeveralThreadsShareOneWriter() throws {
        let d = TempDir()
        defer { d.remove() }
        let writer = SnapshotWriter(depth: 2)
        defer { writer.stop() }
        let count = 6
        for k in 0..<count { writeFile("\(d.path)/\(k).tc", pseudoRandomBytes(SnapshotWriter.chunkSize * 2 + k * 1000, seed: UInt64(k))) }
        let results = ResultBox<DurableFile.PendingFile>(count)
        let dir = d.path
        BackgroundScheduling.normal.runOnThreads(3) { w in
            var k = w
            while k < count {
                results.set(k, Result { try DurableFile.copyHashingDeferred(from: "\(dir)/\(k).tc", toDirectory: dir, name: "\(k).tc.2", writer: writer).pending })
                k += 3
            }
        }
        let pending = try results.values.map { try #require($0).get() }
        try DurableFile.commit(pending)
        for k in 0..<count {
            #expect(readFile("\(d.path)/\(k).tc.2") == readFile("\(d.path)/\(k).tc"), "copy \(k)")
        }
    }

    @Test func commitRefusesAnExistingNameAndRemovesWhatItDidNotName() throws {
        let d = TempDir()
        defer { d.remove() }
        writeFile("\(d.path)/a", pseudoRandomBytes(5000, seed: 1))
        writeFile("\(d.path)/b", pseudoRandomBytes(5000, seed: 2))
        let writer = SnapshotWriter()
        defer { writer.stop() }
        let pa = try DurableFile.copyHashingDeferred(from: "\(d.path)/a", toDirectory: d.path, name: "a.1", writer: writer).pending
        let pb = try DurableFile.copyHashingDeferred(from: "\(d.path)/b", toDirectory: d.path, name: "b.1", writer: writer).pending
        writeFile("\(d.path)/b.1", Array("someone else's".utf8))   // appears meanwhile
        var named: [String] = []
        #expect(throws: SnapshotError.self) { try DurableFile.commit([pa, pb]) { named.append($0.name) } }
        #expect(named == ["a.1"], "the caller learns exactly which files got their names")
        #expect(readFile("\(d.path)/b.1") == Array("someone else's".utf8), "never clobbered")
        #expect(!FileSystem.list(d.path).contains { $0.hasSuffix(".tmp") })
    }

    @Test func failedOrInterruptedCopiesLeaveNothing() throws {
        let d = TempDir()
        defer { d.remove() }
        writeFile("\(d.path)/src", pseudoRandomBytes(3 * SnapshotWriter.chunkSize, seed: 3))
        let writer = SnapshotWriter()
        defer { writer.stop() }
        var chunks = 0
        #expect(throws: SnapshotError.self) {
            try DurableFile.copyHashingDeferred(from: "\(d.path)/src", toDirectory: d.path, name: "x", writer: writer,
                                                shouldStop: { chunks += 1; return chunks > 2 })
        }
        #expect(throws: SnapshotError.self) {
            try DurableFile.copyHashingDeferred(from: "\(d.path)/missing", toDirectory: d.path, name: "y", writer: writer)
        }
        #expect(throws: SnapshotError.self) {
            try DurableFile.copyHashingDeferred(from: "\(d.path)/src", toDirectory: "\(d.path)/nodir", name: "z", writer: writer)
        }
        #expect(FileSystem.list(d.path) == ["src"])
        // The writer is still usable afterwards.
        let r = try DurableFile.copyHashingDeferred(from: "\(d.path)/src", toDirectory: d.path, name: "w", writer: writer)
        try DurableFile.commit([r.pending])
        #expect(readFile("\(d.path)/w") == readFile("\(d.path)/src"))
    }

    @Test func singleFileCopyHashingMatchesTheDigestOfTheCopy() throws {
        let d = TempDir()
        defer { d.remove() }
        writeFile("\(d.path)/src", pseudoRandomBytes(SnapshotWriter.chunkSize + 777, seed: 9))
        let writer = SnapshotWriter(depth: 2)
        defer { writer.stop() }
        let r = try DurableFile.copyHashingDeferred(from: "\(d.path)/src", toDirectory: d.path, name: "dst", writer: writer)
        try DurableFile.commit([r.pending])
        #expect(r.size == UInt64(SnapshotWriter.chunkSize + 777))
        #expect(try DurableFile.sha256(of: "\(d.path)/dst").digest == r.sha256)
        #expect(try DurableFile.sha256(of: "\(d.path)/src").digest == r.sha256)
    }
}

@Suite struct BackgroundSchedulingTests {
    @Test func idleAppliesToTheWorkerThreadsOnly() {
        let before = sched_getscheduler(0)
        let ioBefore = FileSystem.IOPriority.current?.ioclass
        let seen = ResultBox<Int32>(3)
        let io = ResultBox<Int32>(3)
        BackgroundScheduling.idle.runOnThreads(3) { w in
            seen.set(w, .success(sched_getscheduler(0)))
            io.set(w, .success(FileSystem.IOPriority.current?.ioclass ?? -1))
        }
        #expect(seen.values.map { try? $0?.get() } == [5, 5, 5], "SCHED_IDLE on every worker")
        #expect(io.values.map { try? $0?.get() } == [2, 2, 2], "best-effort I/O on every worker (not the idle class)")
        #expect(sched_getscheduler(0) == before, "the calling thread keeps its policy")
        #expect(FileSystem.IOPriority.current?.ioclass == ioBefore, "and its I/O priority")
    }

    @Test func lowUsesTheLowestBestEffortIOPriority() {
        let io = ResultBox<Int32>(1)
        BackgroundScheduling.low.runOnThreads(1) { _ in
            let p = FileSystem.IOPriority.current
            io.set(0, .success(p.map { $0.ioclass * 100 + $0.level } ?? -1))
        }
        #expect((try? io.values[0]?.get()) == 207, "best effort (class 2), level 7")
    }

    @Test func lowIsNiceTen() {
        let seen = ResultBox<Int32>(1)
        BackgroundScheduling.low.runOnThreads(1) { _ in
            errno = 0
            seen.set(0, .success(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)))
        }
        #expect((try? seen.values[0]?.get()) == BackgroundScheduling.lowNice)
    }

    @Test func starvationGuardEscalatesOnlyWhenStarvedOfCPU() {
        // Slow but running (a slow disk): 20 % of the window spent waiting for a CPU.
        var slow = BackgroundScheduling.StarvationGuard(window: 1.0, waitFraction: 0.9)
        for t in 0...10 { slow.observe(wall: Double(t) * 0.5, waited: Double(t) * 0.1) }
        #expect(!slow.escalated)
        let outcome = ResultBox<(Bool, Int32)>(1)
        BackgroundScheduling.idle.runOnThreads(1) { _ in
            var starved = BackgroundScheduling.StarvationGuard(window: 1.0, waitFraction: 0.9)
            starved.observe(wall: 10, waited: 3)
            starved.observe(wall: 10.5, waited: 3.49)   // window not complete yet
            let early = starved.escalated
            starved.observe(wall: 11, waited: 3.95)     // 95 % of a second spent runnable, not running
            outcome.set(0, .success((!early && starved.escalated, sched_getscheduler(0))))
        }
        let r = try? outcome.values[0]?.get()
        #expect(r?.0 == true)
        #expect(r?.1 == SCHED_OTHER || getuid() != 0, "a starved idle thread moves to SCHED_OTHER (nice 10; unprivileged only with RLIMIT_NICE)")
    }

    @Test func readsTheRunQueueWait() throws {
        let w = try #require(BackgroundScheduling.runQueueWaitSeconds())
        #expect(w >= 0)
    }

    @Test func parsesTheOptionValues() {
        #expect(BackgroundScheduling(rawValue: "idle") == .idle)
        #expect(BackgroundScheduling(rawValue: "low") == .low)
        #expect(BackgroundScheduling(rawValue: "normal") == .normal)
        #expect(BackgroundScheduling(rawValue: "fast") == nil)
    }
}

/// Results written by worker threads. `@unchecked Sendable`: guarded by `lock`.
final class ResultBox<T>: @unchecked Sendable {
    private let lock = PthreadMutex()
    private var slots: [Result<T, Error>?]
    init(_ n: Int) { slots = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.withLock { slots[i] = r } }
    var values: [Result<T, Error>?] { lock.withLock { slots } }
}
