import Foundation
import Testing
@testable import ROMAStorage

@Suite("Storage lock file (R6.3, §11 item 7)")
struct LockFileTests {
    private func message(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch let e as StorageError { return e.message } catch { return "\(error)" }
    }

    @Test("a fresh lock holds our PID; release removes the file")
    func freshLock() throws {
        let dir = TempDir("lock1")
        defer { dir.remove() }
        let lock = try LockFile(directory: dir.path)
        #expect(lock.path == dir.file("lock"))
        #expect(lock.staleOwner == nil)
        #expect(dir.text("lock") == "\(getpid())\n")
        lock.release()
        #expect(!dir.exists("lock"))
        lock.release()   // idempotent
        #expect(!dir.exists("lock"))
    }

    @Test("a second LockFile on the same directory in the same process is refused (flock per open file description)")
    func secondLockSameProcess() throws {
        let dir = TempDir("lock2")
        defer { dir.remove() }
        let first = try LockFile(directory: dir.path)
        let msg = message { _ = try LockFile(directory: dir.path) }
        let m = try #require(msg)
        #expect(m.hasPrefix("Lock file already exists"))
        #expect(m.contains(dir.file("lock")))
        #expect(m.contains("PID \(getpid())"))
        // the refused attempt did not disturb the holder
        #expect(dir.text("lock") == "\(getpid())\n")
        first.release()
        let again = try LockFile(directory: dir.path)
        #expect(again.staleOwner == nil)
        again.release()
    }

    @Test("a lock with a PID but no flock (crashed owner) is taken over")
    func staleLockTakenOver() throws {
        let dir = TempDir("lock3")
        defer { dir.remove() }
        dir.write("lock", "12345\n")
        let lock = try LockFile(directory: dir.path)
        #expect(lock.staleOwner == 12345)
        #expect(dir.text("lock") == "\(getpid())\n")
        // and now it is really held
        #expect(message { _ = try LockFile(directory: dir.path) } != nil)
        lock.release()
        #expect(!dir.exists("lock"))
    }

    @Test("a lock dropped without release (simulated crash) is stale for the next opener")
    func droppedLock() throws {
        let dir = TempDir("lock4")
        defer { dir.remove() }
        do { _ = try LockFile(directory: dir.path) }   // deinit closes the fd but keeps the file
        #expect(dir.exists("lock"))
        let lock = try LockFile(directory: dir.path)
        #expect(lock.staleOwner == getpid())
        lock.release()
    }

    @Test("an empty unflocked lock (ROMA 1.3 or hand-made) is refused with a message naming the fix")
    func emptyLockRefused() throws {
        let dir = TempDir("lock5")
        defer { dir.remove() }
        dir.write("lock", "")
        let m = try #require(message { _ = try LockFile(directory: dir.path) })
        #expect(m.hasPrefix("Lock file already exists"))
        #expect(m.contains(dir.file("lock")))
        #expect(m.contains("remove the file"))
        #expect(dir.exists("lock"))          // not deleted by the refused opener
        #expect(dir.text("lock") == "")
        // whitespace only counts as empty too
        dir.write("lock", " \n")
        #expect(message { _ = try LockFile(directory: dir.path) } != nil)
    }

    @Test("HashStorage (TC): second open of the same directory fails while the first is open")
    func storageDoubleOpen() throws {
        let dir = TempDir("lock6")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir)
        #expect(dir.text("lock") == "\(getpid())\n")
        let m = try #require(message { _ = try openStorage(.tc, dir: dir) })
        #expect(m.hasPrefix("Lock file already exists"))
        // the first storage still works and still holds the lock
        try s.put("k", "v")
        #expect(try s.fetch("k") == "v")
        #expect(dir.exists("lock"))
        try s.close()
        #expect(!dir.exists("lock"))
        let s2 = try openStorage(.tc, dir: dir)
        #expect(try s2.fetch("k") == "v")
        try s2.close()
    }

    @Test("HashStorage (TC): a stale lock is taken over and reported in openNotes")
    func storageStaleLock() throws {
        let dir = TempDir("lock7")
        defer { dir.remove() }
        dir.write("lock", "12345\n")
        let s = try openStorage(.tc, dir: dir)
        #expect(s.openNotes.count == 1)
        #expect(s.openNotes.first?.contains("12345") == true)
        #expect(s.openNotes.first?.contains(dir.file("lock")) == true)
        try s.close()
        #expect(!dir.exists("lock"))
    }

    @Test("HashStorage (TC): an empty lock file prevents opening")
    func storageEmptyLock() throws {
        let dir = TempDir("lock8")
        defer { dir.remove() }
        dir.write("lock", "")
        #expect(throws: StorageError.self) { try openStorage(.tc, dir: dir) }
        #expect(dir.exists("lock"))
    }

    /// Runs `body` on `n` dedicated threads (not a width-limited pool) and waits for all of them.
    private func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for i in 0..<n {
            group.enter()
            let t = Thread { body(i); group.leave() }
            t.start()
        }
        group.wait()
    }

    /// Shared counters for the race tests.
    final class RaceStats: @unchecked Sendable {
        let m = PthreadMutex()
        var current = 0
        var maxSeen = 0
        var acquisitions = 0
        var heldWithoutFile = 0
        var wedged = false
        var wedges = 0
    }

    @Test("mutual exclusion holds when openers race a releasing holder (unlink-then-close window)")
    func raceMutualExclusion() throws {
        // A holder that releases unlinks `lock`, then closes its fd. An opener that opened the old
        // file just before the unlink can flock it right after the close: it then "holds" a lock
        // on a file that no longer exists, while the next opener creates a new `lock` and holds
        // that one too. Only one LockFile may be held at any time, and a held lock has its file.
        let dir = TempDir("lockrace")
        defer { dir.remove() }
        let h = RaceStats()
        let path = dir.path
        let end = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while DispatchTime.now().uptimeNanoseconds < end {
            runThreads(4) { _ in
                while DispatchTime.now().uptimeNanoseconds < end && !h.m.withLock({ h.wedged }) {
                    let l: LockFile
                    do { l = try LockFile(directory: path) } catch {
                        // see `raceCreation`: an empty, unheld lock left by a creation race
                        if "\(error)".contains("no owner PID") { h.m.withLock { h.wedged = true } }
                        continue
                    }
                    let fileThere = FileManager.default.fileExists(atPath: path + "/lock")
                    h.m.withLock {
                        h.current += 1
                        h.maxSeen = max(h.maxSeen, h.current)
                        h.acquisitions += 1
                        if !fileThere { h.heldWithoutFile += 1 }
                    }
                    usleep(20)
                    h.m.withLock { h.current -= 1 }
                    l.release()
                }
            }
            if h.wedged {   // every thread has stopped: clear the wedge and go on
                h.wedges += 1
                h.wedged = false
                unlink(path + "/lock")
            }
        }
        #expect(h.acquisitions > 100)
        #expect(h.maxSeen == 1, "\(h.acquisitions) acquisitions; up to \(h.maxSeen) simultaneous holders")
        #expect(h.heldWithoutFile == 0, "a LockFile was held while no lock file existed")
    }

    @Test("openers racing on a directory without a lock never leave it permanently locked")
    func raceCreation() throws {
        // The creator's file is empty between its open(O_CREAT) and its PID write. A concurrent
        // opener that sees it empty may win the flock, refuse it as a "ROMA 1.3 lock" and close;
        // the creator's flock then failed too, and the empty unheld file blocks every later open.
        let root = TempDir("lockcreate")
        defer { root.remove() }
        var wedges = 0
        var wins = 0
        var firstError = ""
        // Two busy threads keep both cores contended so that openers get preempted between
        // their system calls, which is when the window opens.
        let noise = RaceStats()
        for _ in 0..<2 {
            Thread {
                var x: UInt64 = 0
                while !noise.m.withLock({ noise.wedged }) { for _ in 0..<10_000 { x &+= 1; withExtendedLifetime(x) {} } }
            }.start()
        }
        defer { noise.m.withLock { noise.wedged = true } }
        // Up to 2000 rounds or 4 s; stops at the first wedged directory.
        let end = DispatchTime.now().uptimeNanoseconds + 4_000_000_000
        var rounds = 0
        for round in 0..<2000 where wedges == 0 && DispatchTime.now().uptimeNanoseconds < end {
            rounds += 1
            let path = root.file("r\(round)")
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let h = RaceStats()
            runThreads(4) { _ in
                h.m.withLock { h.current += 1 }
                while h.m.withLock({ h.current }) < 4 { sched_yield() }   // start together
                // stagger by a few microseconds so that some openers arrive inside another's
                // create → flock → write-PID window
                var spin = UInt64.random(in: 0..<3000)
                while spin > 0 { spin &-= 1; withExtendedLifetime(spin) {} }
                if let l = try? LockFile(directory: path) {
                    h.m.withLock { h.acquisitions += 1 }
                    l.release()
                }
            }
            wins += h.acquisitions
            do {
                let l = try LockFile(directory: path)
                l.release()
            } catch {
                wedges += 1
                if firstError.isEmpty { firstError = "\(error)" }
            }
        }
        #expect(wins >= rounds - wedges)
        #expect(wedges == 0, "after \(rounds) rounds a directory was left locked: \(firstError)")
    }

    @Test("the memory engine uses no lock file")
    func memoryNoLock() throws {
        let s1 = try openStorage(.memory, dir: nil)
        let s2 = try openStorage(.memory, dir: nil)
        try s1.close()
        try s2.close()
    }
}
