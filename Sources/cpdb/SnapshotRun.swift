import Dispatch
import FoundationEssentials
import ROMAClient
import ROMASnapshot
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// Options of a snapshot run (see `Snapshot` in CPDB.swift for their meaning).
struct SnapshotOptions: Sendable {
    var host = "localhost"
    var port = 0
    var consistent = false
    var dest: String?
    var keep: Int?
    var hash: String?
    var json = false
    var timeout = 600.0
    var spaceCheck = true
    var progress = false
    var verbose = false
    var scheduling: BackgroundScheduling = .idle
    /// Write the copies with direct I/O where the filesystem has it.
    var directIO = true
}

/// What `stat storage` says about one hash.
struct HashInfo {
    var name: String
    var stClass = ""
    var divnum = 0
    var option = ""
    var storagePath = ""
    var statesText = ""
    /// Divisions a joining node's file seed holds (the node lets a snapshot wait for them).
    var seeding = Set<Int>()
    var paths: [Int: String] = [:]
    /// Where this hash's snapshot files go.
    var destination = ""

    var states: [String]? { ROMAStat.symbolArray(statesText) }
    func path(_ i: Int) -> String { paths[i] ?? "" }
}

/// One division file copied by this run.
struct CopiedFile: Sendable {
    var division: Int
    var source: String
    var name: String
    var path: String
    var size: UInt64
    var safecopyAt: Double
    var copiedAt: Double
    var copySeconds: Double
    /// Seconds the division spent outside `normal` (safecopy → back to normal).
    var windowSeconds = 0.0
    var sha256 = ""
    var records: UInt64 = 0
    /// The copy under its temporary name until `commitCopies` makes it durable and names it.
    var pending: DurableFile.PendingFile?
}

/// A failure whose explanation was already printed.
struct Abort: Error {}

/// Copy results of parallel workers. `@unchecked Sendable`: guarded by `lock`.
final class CopySlots: @unchecked Sendable {
    private let lock = PthreadMutex()
    private var slots: [Result<CopiedFile, SnapshotError>?]
    init(_ n: Int) { slots = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ r: Result<CopiedFile, SnapshotError>) { lock.withLock { slots[i] = r } }
    var all: [Result<CopiedFile, SnapshotError>?] { lock.withLock { slots } }
}

/// One `cpdb <port>` run: ROMA 1.3's cpdb protocol (R7.12) with fast waits, durable copies,
/// manifests, and the guarantee that a division it moved out of `normal` is moved back.
final class SnapshotRun {
    let o: SnapshotOptions
    let console: Console
    private var conn: ROMAConnection?
    private var guiRunSet = false
    private(set) var errors: [String] = []
    private var created: [String] = []
    /// Copies written but not yet fsynced and named (see `commitCopies`).
    private var pendingCopies: [DurableFile.PendingFile] = []
    private var copied: [String: [CopiedFile]] = [:]
    private var hashes: [HashInfo] = []
    private var nodeID = ""
    private var runTimestamp = ""
    private let startedAt = Timestamp.nowPrecise()
    private var manifests: [String: String] = [:]
    private var retentionDeleted: [String] = []
    private var totalBytes: UInt64 = 0
    /// Writes every copy of the run (see `SnapshotWriter`); stopped when the run ends.
    fileprivate let writer: SnapshotWriter
    /// Set once the manifests are written: from then on the snapshot is complete and kept.
    private var committed = false

    var mode: String { o.consistent ? "consistent" : "sequential" }
    var endpoint: String { o.host.contains(":") ? "[\(o.host)]:\(o.port)" : "\(o.host):\(o.port)" }

    init(options: SnapshotOptions) {
        o = options
        console = Console(romaLinesOnStdout: !options.json, progress: options.progress)
        writer = SnapshotWriter(directIO: options.directIO, scheduling: options.scheduling)
    }

    /// Runs everything; returns the exit status.
    func run() -> Int32 {
        var status: Int32 = 0
        // This thread (which talks to the node, counts records and writes the manifest) already
        // runs under `o.scheduling` (`CPDB.main` applies it before parsing); the copy threads
        // apply it too (`runOnThreads`).
        do {
            try body()
        } catch is Abort {
            status = 1
        } catch {
            fail("\(error)")
            status = 1
        }
        writer.stop()
        if guiRunSet, let c = conn {
            // ROMA's `ensure`: always clear the GUI's "snapshot running" marker.
            if (try? c.request("set_gui_run_snapshot false")) == nil {
                note("could not send set_gui_run_snapshot false to \(endpoint)")
            }
        }
        conn?.close()
        if status != 0 {
            cleanUpFailedRun()
            if interrupted { status = 130 }
        }
        if o.json { console.out(summaryJSON(ok: status == 0)) }
        return status
    }

    // MARK: - Messages

    private func fail(_ message: String) {
        errors.append(message)
        console.note("error: \(message)")
    }

    private func note(_ message: String) { console.note(message) }

    private func verbose(_ message: String) { if o.verbose { console.note(message) } }

    private func ms(_ seconds: Double?) -> String { seconds.map { "\(Int(($0 * 1000).rounded())) ms" } ?? "?" }

    // MARK: - Protocol helpers

    private func connection() throws -> ROMAConnection {
        if let c = conn { return c }
        let c = try ROMAConnection(host: o.host, port: o.port, connectTimeout: 5, timeout: 30)
        conn = c
        return c
    }

    private func request(_ line: String) throws -> String {
        let c = try connection()
        do {
            return try c.request(line)
        } catch {
            conn?.close()
            conn = nil
            throw error
        }
    }

    /// `safecopy_stats` of `hash`, one state name per division.
    private func states(of hash: HashInfo) throws -> [String] {
        let c = try connection()
        let key = "storages[\(hash.name)].storage.safecopy_stats"
        let entries: [(key: String, value: String)]
        do {
            entries = try c.stat("^" + ROMAStat.escapeRegex(key) + "$")
        } catch {
            conn?.close()
            conn = nil
            throw error
        }
        guard let v = entries.first(where: { $0.key == key })?.value else {
            throw SnapshotError("\(endpoint) no longer reports \(key) (hash \(hash.name) removed?)")
        }
        guard let s = ROMAStat.symbolArray(v), s.count == hash.divnum else {
            throw SnapshotError("cannot parse \(key) \(v)")
        }
        return s
    }

    /// Waits until every division in `divisions` is in `target`, printing ROMA's
    /// `waiting for storages[h][label] == target ` line: one `.` when the first poll does not
    /// already show the state, then one more per further second. Polls every 1–5 ms.
    private func wait(_ hash: HashInfo, _ divisions: [Int], label: String, target: String, passing: Set<String>) throws {
        console.roma("waiting for storages[\(hash.name)][\(label)] == \(target) ")
        let start = monotonicSeconds()
        var dots = 0
        var starvation = BackgroundScheduling.StarvationGuard()
        defer { console.roma("\n") }
        // Back in a safecopy state while waiting for `normal`: the division has been `normal`
        // (only `normal` leads there, and this run's `normal` request had already moved it to
        // `cachecleaning`), then somebody else took it — a joining node's file seed does.
        var reached = Set<Int>()
        while true {
            let s = try states(of: hash)
            if target == "normal" {
                for d in divisions where s[d] == "safecopy_flushing" || s[d] == "safecopy_flushed" { reached.insert(d) }
            }
            if divisions.allSatisfy({ s[$0] == target || reached.contains($0) }) { return }
            if let bad = divisions.first(where: { s[$0] != target && !reached.contains($0) && !passing.contains(s[$0]) }) {
                throw SnapshotError("storages[\(hash.name)][\(bad)] is \(s[bad]) while waiting for \(target) (another client changed it?)")
            }
            let elapsed = monotonicSeconds() - start
            let due = 1 + Int(elapsed)
            while dots < due {
                console.roma(".")
                dots += 1
            }
            if elapsed > o.timeout {
                let late = divisions.filter { s[$0] != target && !reached.contains($0) }.map { "\($0)=\(s[$0])" }.joined(separator: " ")
                throw SnapshotError("timed out after \(Int(o.timeout)) s waiting for storages[\(hash.name)][\(label)] == \(target) (\(late))")
            }
            if interrupted && target != "normal" { throw SnapshotError("interrupted by signal \(interruptSignal.load(ordering: .relaxed))") }
            // Transitions take a few ms and `stat <name>` is cheap: poll every 2 ms for the first
            // 200 ms, then every 10 ms (a wait ends within 10 ms of the change, inside 50 ms).
            usleep(elapsed < 0.2 ? 2000 : 10_000)
            starvation.check()
        }
    }

    /// Puts `divisions` of `hash` back to `normal` after a failure: waits out flushing and
    /// cache cleaning, sends `set_storage_status i normal` to flushed ones. Returns true when
    /// all are normal.
    @discardableResult
    private func recover(_ hash: HashInfo, _ divisions: [Int]) -> Bool {
        guard !divisions.isEmpty else { return true }
        var attempts: [Int: Int] = [:]
        var connectFailures = 0
        let deadline = monotonicSeconds() + max(o.timeout, 30)
        var lastState: [Int: String] = [:]
        var lastError = ""
        while monotonicSeconds() < deadline {
            do {
                let s = try states(of: hash)
                var pending = false
                for i in divisions {
                    lastState[i] = s[i]
                    switch s[i] {
                    case "normal":
                        continue
                    case "safecopy_flushed":
                        pending = true
                        if attempts[i, default: 0] < 3 {
                            attempts[i, default: 0] += 1
                            let r = try request("set_storage_status \(i) normal \(hash.name)")
                            if r != "PUSHED" { note("set_storage_status \(i) normal \(hash.name) answered: \(r)") }
                        }
                    default:
                        pending = true
                    }
                }
                if !pending {
                    note("storages[\(hash.name)] division(s) \(divisions.map(String.init).joined(separator: ",")) back to normal")
                    return true
                }
            } catch {
                lastError = "\(error)"
                connectFailures += 1
                if connectFailures > 5 { break }
                usleep(200_000)
            }
            usleep(5000)
        }
        let left = divisions.filter { lastState[$0] != "normal" }
        let detail = left.map { "storages[\(hash.name)][\($0)]=\(lastState[$0] ?? "unknown")" }.joined(separator: " ")
        fail("could not return \(detail) to normal\(lastError.isEmpty ? "" : " (\(lastError))"); check `stat safecopy_stats` on \(endpoint) and send `set_storage_status <i> normal \(hash.name)` once a division is safecopy_flushed (a restarted romad merges leftover caches by itself)")
        return false
    }

    // MARK: - The run

    private func body() throws {
        do {
            conn = try ROMAConnection(host: o.host, port: o.port, connectTimeout: 5, timeout: 30)
        } catch {
            fail("\(error) (is romad running on port \(o.port) of \(o.host)?)")
            throw Abort()
        }
        let r = try request("set_gui_run_snapshot true")
        guard r == "STORED" else {
            console.romaError(r)
            fail("\(endpoint) refused set_gui_run_snapshot true (is it a ROMA node?)")
            throw Abort()
        }
        guiRunSet = true
        try loadStorageInfo()
        try checkStorageClass()
        try selectHashes()
        try preflight()
        runTimestamp = uniqueTimestamp { ts in hashes.map { "\($0.destination)/\(SnapshotManifest.fileName(runTimestamp: ts))" } }
        console.startProgress(totalBytes: totalBytes)
        for h in hashes {
            if o.consistent { try snapshotConsistent(h) } else { try snapshotSequential(h) }
        }
        console.finishProgress()
        try commitCopies()
        try countRecords()
        try writeManifests()
        committed = true
        try applyRetention()
        let t = Timestamp.gui(Timestamp.now())
        let g = try request("set_gui_last_snapshot \(t)")
        if ROMAConnection.isErrorReply(g) {
            fail("set_gui_last_snapshot \(t) answered: \(g)")
            throw Abort()
        }
        console.roma("finished\n")
    }

    /// `stat storage` (paths, options, states) and the node id, like ROMA's get_storage_info.
    private func loadStorageInfo() throws {
        let entries = try connection().stat("storage")
        var order: [String] = []
        var infos: [String: HashInfo] = [:]
        for (k, v) in entries {
            guard k.hasPrefix("storages["), let r = k.ranges(of: "].storage").last else { continue }
            let name = String(k[k.index(k.startIndex, offsetBy: "storages[".count)..<r.lowerBound])
            if infos[name] == nil { order.append(name); infos[name] = HashInfo(name: name) }
            let rest = k[r.upperBound...]
            switch rest {
            case ".st_class": infos[name]!.stClass = v
            case ".divnum": infos[name]!.divnum = Int(v) ?? 0
            case ".option": infos[name]!.option = v
            case ".storage_path": infos[name]!.storagePath = v
            case ".safecopy_stats": infos[name]!.statesText = v
            case ".fileseed_divisions":
                infos[name]!.seeding = Set(v.split(whereSeparator: { "[], ".contains($0) }).compactMap { Int($0) })
            default:
                if rest.hasPrefix("["), rest.hasSuffix("].path"), let i = Int(rest.dropFirst().dropLast("].path".count)) {
                    infos[name]!.paths[i] = v
                }
            }
        }
        hashes = order.map { infos[$0]! }
        let ids = try connection().stat("^stats\\.(address|port)$")
        if let a = ids.first(where: { $0.key == "stats.address" })?.value,
           let p = ids.first(where: { $0.key == "stats.port" })?.value, !a.isEmpty, !p.isEmpty {
            nodeID = "\(a)_\(p)"
        } else if let sp = hashes.first?.storagePath, !sp.isEmpty {
            nodeID = baseName(directoryName(sp))
        } else {
            nodeID = "\(o.host)_\(o.port)"
        }
    }

    /// `stat st_class`: only TCStorage has files to copy (R7.12 step 3).
    private func checkStorageClass() throws {
        for (k, v) in try connection().stat("st_class") {
            guard k.hasPrefix("storages["), k.hasSuffix("].storage.st_class") else { continue }
            let name = String(k.dropFirst("storages[".count).dropLast("].storage.st_class".count))
            if let only = o.hash, only != name { continue }
            if v != "TCStorage" {
                console.romaError("ERROR:cpdb supports just TCStorage system, your storage type is \(v)")
                fail("storages[\(name)] uses \(v); cpdb copies TokyoCabinet files only (start romad with --storage tc)")
                throw Abort()
            }
        }
    }

    private func selectHashes() throws {
        if let only = o.hash {
            guard let h = hashes.first(where: { $0.name == only }) else {
                fail("\(endpoint) has no hash named \(only) (hashes: \(hashes.map(\.name).joined(separator: ", ")))")
                throw Abort()
            }
            hashes = [h]
        }
        guard !hashes.isEmpty else {
            fail("\(endpoint) reports no storages in `stat storage`")
            throw Abort()
        }
    }

    /// Everything that can be checked before a division leaves `normal`: states, local files,
    /// destination directory and free space. A failure here changes nothing on the node.
    private func preflight() throws {
        for i in hashes.indices {
            let h = hashes[i]
            guard let states = h.states, states.count == h.divnum, h.divnum > 0 else {
                fail("cannot parse storages[\(h.name)].storage.safecopy_stats \(h.statesText) (divnum \(h.divnum))")
                throw Abort()
            }
            if states.indices.contains(where: { states[$0] != "normal" && !h.seeding.contains($0) }) {
                console.romaError("storages[\(h.name)].storage.safecopy_stats \(h.statesText)")
                console.romaError("ERROR: Status except the :normal exists.")
                let busy = states.indices.filter { states[$0] != "normal" }.map { "\($0)=\(states[$0])" }.joined(separator: " ")
                fail("storages[\(h.name)] has divisions outside normal (\(busy)); another snapshot may be running. Nothing was changed.")
                throw Abort()
            }
            let dataDirs = Set((0..<h.divnum).map { directoryName(h.path($0)) })
            for d in 0..<h.divnum {
                let p = h.path(d)
                guard !p.isEmpty else {
                    fail("stat storage lists no storages[\(h.name)].storage[\(d)].path")
                    throw Abort()
                }
                guard access(p, R_OK) == 0 else {
                    fail("cannot read \(p) (storages[\(h.name)].storage[\(d)].path): \(String(cString: strerror(errno))). cpdb copies the node's files directly, so it must run on the node's machine as a user who can read them.")
                    throw Abort()
                }
                totalBytes += FileSystem.size(p) ?? 0
            }
            let dataDir = dataDirs.count == 1 ? dataDirs.first! : directoryName(h.path(0))
            if let dest = o.dest {
                let base = FileSystem.absolute(dest)
                hashes[i].destination = hashes.count == 1 ? base : "\(base)/\(h.name)"
                let nodeDir = directoryName(dataDir)
                if directoryName(hashes[i].destination) == nodeDir && hashes[i].destination != dataDir {
                    fail("--dest \(hashes[i].destination) is inside the node directory \(nodeDir): romad would mount it as a hash named \(baseName(hashes[i].destination)) at its next start. Choose another directory.")
                    throw Abort()
                }
            } else {
                hashes[i].destination = dataDir
            }
            do {
                try DurableFile.prepareDirectory(hashes[i].destination)
            } catch {
                fail("destination unusable: \(error)")
                throw Abort()
            }
        }
        if o.spaceCheck {
            var need: [String: UInt64] = [:]
            for h in hashes {
                need[h.destination, default: 0] += (0..<h.divnum).reduce(0) { $0 + (FileSystem.size(h.path($1)) ?? 0) }
            }
            for (dir, bytes) in need {
                if let avail = DurableFile.availableBytes(dir), avail < bytes {
                    fail("not enough space in \(dir): the snapshot needs \(bytes) bytes, \(avail) are available (--no-space-check tries anyway). Nothing was changed.")
                    throw Abort()
                }
            }
        }
        verbose("node \(nodeID), mode \(mode), \(hashes.count) hash(es), \(totalBytes) bytes to copy")
    }

    /// A `YYYYMMDDhhmmss` for which none of `paths(ts)` exists (waits for the next second if needed).
    private func uniqueTimestamp(_ paths: (String) -> [String]) -> String {
        while true {
            let now = Timestamp.now()
            let ts = Timestamp.compact(now)
            if !paths(ts).contains(where: FileSystem.exists) { return ts }
            while Timestamp.now() == now { usleep(10_000) }
        }
    }

    /// Copies division `i` through the run's writer, computing its SHA-256 on the way; returns
    /// once the source is completely read (the copy is durable and named later, by
    /// `commitCopies`).
    fileprivate func copyOne(_ h: HashInfo, division i: Int, timestamp ts: String, safecopyAt: Double) -> Result<CopiedFile, SnapshotError> {
        let source = h.path(i)
        let name = "\(baseName(source)).\(ts)"
        let t0 = monotonicSeconds()
        let copiedAt = Timestamp.nowPrecise()
        do {
            let r = try DurableFile.copyHashingDeferred(from: source, toDirectory: h.destination, name: name, writer: writer,
                                                        progress: { [console] n in console.progress(n) },
                                                        shouldStop: { interrupted })
            var f = CopiedFile(division: i, source: source, name: name, path: "\(h.destination)/\(name)", size: r.size,
                               safecopyAt: safecopyAt, copiedAt: copiedAt, copySeconds: monotonicSeconds() - t0)
            f.sha256 = r.sha256
            f.pending = r.pending
            return .success(f)
        } catch let e as SnapshotError {
            return .failure(e)
        } catch {
            return .failure(SnapshotError("\(error)"))
        }
    }

    /// Sends `set_storage_status <which> <status> <hash>`; anything but `PUSHED` prints ROMA's
    /// error lines and aborts. `divisions` are put back to normal when the outcome is unknown
    /// (lost connection) or when going back to normal was refused.
    private func setStatus(_ h: HashInfo, _ which: String, _ status: String, divisions: [Int]) throws {
        let command = "set_storage_status \(which) \(status) \(h.name)"
        let r: String
        do {
            r = try request(command)
        } catch {
            fail("\(command): \(error)")
            recover(h, divisions)
            throw Abort()
        }
        guard r == "PUSHED" else {
            console.romaError(r)
            console.romaError("ERROR: Can't change storage status to \(status).")
            fail("\(command) answered: \(r)")
            if status == "normal" { recover(h, divisions) }
            throw Abort()
        }
    }

    /// Runs `body` while `divisions` are outside normal: any failure puts them back first.
    private func outsideNormal(_ h: HashInfo, _ divisions: [Int], _ body: () throws -> Void) throws {
        do {
            try body()
        } catch is Abort {
            throw Abort()
        } catch {
            fail("\(error)")
            recover(h, divisions)
            throw Abort()
        }
    }

    /// Default mode: ROMA's loop, one division at a time.
    private func snapshotSequential(_ h: HashInfo) throws {
        for i in 0..<h.divnum {
            if interrupted {
                fail("interrupted by signal \(interruptSignal.load(ordering: .relaxed)) before storages[\(h.name)][\(i)]")
                throw Abort()
            }
            // If a snapshot of this division already carries the current second (a run a moment
            // ago), wait for the next second now, while the division is still normal.
            let snapshotPrefix = "\(h.destination)/\(baseName(h.path(i)))."
            _ = uniqueTimestamp { [snapshotPrefix + $0] }
            let safecopyAt = Timestamp.nowPrecise()
            let t0 = monotonicSeconds()
            try setStatus(h, "\(i)", "safecopy", divisions: [i])
            var copyResult: Result<CopiedFile, SnapshotError> = .failure(SnapshotError("not copied"))
            var flushedAfter = 0.0
            try outsideNormal(h, [i]) {
                try wait(h, [i], label: "\(i)", target: "safecopy_flushed", passing: ["safecopy_flushing"])
                flushedAfter = monotonicSeconds() - t0
                console.roma("copy file : \(h.path(i))\n")
                let ts = uniqueTimestamp { [snapshotPrefix + $0] }
                let slot = CopySlots(h.divnum)
                let job = CopyJobs(run: self, hash: h, divisions: [i], timestamp: ts, safecopyAt: safecopyAt, slots: slot, width: 1)
                o.scheduling.runOnThreads(1) { job.work($0) }
                copyResult = slot.all[i] ?? .failure(SnapshotError("copy of \(h.path(i)) did not run"))
                switch copyResult {
                case .success(let f): if let p = f.pending { pendingCopies.append(p) } else { created.append(f.path) }
                case .failure(let e): fail("copy of \(h.path(i)) failed: \(e)")
                }
                try setStatus(h, "\(i)", "normal", divisions: [i])
                try wait(h, [i], label: "\(i)", target: "normal", passing: ["cachecleaning"])
            }
            switch copyResult {
            case .success(var f):
                f.windowSeconds = monotonicSeconds() - t0
                copied[h.name, default: []].append(f)
                verbose("storages[\(h.name)][\(i)]: flushed after \(ms(flushedAfter)), \(f.size) bytes read in \(ms(f.copySeconds)), outside normal for \(ms(f.windowSeconds))")
            case .failure:
                note("storages[\(h.name)][\(i)] is back to normal; stopping")
                throw Abort()
            }
        }
    }

    /// `--consistent`: every division enters safecopy at one instant (`set_storage_status all`),
    /// all files are copied in parallel under one timestamp, then all go back to normal.
    private func snapshotConsistent(_ h: HashInfo) throws {
        let all = Array(0..<h.divnum)
        let names = { (ts: String) in all.map { "\(h.destination)/\(baseName(h.path($0))).\(ts)" } }
        _ = uniqueTimestamp(names)   // wait out a same-second collision before leaving normal
        let safecopyAt = Timestamp.nowPrecise()
        let t0 = monotonicSeconds()
        try setStatus(h, "all", "safecopy", divisions: all)
        var results: [Result<CopiedFile, SnapshotError>?] = []
        var phases: [String: Double] = [:]
        try outsideNormal(h, all) {
            let first = try states(of: h)
            if first.contains("normal") {
                let moved = all.filter { first[$0] != "normal" }
                fail("\(endpoint) does not implement `set_storage_status all` (a SwiftROMA extension; ROMA 1.3 takes `all` as division 0): division(s) \(moved) left normal. Use the default mode with this node.")
                recover(h, moved)
                throw Abort()
            }
            try wait(h, all, label: "all", target: "safecopy_flushed", passing: ["safecopy_flushing"])
            phases["flush"] = monotonicSeconds() - t0
            let ts = uniqueTimestamp(names)
            for i in all { console.roma("copy file : \(h.path(i))\n") }
            let slots = CopySlots(all.count)
            let width = min(all.count, 2)  // two copiers (each with a hashing thread), under o.scheduling
            let jobs = CopyJobs(run: self, hash: h, divisions: all, timestamp: ts, safecopyAt: safecopyAt, slots: slots, width: width)
            o.scheduling.runOnThreads(width) { jobs.work($0) }
            results = slots.all
            phases["copy"] = monotonicSeconds() - t0
            for case .success(let f)? in results {
                if let p = f.pending { pendingCopies.append(p) } else { created.append(f.path) }
            }
            for case .failure(let e)? in results { fail("copy failed: \(e)") }
            try setStatus(h, "all", "normal", divisions: all)
            try wait(h, all, label: "all", target: "normal", passing: ["cachecleaning"])
        }
        let window = monotonicSeconds() - t0
        verbose("storages[\(h.name)]: all flushed after \(ms(phases["flush"])), copied after \(ms(phases["copy"])), normal after \(ms(window))")
        var failed = false
        for case let res? in results {
            switch res {
            case .success(var f):
                f.windowSeconds = window
                copied[h.name, default: []].append(f)
            case .failure:
                failed = true
            }
        }
        if failed || results.count != all.count {
            note("all divisions of storages[\(h.name)] are back to normal; stopping")
            throw Abort()
        }
        verbose("storages[\(h.name)]: \(h.divnum) files copied; divisions outside normal for \(ms(window))")
    }

    /// Copies on worker threads: worker `w` copies `divisions[w]`, `divisions[w + width]`, …
    ///
    /// `@unchecked Sendable`: workers only call `copyOne` (which touches no mutable state of the
    /// run except the thread-safe console) and write their own slots under `CopySlots`' lock.
    final class CopyJobs: @unchecked Sendable {
        let run: SnapshotRun
        let hash: HashInfo
        let divisions: [Int]
        let timestamp: String
        let safecopyAt: Double
        let slots: CopySlots
        let width: Int

        init(run: SnapshotRun, hash: HashInfo, divisions: [Int], timestamp: String, safecopyAt: Double, slots: CopySlots, width: Int) {
            self.run = run
            self.hash = hash
            self.divisions = divisions
            self.timestamp = timestamp
            self.safecopyAt = safecopyAt
            self.slots = slots
            self.width = width
        }

        func work(_ w: Int) {
            var k = w
            while k < divisions.count {
                let i = divisions[k]
                slots.set(i, run.copyOne(hash, division: i, timestamp: timestamp, safecopyAt: safecopyAt))
                k += width
            }
        }
    }

    /// Makes every copy durable and gives it its final name, in one step for the whole run:
    /// the copies were written (and their writeback started) while their divisions were in
    /// safecopy, but their fsyncs wait until here, so no division waits for the disk and the
    /// filesystem commits its journal once instead of once per file. Until this returns, only
    /// temporary names exist; a crash or failure before leaves no file with a final name.
    private func commitCopies() throws {
        let pending = pendingCopies
        guard !pending.isEmpty else { return }
        let t0 = monotonicSeconds()
        pendingCopies.removeAll()   // from here on, commit removes the temporary files it does not name
        do {
            try DurableFile.commit(pending) { self.created.append($0.finalPath) }
        } catch {
            fail("cannot make the snapshot files durable: \(error)")
            throw Abort()
        }
        verbose("\(pending.count) copies fsynced and named in \(ms(monotonicSeconds() - t0))")
    }

    /// The manifest's record count of every copy (from its TokyoCabinet header); the SHA-256 was
    /// computed while copying.
    private func countRecords() throws {
        var bad = false
        for (name, files) in copied {
            for (k, f) in files.enumerated() {
                do {
                    copied[name]![k].records = try TCReader(path: f.path).recordCount
                } catch {
                    fail("checksum of \(f.path) failed: \(error)")
                    bad = true
                }
            }
        }
        if bad { throw Abort() }
    }

    private func writeManifests() throws {
        let finished = Timestamp.iso(Timestamp.nowPrecise())
        for h in hashes {
            let files = (copied[h.name] ?? []).sorted { $0.division < $1.division }.map {
                SnapshotManifest.File(division: $0.division, file: $0.name, source: $0.source, size: $0.size, records: $0.records,
                                      sha256: $0.sha256, safecopyAt: Timestamp.iso($0.safecopyAt), copiedAt: Timestamp.iso($0.copiedAt))
            }
            let m = SnapshotManifest(node: nodeID, host: o.host, port: o.port, hash: h.name, divnum: h.divnum,
                                     storageClass: h.stClass, engineOptions: h.option,
                                     storagePath: directoryName(h.path(0)), mode: mode, runTimestamp: runTimestamp,
                                     startedAt: Timestamp.iso(startedAt), finishedAt: finished, files: files)
            do {
                try m.write(toDirectory: h.destination)
            } catch {
                fail("cannot write the manifest: \(error)")
                throw Abort()
            }
            let path = "\(h.destination)/\(m.fileName)"
            manifests[h.name] = path
            created.append(path)
            verbose("manifest \(path)")
        }
    }

    private func applyRetention() throws {
        guard let keep = o.keep else { return }
        for h in hashes {
            do {
                let deleted = try Retention.apply(directory: h.destination, node: nodeID, hash: h.name, keep: keep)
                retentionDeleted += deleted
                for p in deleted { verbose("retention: deleted \(p)") }
            } catch {
                // The new snapshot is complete; a retention failure is still a failure of the run.
                fail("retention (--keep \(keep)) in \(h.destination) failed: \(error); the new snapshot is complete")
                throw Abort()
            }
        }
    }

    /// A failed run leaves nothing half-done behind: its snapshot files and manifests are removed
    /// (temporary files were already removed by the copy itself).
    private func cleanUpFailedRun() {
        guard !committed else { return }
        for p in pendingCopies { p.discard() }
        pendingCopies.removeAll()
        guard !created.isEmpty else { return }
        for p in created { unlink(p) }
        for d in Set(created.map(directoryName)) { try? DurableFile.syncDirectory(d) }
        note("removed the \(created.count) file(s) this failed run had created")
        created.removeAll()
        copied.removeAll()
        manifests.removeAll()
    }

    // MARK: - JSON summary

    struct Summary: Encodable {
        var ok: Bool
        var error: String?
        var errors: [String]
        var node: String
        var host: String
        var port: Int
        var mode: String
        var startedAt: String
        var finishedAt: String
        var durationSeconds: Double
        var bytes: UInt64
        var hashes: [HashSummary]
        var retentionDeleted: [String]

        enum CodingKeys: String, CodingKey {
            case ok, error, errors, node, host, port, mode, startedAt, finishedAt, durationSeconds, bytes, hashes, retentionDeleted
        }

        /// Like the synthesised encoder, but `error` is always present (`null` on success).
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(error, forKey: .error)
            try c.encode(errors, forKey: .errors)
            try c.encode(node, forKey: .node)
            try c.encode(host, forKey: .host)
            try c.encode(port, forKey: .port)
            try c.encode(mode, forKey: .mode)
            try c.encode(startedAt, forKey: .startedAt)
            try c.encode(finishedAt, forKey: .finishedAt)
            try c.encode(durationSeconds, forKey: .durationSeconds)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(hashes, forKey: .hashes)
            try c.encode(retentionDeleted, forKey: .retentionDeleted)
        }
    }

    struct HashSummary: Encodable {
        var hash: String
        var divnum: Int
        var destination: String
        var manifest: String?
        var files: [FileSummary]

        enum CodingKeys: String, CodingKey { case hash, divnum, destination, manifest, files }

        /// `manifest` is always present (`null` when no manifest was written).
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(hash, forKey: .hash)
            try c.encode(divnum, forKey: .divnum)
            try c.encode(destination, forKey: .destination)
            try c.encode(manifest, forKey: .manifest)
            try c.encode(files, forKey: .files)
        }
    }

    struct FileSummary: Encodable {
        var division: Int
        var source: String
        var snapshot: String
        var size: UInt64
        var records: UInt64
        var sha256: String
        var copySeconds: Double
        var outsideNormalSeconds: Double
    }

    private func summaryJSON(ok: Bool) -> String {
        let hs = hashes.map { h in
            HashSummary(hash: h.name, divnum: h.divnum, destination: h.destination, manifest: manifests[h.name],
                        files: (copied[h.name] ?? []).map {
                            FileSummary(division: $0.division, source: $0.source, snapshot: $0.path, size: $0.size,
                                        records: $0.records, sha256: $0.sha256, copySeconds: $0.copySeconds,
                                        outsideNormalSeconds: $0.windowSeconds)
                        })
        }
        let s = Summary(ok: ok, error: errors.first, errors: errors, node: nodeID, host: o.host, port: o.port, mode: mode,
                        startedAt: Timestamp.iso(startedAt), finishedAt: Timestamp.iso(Timestamp.nowPrecise()),
                        durationSeconds: Timestamp.nowPrecise() - startedAt,
                        bytes: hs.flatMap(\.files).reduce(0) { $0 + $1.size }, hashes: hs, retentionDeleted: retentionDeleted)
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? e.encode(s) else { return "{\"ok\": false, \"error\": \"cannot encode the summary\"}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
