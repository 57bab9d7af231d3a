#if canImport(Glibc)
import Glibc
#endif

/// Result of a storage command (R3.9).
public enum StoreResult: Sendable, Equatable {
    case stored, notStored, exists, notFound
}

/// The set-family commands (R2.7).
public enum StoreMode: Sendable {
    case set, add, replace, append, prepend
}

/// The data of one hash name (namespace): `divnum` divisions and their snapshot machinery
/// (spec R1.3, R6, R7). Keys given to it are already stripped of the ESC+hash suffix, and the
/// caller passes the key's vnode and the current UNIX time.
///
/// `@unchecked Sendable`: divisions carry their own locks; the remaining fields are immutable
/// after `open`, except `closed`, which `close()` sets once under `adminLock`.
public final class HashStorage: @unchecked Sendable {
    public let name: String
    /// Absolute directory of the files (`<storage-path>/<ap>/<hash>`); nil for the memory engine.
    public let directory: String?
    public let divnum: Int
    public let engine: EngineKind
    /// R2.6: window in which logical clocks decide over physical time.
    public let logicClockExpire: UInt32 = 300
    /// Things worth logging that happened while opening (stale lock taken over, caches merged).
    public private(set) var openNotes: [String] = []

    let divisions: [Division]
    private let divisionOf: @Sendable (UInt32) -> Int
    private let lockFile: LockFile?
    private let statusLog: StatusLog?
    /// Serialises state transitions of the whole storage (R7.1).
    let adminLock = PthreadMutex()
    /// Bytes the vnode indexes may hold together (`VNODE_INDEX_MEMORY`), split evenly over the
    /// divisions.
    public let vnodeIndexMemory: Int
    public static let defaultVnodeIndexMemory = 1 << 30
    private(set) var closed = false

    /// Path of division `i`'s data file (TC only).
    public func path(ofDivision i: Int) -> String? { directory.map { "\($0)/\(i).\(engine.fileExtension)" } }
    /// Path of division `i`'s cache file (TC only).
    public func cachePath(ofDivision i: Int) -> String? { directory.map { "\($0)/\(i).cache.\(engine.fileExtension)" } }

    /// Opens (creating) a storage. For TokyoCabinet this takes the directory's `lock`,
    /// opens `0.tc … (divnum−1).tc`, and merges back any cache file a crash left behind.
    ///
    /// `vnodeIndexMemory`: bytes the vnode indexes of all divisions may hold together (0: no
    /// index, every vnode copy reads its division).
    public init(name: String, directory: String?, divnum: Int, engine: EngineKind,
                divisionOf: @escaping @Sendable (UInt32) -> Int, vnodeIndexMemory: Int = HashStorage.defaultVnodeIndexMemory) throws {
        guard divnum > 0 else { throw StorageError("divnum must be positive") }
        self.vnodeIndexMemory = max(0, vnodeIndexMemory)
        self.name = name
        self.divnum = divnum
        self.engine = engine
        self.divisionOf = divisionOf
        switch engine {
        case .memory:
            self.directory = nil
            lockFile = nil
            statusLog = nil
            divisions = (0..<divnum).map { Division(index: $0, main: MemoryEngine()) }
        case .tokyoCabinet(let options):
            guard let dir = directory else { throw StorageError("TokyoCabinet storage needs a directory") }
            let abs = FileSystem.absolute(dir)
            self.directory = abs
            try FileSystem.makeDirectories(abs)
            // Refuse a directory written with more divisions: its extra files' keys would vanish.
            for f in FileSystem.list(abs) where f.hasSuffix(".tc") && !f.contains(".cache.") {
                if let n = Int(f.dropLast(3)), n >= divnum {
                    throw StorageError("\(abs)/\(f) exists but divnum is \(divnum): this directory was written with a larger divnum; start with the same --divnum")
                }
            }
            let lock = try LockFile(directory: abs)
            lockFile = lock
            // A file seed's part files left by a crash (the division they were for is still the
            // old one): nothing refers to them.
            for f in FileSystem.list(abs) where f.hasPrefix("seed-") && f.hasSuffix(".tc.part") {
                unlink("\(abs)/\(f)")
                openNotes.append("removed \(abs)/\(f), a file seed's part file left by a crash")
            }
            if let stale = lock.staleOwner {
                openNotes.append("took over stale lock \(lock.path) left by PID \(stale), which is no longer running")
            }
            do {
                statusLog = try StatusLog(directory: abs)
                var divs: [Division] = []
                for i in 0..<divnum {
                    divs.append(Division(index: i, main: try TCEngine(path: "\(abs)/\(i).tc", options: options)))
                }
                divisions = divs
            } catch {
                lock.release()
                throw error
            }
            do {
                try recoverCaches(options: options)
            } catch {
                // Leave nothing behind: close what was opened (the cache file stays for a later try).
                for d in divisions { d.lock.withLock { try? d.cache?.close(); try? d.main.close() } }
                lock.release()
                throw error
            }
        }
    }

    /// Crash recovery: a `<i>.cache.tc` left by a crash holds acknowledged writes. Merge it back
    /// into main now (logged in status.log) so the division is `normal` without an operator.
    private func recoverCaches(options: TCOptions) throws {
        for d in divisions {
            guard let cp = cachePath(ofDivision: d.index), FileSystem.exists(cp) else { continue }
            let cache = try TCEngine(path: cp, options: options)
            d.lock.withLock {
                d.cache = cache
                d.state = .safecopyFlushed
            }
            statusLog?.record(division: d.index, state: .safecopyFlushed)
            let n = cache.recordCount
            try transition(d.index, from: .safecopyFlushed, to: .cachecleaning)
            try cleanCache(division: d.index)
            openNotes.append("division \(d.index): merged \(n) records from leftover cache \(cp)")
        }
    }

    // MARK: - Reads

    @inline(__always) private func division(_ vn: UInt32) -> Division {
        divisions[divisionOf(vn)]
    }

    /// Calls `body` with the live record for `key` (R2.3: tombstones and expired records are absent).
    public func get<R>(vn: UInt32, key: UnsafeRawBufferPointer, now: UInt32,
                       _ body: (RecordHeader, UnsafeRawBufferPointer) throws -> R) throws -> R? {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { found -> R? in
                guard let f = found, f.header.isLive(now: now) else { return nil }
                return try body(f.header, f.value)
            }
        }
    }

    /// The header of whatever record exists for `key`, tombstones and expired ones included (R3.12).
    public func rawHeader(vn: UInt32, key: UnsafeRawBufferPointer) throws -> RecordHeader? {
        let d = division(vn)
        return try d.lock.withLock { try d.read(key) { $0?.header } }
    }

    // MARK: - Writes (R2.7)

    /// set / add / replace / append / prepend. `expire` is already converted (R2.4).
    /// `maxValueSize` bounds the value that append/prepend would produce (NOT_STORED beyond it).
    public func store(_ mode: StoreMode, vn: UInt32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                      expire: UInt32, now: UInt32, maxValueSize: Int = .max) throws -> StoreResult {
        var header: RecordHeader?
        return try store(mode, vn: vn, key: key, value: value, expire: expire, now: now, maxValueSize: maxValueSize,
                         written: &header)
    }

    /// `store`, also giving the header of the record it wrote (`written`; nil when nothing was
    /// written), so a primary can replicate a `set` without reading the record back.
    public func store(_ mode: StoreMode, vn: UInt32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                      expire: UInt32, now: UInt32, maxValueSize: Int = .max, written: inout RecordHeader?) throws -> StoreResult {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> StoreResult in
                let live = old.map { $0.header.isLive(now: now) } ?? false
                let clk: UInt32
                switch mode {
                case .set:
                    clk = old.map { LogicalClock.next($0.header.logical) } ?? 0
                case .add:
                    if live { return .notStored }
                    clk = old.map { LogicalClock.next($0.header.logical) } ?? 0
                case .replace, .append, .prepend:
                    guard live, let o = old else { return .notStored }
                    if mode != .replace && o.value.count + value.count > maxValueSize { return .notStored }
                    clk = LogicalClock.next(o.header.logical)
                }
                let h = RecordHeader(vnode: vn, physical: now, logical: clk, expire: expire)
                switch mode {
                case .append: try d.write(key, h, old!.value, value)
                case .prepend: try d.write(key, h, value, old!.value)
                default: try d.write(key, h, value)
                }
                written = h
                return .stored
            }
        }
    }

    /// cas: live record whose logical clock equals `unique` (R2.7, R3.10).
    public func cas(vn: UInt32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                    expire: UInt32, unique: UInt32, now: UInt32) throws -> StoreResult {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> StoreResult in
                guard let o = old, o.header.isLive(now: now) else { return .notFound }
                guard o.header.logical == unique else { return .exists }
                try d.write(key, RecordHeader(vnode: vn, physical: now, logical: LogicalClock.next(o.header.logical), expire: expire), value)
                return .stored
            }
        }
    }

    /// delete: writes a tombstone unless the record already is one; true when a live record was deleted.
    public func delete(vn: UInt32, key: UnsafeRawBufferPointer, now: UInt32) throws -> Bool {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> Bool in
                if let o = old, o.header.isTombstone { return false }
                let clk = old.map { LogicalClock.next($0.header.logical) } ?? 0
                try d.write(key, RecordHeader(vnode: vn, physical: now, logical: clk, expire: 0))
                return old.map { $0.header.isLive(now: now) } ?? false
            }
        }
    }

    /// incr / decr (R3.11); nil when the key is not live. The expire time is kept.
    public func incr(vn: UInt32, key: UnsafeRawBufferPointer, delta: LenientInteger, decrement: Bool,
                     now: UInt32) throws -> UInt64? {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> UInt64? in
                guard let o = old, o.header.isLive(now: now) else { return nil }
                let result = LenientInteger.counterResult(old: LenientInteger(parsing: o.value), delta: delta, decrement: decrement)
                var digits = Array(String(result).utf8)
                let h = RecordHeader(vnode: vn, physical: now, logical: LogicalClock.next(o.header.logical), expire: o.header.expire)
                try digits.withUnsafeMutableBytes { try d.write(key, h, UnsafeRawBufferPointer($0)) }
                return result
            }
        }
    }

    /// set_expt / touch: new expire time on a live record, value kept (R2.7).
    public func setExpire(vn: UInt32, key: UnsafeRawBufferPointer, expire: UInt32, now: UInt32) throws -> Bool {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> Bool in
                guard let o = old, o.header.isLive(now: now) else { return false }
                let h = RecordHeader(vnode: vn, physical: now, logical: LogicalClock.next(o.header.logical), expire: expire)
                try d.write(key, h, o.value)
                return true
            }
        }
    }

    // MARK: - Cluster writes (R2.7–R2.8, R5.2, R6.1)

    /// The record for `key` as stored (header and value), tombstones and expired ones included:
    /// what a primary replicates after a write.
    public func rawRecord(vn: UInt32, key: UnsafeRawBufferPointer) throws -> (RecordHeader, [UInt8])? {
        let d = division(vn)
        return try d.lock.withLock { try d.read(key) { f in f.map { ($0.header, Array($0.value)) } } }
    }

    /// R2.8: a replica write is refused when a record exists that was written less than
    /// `logic_clock_expire` seconds ago with a clock not older than the incoming one.
    @inline(__always) func replicaAccepts(_ existing: RecordHeader?, clock: UInt32, now: UInt32) -> Bool {
        guard let e = existing else { return true }
        let age = Int64(now) - Int64(e.physical)
        return !(age < Int64(logicClockExpire) && LogicalClock.compare(clock, e.logical) <= 0)
    }

    /// `rset`/`rzset` (R2.8): stores `value` with the primary's clock and expire time, physical
    /// clock = `now`. False when refused (`NOT_STORED`).
    public func replicaSet(vn: UInt32, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                           clock: UInt32, expire: UInt32, now: UInt32) throws -> Bool {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> Bool in
                guard replicaAccepts(old?.header, clock: clock, now: now) else { return false }
                try d.write(key, RecordHeader(vnode: vn, physical: now, logical: clock, expire: expire), value)
                return true
            }
        }
    }

    /// `rdelete` (R2.8): a tombstone with the primary's clock. False when refused (`NOT_FOUND`).
    public func replicaDelete(vn: UInt32, key: UnsafeRawBufferPointer, clock: UInt32, now: UInt32) throws -> Bool {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> Bool in
                guard replicaAccepts(old?.header, clock: clock, now: now) else { return false }
                try d.write(key, RecordHeader(vnode: vn, physical: now, logical: clock, expire: 0))
                return true
            }
        }
    }

    // MARK: - Vnode transfers (R5.8)

    /// A record received in a vnode stream (`spushv`) or any other copy: stored under R2.9
    /// (refused when a record exists that is less than `logic_clock_expire` older and whose
    /// clock is not older), through the division's write path, so a division in a snapshot
    /// state takes it into its cache. Physical clock and expire time are the sender's; `expire`
    /// 0 stores a delete mark, anything else the value — an empty one included (ROMA 1.3 crashed
    /// on empty live values, §11 item 10). True when stored.
    public func streamPut(vn: UInt32, key: UnsafeRawBufferPointer, physical: UInt32, logical: UInt32,
                          expire: UInt32, value: UnsafeRawBufferPointer) throws -> Bool {
        let d = division(vn)
        return try d.lock.withLock {
            try d.read(key) { old -> Bool in
                if let e = old?.header {
                    let dt = Int64(physical) - Int64(e.physical)
                    if dt < Int64(logicClockExpire) && LogicalClock.compare(logical, e.logical) <= 0 { return false }
                }
                let h = RecordHeader(vnode: vn, physical: physical, logical: logical, expire: expire)
                if expire == 0 { try d.write(key, h) } else { try d.write(key, h, value) }
                return true
            }
        }
    }

    /// Whether the division of vnode `vn` is `normal` (a vnode is only dumped then, R5.8).
    public func isNormal(vn: UInt32) -> Bool {
        let d = division(vn)
        return d.lock.withLock { d.state == .normal }
    }

    /// Keys of the records of vnode `vn` (delete marks included; a key may since have been
    /// removed), read from the division's vnode index (`VnodeKeyIndex`). The first call for a
    /// division builds the index: one pass over its main DB in slices of `slice` records, the
    /// division lock held for one slice at a time (requests to the division wait a slice, never
    /// the whole pass). The index is installed while the division is `normal` and records every
    /// write from then on, so every record that exists when this is called is listed. When the
    /// index would outgrow its share of `vnodeIndexMemory` (or that is 0) the division is read
    /// for this vnode's keys instead, until an idle sweep (`dropIdleVnodeIndexes`) clears that.
    public func keys(ofVnode vn: UInt32, slice: Int = 100) throws -> [[UInt8]] {
        let d = division(vn)
        while true {
            let (found, scan): ([[UInt8]]?, Bool) = d.lock.withLock {
                d.indexUsed = true
                if d.indexRefused || vnodeIndexMemory == 0 { return (nil, true) }
                guard let ix = d.vnodeIndex, ix.complete else { return (nil, false) }
                return (ix.keys(of: vn), false)
            }
            if let found { return found }
            if scan { return try scanKeys(d, vn: vn, slice: slice) }
            try buildVnodeIndex(d, slice: slice)
        }
    }

    /// Keys of `vn` by one pass over its division (no index).
    private func scanKeys(_ d: Division, vn: UInt32, slice: Int) throws -> [[UInt8]] {
        var keys: [[UInt8]] = []
        try slicedPass(d, slice: slice) { k, v in
            if let h = RecordHeader(decoding: v), h.vnode == vn { keys.append(Array(k)) }
        }
        return keys
    }

    /// One pass over division `d`'s main DB, the division lock held for `slice` records at a
    /// time (requests to the division wait a slice, never the whole pass); the pass steps aside
    /// between slices (`stepAside`). `keepGoing`, asked under the lock after each slice, may end
    /// it early. True when the pass reached the end.
    @discardableResult
    private func slicedPass(_ d: Division, slice: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void,
                            keepGoing: () -> Bool = { true }) throws -> Bool {
        var cursor: [UInt8]?
        repeat {
            let go: Bool
            (cursor, go) = try d.lock.withLock {
                let next = try d.main.forEach(after: cursor, limit: slice, body)
                return (next, keepGoing())
            }
            if !go { return false }
            if cursor != nil { stepAside(d, yield: true) }
        } while cursor != nil
        return true
    }

    private func buildVnodeIndex(_ d: Division, slice: Int) throws {
        try d.indexBuild.withLock {
            // Installed only in `normal`: then every record is in the main DB or written later.
            enum Start { case snapshotRunning, nothingToDo, build(VnodeKeyIndex) }
            var waited = 0
            var start = Start.snapshotRunning
            while case .snapshotRunning = start {
                start = d.lock.withLock {
                    // Built meanwhile by another copy, or refused (over budget): nothing to build.
                    guard d.vnodeIndex == nil, !d.indexRefused else { return .nothingToDo }
                    guard d.state == .normal else { return .snapshotRunning }
                    let fresh = VnodeKeyIndex(budget: max(1, vnodeIndexMemory / divnum))
                    d.vnodeIndex = fresh
                    return .build(fresh)
                }
                if case .snapshotRunning = start {
                    // A snapshot (cpdb) of the division is waited out, up to two minutes.
                    waited += 1
                    guard waited < 6_000 else { throw StorageError("division \(d.index) of \(name) stayed in a snapshot state") }
                    usleep(20_000)
                }
            }
            guard case .build(let ix) = start else { return }
            let finished: Bool
            do {
                finished = try slicedPass(d, slice: slice, { k, v in
                    if let h = RecordHeader(decoding: v) { ix.addScanned(vnode: h.vnode, key: k) }
                }, keepGoing: {
                    // Over budget (here, or in the write path, which then dropped it).
                    guard d.vnodeIndex === ix, !ix.overBudget else {
                        if d.vnodeIndex === ix { d.vnodeIndex = nil }
                        d.indexRefused = true
                        return false
                    }
                    return true
                })
            } catch {
                d.lock.withLock { if d.vnodeIndex === ix { d.vnodeIndex = nil } }
                throw error
            }
            if finished { d.lock.withLock { ix.complete = true } }
        }
    }

    /// For background work that locks a division over and over (a pass in slices, a vnode
    /// copy's reads, a received stream's writes), between two holds: when a request thread waits
    /// for the division, waits until it got the lock (up to about 2 ms); else, when `yield`, gives
    /// the CPU to an already runnable thread (`BackgroundScheduling.yieldCPU`). A pthread mutex is
    /// not fair: a thread that unlocks and locks again at once takes it back before the woken
    /// waiter runs (a request waited 1–2 ms during a join, with a core idle meanwhile; romad's
    /// sched_yield does nothing, see CTokyoCabinetNoYield).
    private func stepAside(_ d: Division, yield: Bool) {
        if d.lock.hasWaiters {
            var spins = 0
            while d.lock.hasWaiters && spins < 100 {
                usleep(20)
                spins += 1
            }
        } else if yield {
            BackgroundScheduling.yieldCPU()
        }
    }

    /// `stepAside` for a loop that locks the division of `vn` once per record, after its `n`-th
    /// record: it yields the CPU every 16 records.
    public func stepAside(vn: UInt32, record n: Int) {
        stepAside(division(vn), yield: n & 15 == 0)
    }

    /// Drops every vnode index that no copy used since the previous call (a node calls this
    /// periodically), and lets a division whose index outgrew its budget try again; returns how
    /// many indexes were dropped.
    @discardableResult
    public func dropIdleVnodeIndexes() -> Int {
        var dropped = 0
        for d in divisions {
            d.lock.withLock {
                if d.indexUsed { d.indexUsed = false; return }
                d.indexRefused = false
                guard let ix = d.vnodeIndex, ix.complete else { return }
                d.vnodeIndex = nil
                dropped += 1
            }
        }
        return dropped
    }

    /// Keys listed in the vnode indexes that exist now, and the bytes they count against their
    /// budget (0 and 0 when none does).
    public var vnodeIndexUsage: (keys: Int, bytes: Int) {
        divisions.reduce((0, 0)) { n, d in
            d.lock.withLock { (n.0 + (d.vnodeIndex?.keyCount ?? 0), n.1 + (d.vnodeIndex?.bytes ?? 0)) }
        }
    }

    /// `out` (R6.1): removes `key` physically. Unlike ROMA (which removed it from the main file
    /// even while that file was being copied, §11 item 5) a division in a snapshot state is left
    /// alone and the removal reported as not done. True when a record was removed.
    public func out(vn: UInt32, key: UnsafeRawBufferPointer) throws -> Bool {
        let d = division(vn)
        return try d.lock.withLock {
            guard d.state == .normal else { return false }
            return try d.main.remove(key: key)
        }
    }

    /// Deletes every live record (memcached `flush_all`) by writing tombstones, one division at a
    /// time and in batches so that requests interleave. Returns the number of records deleted.
    public func deleteAll(now: UInt32, batch: Int = 1000) throws -> Int {
        var total = 0
        for d in divisions {
            // Collect live keys under the lock, then tombstone them batch by batch.
            var keys: [[UInt8]] = []
            try d.lock.withLock {
                var seen = Set<[UInt8]>()
                for e in [d.main, d.cache].compactMap({ $0 }) {
                    try e.forEach { k, _ in
                        let key = Array(k)
                        if seen.insert(key).inserted { keys.append(key) }
                        return true
                    }
                }
            }
            var i = 0
            while i < keys.count {
                try d.lock.withLock {
                    for key in keys[i..<min(i + batch, keys.count)] {
                        try key.withUnsafeBytes { k in
                            try d.read(k) { old in
                                guard let o = old, o.header.isLive(now: now) else { return }
                                try d.write(k, RecordHeader(vnode: o.header.vnode, physical: now,
                                                            logical: LogicalClock.next(o.header.logical), expire: 0))
                                total += 1
                            }
                        }
                    }
                }
                i += batch
            }
        }
        return total
    }

    // MARK: - Clean-up (R6.5)

    /// The clean-up process for a node that is primary of every vnode: physically removes expired
    /// records and delete marks older than `delmarkExptime` seconds. Only `normal` divisions are
    /// touched — a division in a snapshot state is skipped, so a file being copied never changes
    /// (ROMA's `out` did change it, §11 item 5). Works in batches under the division lock and
    /// returns early when `shouldStop` says so. Returns the number of records removed.
    /// `list`, when given, sees every record (key and header) of the divisions passed over
    /// (`set_cleanup_regexp`'s key list).
    public func cleanUp(now: UInt32, delmarkExptime: UInt32, batch: Int = 500,
                        shouldStop: () -> Bool = { false },
                        list: ((UnsafeRawBufferPointer, RecordHeader) -> Void)? = nil) throws -> Int {
        var removed = 0
        let horizon = now > delmarkExptime ? now - delmarkExptime : 0
        func stale(_ h: RecordHeader) -> Bool {
            h.isTombstone ? horizon > h.physical : now > h.expire
        }
        var pacer = BackgroundScheduling.StarvationGuard()
        for d in divisions {
            if shouldStop() { break }
            // Collect candidates while normal, then re-check each one under the lock before removing.
            var candidates: [[UInt8]] = []
            try d.lock.withLock {
                guard d.state == .normal else { return }
                try d.main.forEach { k, v in
                    guard let h = RecordHeader(decoding: v) else { return true }
                    list?(k, h)
                    if stale(h) { candidates.append(Array(k)) }
                    return true
                }
            }
            var i = 0
            while i < candidates.count && !shouldStop() {
                guard let n = try removeIfStill(d, candidates[i..<min(i + batch, candidates.count)], stale) else { break }
                removed += n
                i += batch
                pacer.pace()
            }
        }
        return removed
    }

    /// Under the division lock, removes from main those of `keys` whose record `still` holds for
    /// (checked again now); how many. Nil, removing nothing, when the division is not `normal`
    /// (a file being copied never changes).
    func removeIfStill(_ d: Division, _ keys: ArraySlice<[UInt8]>, _ still: (RecordHeader) -> Bool) throws -> Int? {
        try d.lock.withLock { () -> Int? in
            guard d.state == .normal else { return nil }
            var removed = 0
            for key in keys {
                try key.withUnsafeBytes { k in
                    let holds = try d.main.withValue(forKey: k) { v in v.flatMap { RecordHeader(decoding: $0) }.map(still) ?? false }
                    if holds, try d.main.remove(key: k) { removed += 1 }
                }
            }
            return removed
        }
    }

    // MARK: - Introspection (stat)

    /// Current state of every division (`safecopy_stats`).
    public var states: [SafecopyState] { divisions.map { d in d.lock.withLock { d.state } } }

    /// Record count of division `i`'s main DB.
    public func recordCount(ofDivision i: Int) -> UInt64 { divisions[i].lock.withLock { divisions[i].main.recordCount } }

    /// File size of division `i`'s main DB.
    public func fileSize(ofDivision i: Int) -> UInt64 { divisions[i].lock.withLock { divisions[i].main.fileSize } }

    /// Total record count (main DBs).
    public var totalRecords: UInt64 { (0..<divnum).reduce(0) { $0 + recordCount(ofDivision: $1) } }

    /// Path of the status log in use, if any.
    public var statusLogPath: String? { statusLog?.currentPath }

    // MARK: - Lifecycle

    /// Syncs and closes every file, keeps cache files (merged at next open), removes `lock`.
    public func close() throws {
        try adminLock.withLock {
            guard !closed else { return }
            closed = true
            var firstError: Error?
            for d in divisions {
                d.lock.withLock {
                    do {
                        try d.main.sync()
                        try d.main.close()
                        if let c = d.cache { try c.sync(); try c.close() }
                    } catch {
                        if firstError == nil { firstError = error }
                    }
                }
            }
            statusLog?.sync()
            lockFile?.release()
            if let e = firstError { throw e }
        }
    }

    /// Syncs every main and cache DB to disk.
    public func syncAll() throws {
        for d in divisions {
            try d.lock.withLock {
                try d.main.sync()
                try d.cache?.sync()
            }
        }
    }

    // MARK: - Safecopy state machine (R7)

    /// Why a `set_storage_status` request was refused (R7.10).
    public enum SafecopyRefusal: Error, Equatable, Sendable {
        case divisionOutOfRange
        case notNormal(Int)
        case notFlushed(Int)
        case cannotChange(Int)
        case closed
    }

    func transition(_ i: Int, from: SafecopyState, to: SafecopyState) throws {
        let d = divisions[i]
        let ok = d.lock.withLock { () -> Bool in
            guard d.state == from, from.canMove(to: to) else { return false }
            d.state = to
            return true
        }
        guard ok else { throw SafecopyRefusal.cannotChange(i) }
        statusLog?.record(division: i, state: to)
    }

    /// Opens (creates) division `i`'s cache DB; a failure is a refused transition.
    private func makeCache(division i: Int) throws -> StorageEngine {
        switch engine {
        case .memory: return MemoryEngine()
        case .tokyoCabinet(let o):
            do { return try TCEngine(path: cachePath(ofDivision: i)!, options: o) } catch { throw SafecopyRefusal.cannotChange(i) }
        }
    }

    /// `normal → safecopy_flushing`: opens the cache DB, then diverts writes to it.
    /// The caller must then run `flush(division:)` off the event loop.
    public func beginSafecopy(division i: Int) throws {
        try adminLock.withLock {
            guard !closed else { throw SafecopyRefusal.closed }
            guard i >= 0 && i < divnum else { throw SafecopyRefusal.divisionOutOfRange }
            let d = divisions[i]
            guard d.lock.withLock({ d.state }) == .normal else { throw SafecopyRefusal.notNormal(i) }
            let cache = try makeCache(division: i)
            let ok = d.lock.withLock { () -> Bool in
                guard d.state == .normal else { return false }
                d.cache = cache
                d.state = .safecopyFlushing
                return true
            }
            guard ok else { throw SafecopyRefusal.cannotChange(i) }
            statusLog?.record(division: i, state: .safecopyFlushing)
        }
    }

    /// Point-in-time cut: every division goes `normal → safecopy_flushing` at one instant
    /// (all division locks held together), so the snapshot of the whole storage is consistent.
    /// Refused, changing nothing, unless every division is `normal`.
    public func beginSafecopyAll() throws {
        try adminLock.withLock {
            guard !closed else { throw SafecopyRefusal.closed }
            if let busy = states.firstIndex(where: { $0 != .normal }) { throw SafecopyRefusal.notNormal(busy) }
            var caches: [StorageEngine] = []
            for i in 0..<divnum {
                // Creating a cache file is a few hundred µs in the kernel; hand the CPU to any
                // runnable request thread between files (see BackgroundScheduling.yieldCPU).
                if i > 0 { BackgroundScheduling.yieldCPU() }
                do { caches.append(try makeCache(division: i)) } catch {
                    for c in caches { try? c.close(); if let p = c.path { unlink(p) } }
                    throw error
                }
            }
            for d in divisions { d.lock.lock() }
            for d in divisions {
                d.cache = caches[d.index]
                d.state = .safecopyFlushing
            }
            for d in divisions.reversed() { d.lock.unlock() }
            for i in 0..<divnum { statusLog?.record(division: i, state: .safecopyFlushing) }
        }
    }

    /// The flush process (R7.6): writes the main DB's buffered data and header into its file (no
    /// writer touches it now), then `safecopy_flushing → safecopy_flushed`. Run it off the loop.
    ///
    /// Unlike ROMA it does not fsync the live file: the snapshot copy is read through the page
    /// cache, so the file only has to be complete there; the copy itself is fsynced by cpdb. The
    /// fsync of a live file bought nothing for the snapshot and stalled writers for its duration.
    public func flush(division i: Int) throws {
        let d = divisions[i]
        let main: StorageEngine? = d.lock.withLock { d.state == .safecopyFlushing ? d.main : nil }
        guard let main else { return }
        try main.flushToFile()
        try adminLock.withLock { try transition(i, from: .safecopyFlushing, to: .safecopyFlushed) }
    }

    /// `safecopy_flushed → cachecleaning`; the caller must then run `cleanCache(division:)` off the loop.
    public func beginCacheCleaning(division i: Int) throws {
        try adminLock.withLock {
            guard !closed else { throw SafecopyRefusal.closed }
            guard i >= 0 && i < divnum else { throw SafecopyRefusal.divisionOutOfRange }
            guard divisions[i].lock.withLock({ divisions[i].state }) == .safecopyFlushed else { throw SafecopyRefusal.notFlushed(i) }
            try transition(i, from: .safecopyFlushed, to: .cachecleaning)
        }
    }

    /// `safecopy_flushed → cachecleaning` for every division at once, or for none: refused
    /// (changing nothing) unless all are `safecopy_flushed`.
    public func beginCacheCleaningAll() throws {
        try adminLock.withLock {
            guard !closed else { throw SafecopyRefusal.closed }
            if let i = states.firstIndex(where: { $0 != .safecopyFlushed }) { throw SafecopyRefusal.notFlushed(i) }
            for i in 0..<divnum { try transition(i, from: .safecopyFlushed, to: .cachecleaning) }
        }
    }

    /// The cache-cleaning process (R7.7, merge rule R2.9): moves cache records into main in
    /// batches of `batch` keys (each batch under the division lock, so requests interleave; small
    /// batches keep each hold short even when the background thread is preempted), deleting a
    /// cache entry only after it was merged; when the cache is empty, detaches it and returns the
    /// division to `normal`, then closes and removes the file outside the division lock.
    public func cleanCache(division i: Int, batch: Int = 16) throws {
        let d = divisions[i]
        var pacer = BackgroundScheduling.StarvationGuard()
        while true {
            let drained = try d.lock.withLock { () -> Bool in
                guard d.state == .cachecleaning, let cache = d.cache else { return true }
                let keys = try cache.keys(limit: batch)
                if keys.isEmpty { return true }
                for key in keys {
                    try key.withUnsafeBytes { k in
                        try cache.withValue(forKey: k) { raw in
                            guard let raw, let incoming = RecordHeader(decoding: raw) else { return }
                            guard try self.accepts(incoming, into: d.main, key: k) else { return }
                            let record = incoming.isTombstone ? UnsafeRawBufferPointer(rebasing: raw[..<RecordHeader.size]) : raw
                            try d.main.put(key: k, value: record)
                        }
                        // Only now, after the merge, does the entry leave the cache.
                        try cache.remove(key: k)
                    }
                }
                return false
            }
            if drained { break }
            // Between batches, hand the CPU to any runnable request thread; a starved (idle)
            // thread moves to nice 10 so that the cache is merged even on a saturated node.
            pacer.pace()
        }
        // Finish under the admin lock so the `normal` line is logged before any next transition
        // (and so a next `safecopy` cannot create the cache file before this one is removed).
        try adminLock.withLock {
            let detached = try d.lock.withLock { () -> StorageEngine? in
                guard d.state == .cachecleaning, let cache = d.cache, try cache.keys(limit: 1).isEmpty else { return nil }
                // No fsync of main here: it would stall the division's requests for the whole
                // fsync. Merged records are in the page cache, which survives a process crash;
                // main is synced at the next flush and at close.
                d.cache = nil
                d.state = .normal
                // Logged with the switch, so whoever sees `normal` finds the line (one write).
                statusLog?.record(division: i, state: .normal)
                return cache
            }
            guard let cache = detached else { return }
            // No request can reach the empty cache any more: close and remove it without
            // holding the division (munmap, truncate and unlink take a few hundred µs).
            try cache.close()
            if let p = cache.path { unlink(p) }
        }
    }

    /// R2.9 stream acceptance against the main DB's record.
    private func accepts(_ incoming: RecordHeader, into main: StorageEngine, key: UnsafeRawBufferPointer) throws -> Bool {
        try main.withValue(forKey: key) { raw in
            guard let raw, let existing = RecordHeader(decoding: raw) else { return true }
            let dt = Int64(incoming.physical) - Int64(existing.physical)
            if dt < Int64(logicClockExpire) && LogicalClock.compare(incoming.logical, existing.logical) <= 0 { return false }
            return true
        }
    }
}
