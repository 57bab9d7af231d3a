import CTokyoCabinet
#if canImport(Glibc)
import Glibc
#endif

// MARK: - File-level seeding (a joining node takes a peer's division files as they are)

extension HashStorage {
    /// Whether this storage holds nothing at all: every division `normal`, its main DB empty
    /// (a node that may take a peer's division files in place of its own).
    public var isEmptyAndNormal: Bool {
        divisions.allSatisfy { d in d.lock.withLock { d.state == .normal && d.cache == nil && d.main.recordCount == 0 } }
    }

    /// Division `i` of a seeding peer, ready to be sent: waits (up to `wait` seconds) until the
    /// division is `normal` (a cpdb snapshot of it ends first), moves it to `safecopy_flushing`
    /// (writes go to its cache from now on), writes the main DB's buffered data into its file and
    /// moves to `safecopy_flushed`. The file at the returned path then does not change until
    /// `endSeedSend(division:)`. TokyoCabinet only.
    public func beginSeedSend(division i: Int, wait: Double, shouldStop: () -> Bool) throws -> String {
        guard case .tokyoCabinet = engine, let path = path(ofDivision: i) else { throw StorageError("only TokyoCabinet division files can be sent") }
        guard i >= 0 && i < divnum else { throw StorageError("no division \(i) (divnum \(divnum))") }
        let deadline = monotonicSeconds() + wait
        while true {
            do {
                try beginSafecopy(division: i)
                break
            } catch SafecopyRefusal.notNormal, SafecopyRefusal.cannotChange {
                guard monotonicSeconds() < deadline, !shouldStop() else {
                    throw StorageError("division \(i) of \(name) stayed outside normal (a snapshot running?) for \(Int(wait)) s")
                }
                usleep(20_000)
            }
        }
        do {
            try flush(division: i)
        } catch {
            try? endSeedSend(division: i)
            throw error
        }
        return path
    }

    /// Back to `normal` after a send: `cachecleaning`, then the writes made meanwhile are merged
    /// into main (R2.9) and the cache removed. Run off the event loop.
    public func endSeedSend(division i: Int) throws {
        // A failed flush leaves the division in `safecopy_flushing`: it goes on to flushed first.
        if divisions[i].lock.withLock({ divisions[i].state }) == .safecopyFlushing { try flush(division: i) }
        try beginCacheCleaning(division: i)
        try cleanCache(division: i)
    }

    /// The receiving side, before the file comes: division `i` (empty) goes to `safecopy_flushed`,
    /// so every write from now on (the writes the seeded vnodes' primaries send while the file is
    /// on its way) waits in the cache, to be merged into the received file by
    /// `endSeedReceive(division:file:)`.
    public func beginSeedReceive(division i: Int) throws {
        guard case .tokyoCabinet = engine else { throw StorageError("only TokyoCabinet divisions can be seeded") }
        try beginSafecopy(division: i)
        try flush(division: i)
    }

    /// Division `i`'s empty data file is replaced by `file` (a peer's division file, received
    /// whole), then the writes held in the cache meanwhile are merged into it under R2.9 (a record
    /// both in the file and in the cache is kept once, with its newest clock) and the division
    /// is `normal` again. With `file` nil (the transfer failed) only the merge runs. Run off the
    /// event loop.
    public func endSeedReceive(division i: Int, file: String?) throws {
        if let file {
            guard case .tokyoCabinet(let options) = engine, let target = path(ofDivision: i), let dir = directory else {
                throw StorageError("only TokyoCabinet divisions can be seeded")
            }
            let d = divisions[i]
            // The empty file, moved out of the way; removed once the locks are free (or, after a
            // crash, at the next open, as a `seed-*.tc.part` file).
            var displaced: String?
            defer { if let displaced { unlink(displaced) } }
            try adminLock.withLock {
                guard !closed else { throw SafecopyRefusal.closed }
                try d.lock.withLock {
                    guard d.state == .safecopyFlushed else { throw StorageError("division \(i) of \(name) is not safecopy_flushed") }
                    guard d.main.recordCount == 0 else { throw StorageError("division \(i) of \(name) is not empty") }
                    try d.main.close()
                    displaced = HashStorage.swapIn(file, for: target, aside: "\(dir)/seed-\(i).displaced.tc.part")
                    guard displaced != nil else {
                        let why = String(cString: strerror(errno))
                        d.main = try TCEngine(path: target, options: options)
                        throw StorageError("cannot move \(file) to \(target): \(why)")
                    }
                    do {
                        d.main = try TCEngine(path: target, options: options)
                    } catch {
                        // Not a TokyoCabinet file after all: back to an empty division.
                        unlink(target)
                        d.main = try TCEngine(path: target, options: options)
                        throw StorageError("received file for division \(i) of \(name) does not open: \(error)")
                    }
                    // Keys by vnode were of the empty file.
                    d.vnodeIndex = nil
                    d.indexRefused = false
                }
            }
        }
        try beginCacheCleaning(division: i)
        try cleanCache(division: i)
    }

    /// Puts `file` at `target` (an existing file) and returns where the file that was at `target`
    /// went (`file`, or `aside`), or nil (errno set, nothing moved) when it could not. The two are swapped
    /// (`renameat2(RENAME_EXCHANGE)`), not renamed over: ext4 (`auto_da_alloc`, on by default)
    /// writes out a file renamed over another before the rename returns, which took 17 ms for a
    /// division file of 15 MB here, with the division's lock held and its requests waiting. Where
    /// the exchange is not supported the old file is moved aside first, so that the rename
    /// replaces nothing.
    static func swapIn(_ file: String, for target: String, aside: String) -> String? {
        if roma_rename_exchange(file, target) == 0 { return file }
        guard rename(target, aside) == 0 else { return nil }
        guard rename(file, target) == 0 else {
            let saved = errno
            rename(aside, target)
            errno = saved
            return nil
        }
        return aside
    }

    /// Removes from the main DBs every record whose vnode `drop` says goes (records of a seeded
    /// division this node does not own). A division in a snapshot state is waited for; the work is
    /// done in small batches under the division lock, sleeping `pause` µs after each: at full
    /// speed (0.5 s for a third of a million records) the purge held the node's writers up by
    /// 30–80 ms. `drop` is asked again under the lock just before each removal, so what it stops
    /// dropping meanwhile stays. Returns how many records were removed; stops early (returning
    /// what it removed) when `shouldStop` says so.
    public func purge(drop: (UInt32) -> Bool, batch: Int = 32, pause: UInt32 = 0, shouldStop: () -> Bool) throws -> Int {
        var removed = 0
        var pacer = BackgroundScheduling.StarvationGuard()
        for d in divisions {
            // Candidates first (a resumable pass, a slice at a time), then removals, each checked
            // again under the lock.
            var candidates: [[UInt8]] = []
            var cursor: [UInt8]?
            var first = true
            while first || cursor != nil {
                if shouldStop() { return removed }
                first = false
                let normal = try d.lock.withLock { () -> Bool in
                    guard d.state == .normal else { return false }
                    cursor = try d.main.forEach(after: cursor, limit: 256) { k, v in
                        if let h = RecordHeader(decoding: v), drop(h.vnode) { candidates.append(Array(k)) }
                    }
                    return true
                }
                if pause > 0 { usleep(pause) }
                if !normal {
                    // A snapshot of this division runs: wait for it, then start the division over.
                    usleep(20_000)
                    candidates.removeAll()
                    cursor = nil
                    first = true
                    continue
                }
                pacer.pace()
            }
            var i = 0
            while i < candidates.count {
                if shouldStop() { return removed }
                // A snapshot of the division runs: the same batch again after it.
                if let n = try removeIfStill(d, candidates[i..<min(i + batch, candidates.count)], { drop($0.vnode) }) {
                    removed += n
                    i += batch
                } else {
                    usleep(20_000)
                }
                if pause > 0 { usleep(pause) }
                pacer.pace()
            }
        }
        return removed
    }
}
