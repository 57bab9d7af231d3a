import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import ROMAClient
import ROMAProtocol
import ROMARouting
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// File-level seeding of a joining node (docs/cluster.md, "File-level seeding").
///
/// A node that joins with empty TokyoCabinet storage takes one romad peer's division files as
/// they are, instead of having every vnode streamed to it record by record:
///
/// 1. it plans its whole share as the join would (`bestJoinMove` until none is left) and picks
///    the seed: the node listed for the most of those vnodes, asked `fileseed info` (same divnum,
///    TokyoCabinet, the same hashes, or no seed);
/// 2. every division here goes to `safecopy_flushed`, so that from now on writes wait in its cache;
/// 3. the primary of every planned vnode the seed holds opens the vnode's transaction to this
///    node (`fileseed open`): writes already past their routing lookup finish first, and the
///    replica writes already sent to the seed are answered before it replies, so that every
///    write is in the seed's file or reaches this node, or both;
/// 4. the seed sends each division file (`fileseed file`) from `safecopy_flushed`, as `cpdb`
///    copies it; here it replaces the empty file and the writes held in the cache are merged
///    into it under R2.9;
/// 5. the primaries commit the vnodes (`fileseed commit`: `edit_nodes`, clock + 1, `setroute`
///    to every node), as a vnode copy does;
/// 6. the records of vnodes this node does not own are purged in the background; copies of
///    those vnodes to this node are refused until the purge is over (a key deleted meanwhile
///    could otherwise come back with them).
///
/// Any failure before a vnode's commit leaves it to the record copies that follow (its
/// transaction is closed, and what the files brought of it is purged first). Ruby ROMA nodes
/// answer `fileseed` with `ERROR`: with one as the seed there is no seeding, and vnodes whose
/// primary is one are copied as records.
extension Node {
    /// The vnodes one `fileseed open`/`commit` line carries.
    static let seedBatch = 64

    /// One request line's worth of a node's vnodes: the node, the moves, and their vnode ids as
    /// the line lists them.
    typealias SeedBatch = (node: String, moves: ArraySlice<(vn: UInt64, primary: Bool)>, vnodes: String)

    /// Each node's `moves` in slices of `seedBatch`, nodes in order, one per request line.
    static func seedBatches(_ byNode: [String: [(vn: UInt64, primary: Bool)]]) -> [SeedBatch] {
        byNode.sorted(by: { $0.key < $1.key }).flatMap { node, moves in
            stride(from: 0, to: moves.count, by: seedBatch).map { i -> SeedBatch in
                let slice = moves[i..<min(i + seedBatch, moves.count)]
                return (node, slice, slice.map { String($0.vn) }.joined(separator: " "))
            }
        }
    }
    /// Division files received at once.
    static let seedParallelism = 2

    /// Rough rates of this code on one machine's loopback (2 cores, 2026-12-06): a record copy
    /// moves about 300,000 records a second, a file seed about 500 MB of division files.
    static let recordCopyRate = 300_000.0
    static let fileSeedRate = 500e6

    /// Seconds a seed of `fileBytes` of division files and a record copy of `share` of
    /// `records` records would take, paced by `bandwidth` bytes/s (0: none) on the sender.
    /// The files are the whole divisions, vnodes this node will not own included; the records
    /// are only the share (of about the same bytes per record as the files).
    static func seedCost(fileBytes: Double, records: Double, share: Double, bandwidth: Double) -> (seed: Double, records: Double) {
        var seed = fileBytes / fileSeedRate
        var copy = records * share / recordCopyRate
        if bandwidth > 0 {
            seed = max(seed, fileBytes / bandwidth)
            copy = max(copy, fileBytes * share / bandwidth)
        }
        return (seed, copy)
    }

    /// Runs the file seed (on the join's pool thread). True when any vnode was committed here.
    func seedFromFiles() -> Bool {
        guard case .tokyoCabinet = config.storage else { return false }
        let planStarted = Node.monotonicNow()
        let names = hashNames.sorted()
        let stores = names.compactMap { storage($0) }
        guard !names.isEmpty, stores.count == names.count else { return false }
        guard stores.allSatisfy(\.isEmptyAndNormal) else {
            logger.info("join: storage is not empty: vnodes are copied as records, not seeded from files")
            return false
        }
        // 1. The share, as the join loop would take it.
        let planTable = routing
        let planned = Node.planJoin(planTable, me: nodeID, replicationInHost: config.replicationInHost)
        guard !planned.isEmpty else { return false }
        var held: [String: Int] = [:]
        for m in planned { for n in planTable.nodes(forVnode: m.vn) ?? [] where n != nodeID { held[n, default: 0] += 1 } }
        guard let seed = held.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key else { return false }
        let plannedAt = Node.monotonicNow()
        let info = (try? peers.line(seed, "fileseed info\r\n").wait()) ?? "no answer"
        let expected = "SEEDINFO \(config.divnum) tc \(names.joined(separator: ","))"
        let fields = info.split(separator: " ")
        guard fields.count == 7, fields[0..<4].joined(separator: " ") == expected,
              let fileBytes = Double(fields[4]), let records = Double(fields[5]), let bandwidth = Double(fields[6]) else {
            logger.info("join: \(seed) answered '\(info)' to fileseed info (this node: '\(expected) …'): vnodes are copied as records")
            return false
        }
        let seedHolds = Double(planTable.vnodes.filter { planTable.nodes(forVnode: $0)?.contains(seed) == true }.count)
        let share = Double(planned.filter { planTable.nodes(forVnode: $0.vn)?.contains(seed) == true }.count) / max(seedHolds, 1)
        let (seedTime, recordTime) = Node.seedCost(fileBytes: fileBytes, records: records, share: share, bandwidth: bandwidth)
        if config.joinFileSeed == .auto && seedTime >= recordTime {
            logger.info("join: \(seed)'s division files (\(Int(fileBytes)) bytes) would take about \(String(format: "%.2f", seedTime)) s against \(String(format: "%.2f", recordTime)) s for copying \(Int(records * share)) records: vnodes are copied as records")
            return false
        }
        let started = Node.monotonicNow()
        // 2. Writes from now on wait in the caches (cache files created: on the pool).
        let receiving: [(HashStorage, Int)]
        do {
            receiving = try background(on: group.next()) { () -> [(HashStorage, Int)] in
                var receiving: [(HashStorage, Int)] = []
                do {
                    for s in stores {
                        for d in 0..<s.divnum {
                            try s.beginSeedReceive(division: d)
                            receiving.append((s, d))
                        }
                    }
                } catch {
                    for (s, d) in receiving { try? s.endSeedReceive(division: d, file: nil) }
                    throw error
                }
                return receiving
            }.wait()
        } catch {
            logger.warning("join: cannot prepare the divisions for a file seed (\(error)): vnodes are copied as records")
            return false
        }
        let preparedAt = Node.monotonicNow()
        // 3. Transactions at the primaries.
        let current = routing
        let wanted = planned.filter { current.nodes(forVnode: $0.vn)?.contains(seed) == true }
        var byPrimary: [String: [(vn: UInt64, primary: Bool)]] = [:]
        for m in wanted { if let p = current.nodes(forVnode: m.vn)?.first { byPrimary[p, default: []].append(m) } }
        // Every batch at once (a primary answers each after its own barrier and probes).
        var opened: [String: [(vn: UInt64, primary: Bool)]] = [:]
        let openBatches = Node.seedBatches(byPrimary)
        let openAnswers = openBatches.map { p, _, vns in
            peers.line(p, "fileseed open \(nodeID) \(seed) \(vns)\r\n", timeout: .seconds(120))
        }
        for ((p, batch, _), future) in zip(openBatches, openAnswers) {
            let answer = (try? future.wait()) ?? "no answer"
            guard answer.hasPrefix("OPENED") else {
                logger.info("join: \(p) answered '\(answer)' to fileseed open: those vnodes are copied as records")
                continue
            }
            let ok = Set(answer.split(separator: " ").dropFirst().compactMap { UInt64($0) })
            opened[p, default: []].append(contentsOf: batch.filter { ok.contains($0.vn) })
        }
        // 4. The files, two at a time (one's flush and swap overlap the other's bytes). After a
        // failure (or with no transaction open) each division only merges what it holds.
        let filesStarted = Node.monotonicNow()
        let noneOpened = opened.values.allSatisfy(\.isEmpty)
        let progress = NIOLockedValueBox((next: 0, bytes: UInt64(0), failure: noneOpened ? "no primary opened a transaction" as String? : nil))
        let work = receiving
        // Bulk work: on the idle-priority pool (this thread, the join's coordinator, waits).
        let workers = DispatchGroup()
        for _ in 0..<min(Node.seedParallelism, max(work.count, 1)) {
            workers.enter()
            background { [self] in
                defer { workers.leave() }
                while let i = progress.withLockedValue({ p -> Int? in
                    guard p.next < work.count else { return nil }
                    p.next += 1
                    return p.next - 1
                }) {
                    let (s, d) = work[i]
                    guard progress.withLockedValue({ $0.failure == nil }), !isShuttingDown else {
                        try? s.endSeedReceive(division: d, file: nil)
                        continue
                    }
                    do {
                        let n = try receiveSeedFile(from: seed, storage: s, division: d)
                        progress.withLockedValue { $0.bytes += n }
                    } catch {
                        try? s.endSeedReceive(division: d, file: nil)
                        progress.withLockedValue { p in
                            if p.failure == nil { p.failure = "division \(d) of \(s.name) from \(seed): \(error)" }
                        }
                    }
                }
            }
        }
        workers.wait()
        let (bytes, failure) = progress.withLockedValue { ($0.bytes, $0.failure) }
        let received = Node.monotonicNow()
        stats.seedBytesReceived.add(Int(bytes), ordering: .relaxed)
        stats.seedReceiveMicros.add(Int((received - filesStarted) * 1e6), ordering: .relaxed)
        // 5. Commits, or the transactions closed. The vnodes count as asked for: their `setroute`
        // must not look like a copy pushed here unasked (`restreamAfterForeignCopy`).
        let now = Node.monotonicNow()
        pulls.withLockedValue { p in for vn in opened.values.joined() { p.asked[vn.vn] = now } }
        // One batch at a time: each is a routing change on every node's event loops (its
        // primary's, then each peer's, 0.1–0.5 ms each for 64 vnodes), which a client request
        // queues behind on each node it passes. Sent all at once, a request met several on each
        // node; one at a time, at most one (requests over 2 ms while the commits ran, four pairs of
        // joins: 15–22 all at once, 8–16 one at a time; the commits take 3 ms longer).
        if failure == nil { warmPeerConnections() }
        // A primary that does not answer gets no more lines: its transactions end at its
        // `routing_trans_timeout`, and each further line would wait out the timeout again.
        var committed = 0
        var silent = Set<String>()
        for (p, batch, vns) in Node.seedBatches(opened) where !silent.contains(p) {
            /// Ends the batch's transactions at `p`; no answer makes `p` silent.
            func close() {
                if (try? peers.line(p, "fileseed close \(nodeID) \(vns)\r\n").wait()) == nil { silent.insert(p) }
            }
            if failure != nil {
                close()
                continue
            }
            let items = batch.map { "\($0.vn):\($0.primary ? 1 : 0)" }.joined(separator: " ")
            guard let answer = try? peers.line(p, "fileseed commit \(nodeID) \(items)\r\n", timeout: .seconds(120)).wait() else {
                logger.warning("join: \(p) did not answer fileseed commit: its vnodes are left to the record copies")
                silent.insert(p)
                continue
            }
            if answer.hasPrefix("COMMITTED") {
                committed += answer.split(separator: " ").count - 1
            } else {
                logger.warning("join: \(p) answered '\(answer)' to fileseed commit")
                close()
            }
        }
        // 6. Records of vnodes not listed for this node go, in the background.
        let table = routing
        let foreign = Set(table.vnodes.filter { !(table.nodes(forVnode: $0) ?? []).contains(nodeID) })
        let mb = Double(bytes) / 1e6
        let seconds = received - filesStarted
        if let failure {
            logger.warning("join: file seed from \(seed) given up (\(failure)); purging what it brought, then copying vnodes as records")
        } else {
            func ms(_ from: Double, _ to: Double) -> Int { Int(((to - from) * 1000).rounded()) }
            logger.notice("join: seeded from \(seed): \(String(format: "%.1f", mb)) MB of division files in \(String(format: "%.2f", seconds)) s (\(String(format: "%.0f", seconds > 0 ? mb / seconds : 0)) MB/s), \(committed) vnode(s) committed here in \(String(format: "%.2f", Node.monotonicNow() - started)) s (plan \(ms(planStarted, plannedAt)) ms, seed info \(ms(plannedAt, started)) ms, divisions prepared \(ms(started, preparedAt)) ms, transactions \(ms(preparedAt, filesStarted)) ms, files \(ms(filesStarted, received)) ms, commits \(ms(received, Node.monotonicNow())) ms)")
        }
        startSeedPurge(foreign, stores: stores)
        return committed > 0
    }

    /// Receives division `d` of `storage` from `seed` into a part file beside it, then swaps it in
    /// (merging the writes held meanwhile). Returns the file's size.
    private func receiveSeedFile(from seed: String, storage s: HashStorage, division d: Int) throws -> UInt64 {
        guard let (host, port) = PeerAddress.split(seed), let dir = s.directory else {
            throw VnodeCopyError(description: "bad node id \(seed)")
        }
        let part = "\(dir)/seed-\(d).tc.part"
        let c = try ROMAConnection(host: host, port: port, connectTimeout: config.peerTimeout, timeout: max(config.peerTimeout, 150))
        defer { c.close() }
        let asked = Node.monotonicNow()
        try c.sendLine("fileseed file \(s.name) \(d)")
        let head = try c.readLine()
        let answered = Node.monotonicNow()
        guard head.hasPrefix("FILE "), let size = Int(head.dropFirst(5)), size >= 0 else {
            throw VnodeCopyError(description: "answered '\(head)'")
        }
        c.timeout = max(config.peerTimeout, 30)
        let fd = open(part, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw VnodeCopyError(description: "cannot create \(part): \(String(cString: strerror(errno)))") }
        do {
            try c.readExact(size, writingTo: fd)
            close(fd)
            let end = try c.readLine()
            // Closing tells the seed that every byte was read: its file may change again.
            c.close()
            let read = Node.monotonicNow()
            guard end == "END" else { throw VnodeCopyError(description: "answered '\(end)' after the file") }
            try s.endSeedReceive(division: d, file: part)
            logger.debug("join: division \(d) of \(s.name) from \(seed): \(size) bytes; first byte after \(Int((answered - asked) * 1e3)) ms, bytes in \(Int((read - answered) * 1e3)) ms, swapped in \(Int((Node.monotonicNow() - read) * 1e3)) ms")
        } catch {
            close(fd)
            unlink(part)
            throw error
        }
        return UInt64(size)
    }

    /// Purges, in the background and gently, the records of `vnodes` (not this node's) that a
    /// seed brought. Such a record must go before its vnode can come back here, or a key deleted
    /// elsewhere meanwhile could come back with it. A copy of one of them that arrives first
    /// (`spushv`) claims the vnode (`claimSeedPurge`): its records then stay. That is safe: every
    /// record the stream brings, identical ones included, is in the stream, and a key deleted
    /// since the seed has its delete mark there (R2.8; delete marks live for days), which
    /// overwrites the old record under R2.9. Replica writes a copy's transaction sends before its
    /// stream may be purged, but the stream, which starts after them, brings them again.
    private func startSeedPurge(_ vnodes: Set<UInt64>, stores: [HashStorage]) {
        guard !vnodes.isEmpty else { return }
        seedPurge.withLockedValue { $0.formUnion(vnodes) }
        background { [self] in
            let started = Node.monotonicNow()
            var removed = 0
            for s in stores {
                do {
                    // Asked under the division lock for each record: a claim takes effect at once.
                    // A vnode listed for this node after all (a commit answered after the joiner
                    // gave up waiting for it) keeps its records.
                    removed += try s.purge(drop: { v in
                        guard seedPurge.withLockedValue({ $0.contains(UInt64(v)) }) else { return false }
                        let snap = routes.snapshot
                        let i = snap.space.index(ofVnode: UInt64(v))
                        return i < 0 || i >= snap.readsLocal.count || !snap.readsLocal[i]
                    },
                                           pause: config.seedPurgePauseTestUs ?? Node.seedPurgePause, shouldStop: { isShuttingDown })
                } catch {
                    logger.error("join: purge of the seeded records not owned here failed in \(s.name): \(error)")
                }
            }
            let claimed = seedPurge.withLockedValue { p -> Int in
                let left = p.intersection(vnodes).count
                p.subtract(vnodes)
                return vnodes.count - left
            }
            stats.seedRecordsDropped.add(removed, ordering: .relaxed)
            logger.info("join: purged \(removed) seeded record(s) of \(vnodes.count) vnode(s) not owned here in \(String(format: "%.1f", Node.monotonicNow() - started)) s (\(claimed) vnode(s) copied here again meanwhile kept theirs)")
        }
    }

    /// µs the seed's purge sleeps after each batch of 32 records (or slice of 256 read), so that
    /// it never holds up the node's requests (at full speed it held writers up by 30–80 ms):
    /// about 50,000 records a second.
    static let seedPurgePause: UInt32 = 500

    /// A copy of `vn` is arriving: a seed's purge leaves the vnode's records alone from now on.
    func claimSeedPurge(_ vn: UInt64) {
        let was = seedPurge.withLockedValue { !$0.isEmpty && $0.remove(vn) != nil }
        if was { logger.info("vnode \(vn) is copied here while a seed's purge runs: its records stay") }
    }
}

// MARK: - The peer's side: `fileseed info|open|close|commit|routes|file`

extension Dispatcher {
    /// `fileseed info`: `SEEDINFO <divnum> <tc|memory> <hash,…> <file bytes> <records> <bandwidth>`
    ///   (hashes sorted; the bytes and records of the division files; the copy bandwidth limit).
    /// `fileseed open <joiner> <seed> <vn>…` (as primary): opens each vnode's transaction to the
    ///   joiner, waits out the writes past their routing lookup and the replica writes sent to the
    ///   seed; `OPENED <vn>…` names those opened (the vnodes this node is primary of).
    /// `fileseed close <joiner> <vn>…`: drops those transactions; `CLOSED`.
    /// `fileseed commit <joiner> <vn>:<0|1>…`: commits each (`edit_nodes`, 1 = as primary),
    ///   sends `setroute` to every node; `COMMITTED <vn>…`.
    /// `fileseed routes <vn>:<clk>:<nid>,……`: `setroute` of each as one change; `STORED <n>`.
    /// `fileseed file <hash> <division>`: `FILE <size>`, the division file from
    ///   `safecopy_flushed`, `END`.
    func fileseed(_ r: Request, out: inout ByteBuffer) -> Outcome {
        let usage = "CLIENT_ERROR usage: fileseed info | open <joiner> <seed> <vn>... | close <joiner> <vn>... | commit <joiner> <vn>:<0|1>... | routes <vn>:<clk>:<nid>,<nid>... | file <hash> <division>"
        guard r.count >= 2 else { out.writeLine(usage); return .next }
        let node = self.node
        let sub = r.tokenString(1)
        switch sub {
        case "info":
            let engine: String
            if case .tokyoCabinet = node.config.storage { engine = "tc" } else { engine = "memory" }
            // Then the division files' bytes and records (all hashes) and the copy bandwidth limit.
            var bytes: UInt64 = 0
            var records: UInt64 = 0
            for name in node.hashNames {
                guard let s = node.storage(name), case .tokyoCabinet = s.engine else { continue }
                for d in 0..<s.divnum {
                    bytes += s.fileSize(ofDivision: d)
                    records += s.recordCount(ofDivision: d)
                }
            }
            out.writeLine("SEEDINFO \(node.config.divnum) \(engine) \(node.hashNames.sorted().joined(separator: ",")) \(bytes) \(records) \(node.copyPacer.bytesPerSecond)")
            return .next
        case "open", "close", "commit":
            let minimum = sub == "open" ? 4 : 3
            guard r.count >= minimum, PeerAddress.split(r.tokenString(2)) != nil else { out.writeLine(usage); return .next }
            let joiner = r.tokenString(2)
            let first = sub == "open" ? 4 : 3
            var items: [(vn: UInt64, primary: Bool)] = []
            for i in first..<r.count {
                let tok = r.tokenString(i).split(separator: ":", omittingEmptySubsequences: false)
                guard let vn = UInt64(tok[0]), node.space.isVnode(vn), tok.count == (sub == "commit" ? 2 : 1),
                      sub != "commit" || tok[1] == "0" || tok[1] == "1" else {
                    out.writeLine(usage)
                    return .next
                }
                items.append((vn, sub == "commit" && tok[1] == "1"))
            }
            let parsed = items
            switch sub {
            case "open":
                let seed = r.tokenString(3)
                guard PeerAddress.split(seed) != nil else { out.writeLine(usage); return .next }
                return .deferred(node.openSeedTransactions(parsed.map(\.vn), joiner: joiner, seed: seed, on: loop).map(Dispatcher.line))
            case "close":
                let table = node.routing
                node.routes.setTransactions(parsed.compactMap { vn, _ in
                    guard let w = node.routes.writeList(vn), w.contains(joiner), !(table.nodes(forVnode: vn) ?? []).contains(joiner) else { return nil }
                    return (vn, nil)
                })
                out.writeLine("CLOSED")
                return .next
            default:
                return .deferred(node.commitSeeded(parsed, joiner: joiner, on: loop).map(Dispatcher.line))
            }
        case "routes":
            // `fileseed routes <vn>:<clk>:<nid>,<nid>…`: `setroute` of each, one routing change.
            var items: [(vn: UInt64, clk: Int, nids: [String])] = []
            for i in 2..<r.count {
                let f = r.tokenString(i).split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard f.count == 3, let vn = UInt64(f[0]), node.space.isVnode(vn), let clk = Int(f[1]) else { out.writeLine(usage); return .next }
                let nids = f[2].split(separator: ",").map(String.init)
                guard !nids.isEmpty, nids.allSatisfy({ PeerAddress.split($0) != nil }) else { out.writeLine(usage); return .next }
                items.append((vn, clk, nids))
            }
            let before = node.routes.snapshot
            let results = node.routes.setRoutes(items)
            var stored = 0
            for (item, result) in zip(items, results) where result.errorMessage == nil {
                stored += 1
                node.restreamAfterForeignCopy(item.vn, before: before.lists[before.space.index(ofVnode: item.vn)], after: item.nids)
            }
            out.writeLine("STORED \(stored)")
            return .next
        case "file":
            guard r.count == 4, let d = Int(r.tokenString(3)) else { out.writeLine(usage); return .next }
            guard let s = storage(named: r.tokenString(2)) else {
                out.writeLine("SERVER_ERROR \(r.tokenString(2)) does not exists.")
                return .next
            }
            guard case .tokyoCabinet = s.engine, d >= 0, d < s.divnum else {
                out.writeLine("SERVER_ERROR no division file \(d) of \(s.name) to send")
                return .next
            }
            let mark = "\(s.name) \(d)"
            let limited = node.copyPacer.bytesPerSecond > 0
            return .sendFile(FileSend(chunk: limited ? 64 * 1024 : 256 * 1024, linger: .seconds(Int64(max(node.config.peerTimeout, 30))), prepare: {
                node.seedSends.withLockedValue { $0[mark, default: 0] += 1 }
                let path: String
                do {
                    path = try s.beginSeedSend(division: d, wait: 120, shouldStop: { node.isShuttingDown })
                } catch {
                    node.endSeedSendMark(mark)
                    throw error
                }
                // The whole file as it lies on disk (TokyoCabinet's own size can be less), as cpdb copies it.
                var st = Glibc.stat()
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0, fstat(fd, &st) == 0 else {
                    let why = String(cString: strerror(errno))
                    if fd >= 0 { close(fd) }
                    try? s.endSeedSend(division: d)
                    node.endSeedSendMark(mark)
                    throw FileSend.Failure(description: "cannot open \(path): \(why)")
                }
                // Read once, front to back.
                _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
                node.logger.info("fileseed: sending division \(d) of \(s.name) (\(st.st_size) bytes)")
                return (fd, Int(st.st_size))
            }, delay: { n in
                node.stats.vnodeBytesSent.add(n, ordering: .relaxed)
                return node.copyPacer.reserve(n)
            }, finish: { _ in
                node.background {
                    do { try s.endSeedSend(division: d) } catch {
                        node.logger.error("fileseed: division \(d) of \(s.name) did not go back to normal: \(error)")
                    }
                    node.endSeedSendMark(mark)
                }
            }))
        default:
            out.writeLine(usage)
            return .next
        }
    }
}

extension Node {
    /// Before the commits make this node a primary and a secondary of its vnodes: the connections
    /// their writes will take (each loop's pipelined connection to every peer, for replica
    /// writes; a pooled one, for forwarded writes) are opened now, each with a `whoami`, rather
    /// than by the first client writes after the commits, which then waited for them (seven
    /// connections made in and just after the commits of one join timed by hand; requests over
    /// 2 ms while the commits ran, eight pairs of joins: median 8 without, 5 with, and fewer
    /// in seven pairs; the primaries open theirs to the joiner in `fileseed open`). Waits at most a
    /// second.
    func warmPeerConnections() {
        let all = whoamiOnEveryLoop(to: peerIDs, pipelined: [true, false], timeout: .seconds(1))
        guard !all.isEmpty else { return }
        _ = try? EventLoopFuture.andAllComplete(all, on: group.next()).wait()
    }

    /// A `whoami` to each of `nodes` from every event loop, on the loop's pipelined connection
    /// and/or a pooled one (`pipelined`), each answered or failed in its future: opens those
    /// connections, and answers after whatever that connection carried before it.
    func whoamiOnEveryLoop(to nodes: [String], pipelined: [Bool], timeout: TimeAmount? = nil) -> [EventLoopFuture<Void>] {
        var probe = ByteBuffer()
        probe.writeStaticString("whoami\r\n")
        return nodes.flatMap { [probe] p in
            group.makeIterator().flatMap { l in
                pipelined.map { peers.request(p, probe, kind: .line, on: l, timeout: timeout, pipelined: $0).map { _ in () } }
            }
        }
    }

    func endSeedSendMark(_ mark: String) {
        seedSends.withLockedValue { m in
            m[mark, default: 1] -= 1
            if m[mark] == 0 { m[mark] = nil }
        }
    }

    /// Whether a file seed sends (or waits to send) division `d` of `hash`, or any of its
    /// divisions when `d` is nil.
    func isSeedSending(_ hash: String, division d: Int?) -> Bool {
        seedSends.withLockedValue { m in
            guard !m.isEmpty else { return false }
            if let d { return m["\(hash) \(d)"] != nil }
            return m.keys.contains { $0.hasPrefix(hash + " ") }
        }
    }

    /// `fileseed open` on a primary: the answer line. The transactions change on the calling
    /// event loop in one step (a pool thread at idle priority holding the routing lock could be
    /// preempted while event loops wait for it); what follows only waits.
    func openSeedTransactions(_ vnodes: [UInt64], joiner: String, seed: String, on loop: any EventLoop) -> EventLoopFuture<String> {
        let table = routing
        let copying = transfers.withLockedValue { $0.vnodes }
        var opened: [(vn: UInt64, list: [String]?)] = []
        for vn in vnodes {
            guard let list = table.nodes(forVnode: vn), list.first == nodeID, !list.contains(joiner) else { continue }
            // Not while a copy of this vnode runs here (its transaction is that copy's).
            guard !copying.contains(vn) else { continue }
            opened.append((vn, list + [joiner]))
        }
        guard !opened.isEmpty else { return loop.makeSucceededFuture("OPENED") }
        routes.setTransactions(opened)
        let vns = opened.map(\.vn)
        // A joiner that never commits nor closes them (stuck, or gone without a leave): dropped
        // after `routing_trans_timeout`, as a vnode copy's transaction is.
        let limit = Double(bitPattern: settings.routingTransTimeout.load(ordering: .relaxed))
        loop.scheduleTask(in: .milliseconds(Int64(min(limit, 1e9) * 1000))) { [self] in
            let table = routing
            let stale = vns.filter { vn in
                (routes.writeList(vn) ?? []).contains(joiner) && !(table.nodes(forVnode: vn) ?? []).contains(joiner)
            }
            guard !stale.isEmpty else { return }
            routes.setTransactions(stale.map { ($0, nil) })
            logger.warning("fileseed: \(stale.count) transaction(s) to \(joiner) still open after routing_trans_timeout: dropped")
        }
        let answer = "OPENED " + vns.map(String.init).joined(separator: " ")
        let closeAll: @Sendable (String) -> String = { [self] why in
            routes.setTransactions(vns.map { ($0, nil) })
            logger.warning("fileseed open for \(joiner): \(why); transactions closed")
            return "SERVER_ERROR \(why)"
        }
        // The connections this node's writes of those vnodes will take to the joiner once they
        // are committed (forwarded writes, each loop's pooled connection), opened now.
        _ = whoamiOnEveryLoop(to: [joiner], pipelined: [false], timeout: .seconds(1))
        // Writes that read the routing before the transactions finish their local part...
        let passed = EventLoopFuture.andAllSucceed(group.makeIterator().map { $0.submit {} }, on: loop)
        // ... and their replica writes to the seed are answered: each loop's pipelined
        // connection carries them in order, so a request behind them is answered after them.
        let answered = passed.flatMap { [self] () -> EventLoopFuture<Void> in
            guard seed != nodeID else { return loop.makeSucceededVoidFuture() }
            return EventLoopFuture.andAllSucceed(whoamiOnEveryLoop(to: [seed], pipelined: [true]), on: loop)
        }
        return answered.flatMap { [self] () -> EventLoopFuture<String> in
            if seed == nodeID || replicator.isQueueEmpty(for: seed) {
                logger.info("fileseed: \(vns.count) transaction(s) opened to \(joiner), seeded from \(seed)")
                return loop.makeSucceededFuture(answer)
            }
            // Replica writes wait in the seed's retry queue: give them up to 30 s.
            return background(on: loop) { [self] in
                let deadline = Node.monotonicNow() + 30
                while !replicator.isQueueEmpty(for: seed) {
                    guard Node.monotonicNow() < deadline else { return closeAll("replica writes to \(seed) still queued after 30 s") }
                    usleep(20_000)
                }
                return answer
            }
        }.flatMapErrorThrowing { error in closeAll("\(seed) did not answer: \(error)") }
    }

    /// `fileseed commit` on a primary: commits on the calling event loop in one step, then tells
    /// every other node (`setroute` per vnode) and answers once they did.
    func commitSeeded(_ items: [(vn: UInt64, primary: Bool)], joiner: String, on loop: any EventLoop) -> EventLoopFuture<String> {
        let table = routing
        var finals: [(vn: UInt64, list: [String])] = []
        for (vn, primary) in items {
            guard let current = table.nodes(forVnode: vn), current.first == nodeID,
                  let w = routes.writeList(vn), w.contains(joiner) else { continue }
            finals.append((vn, Node.editNodes(current, to: joiner, isPrimary: primary, rn: table.rn)))
        }
        let done = routes.commitMany(finals)
        let lists = Dictionary(finals.map { ($0.vn, $0.list) }, uniquingKeysWith: { a, _ in a })
        let lines = done.map { "setroute \($0.vn) \($0.clock - 1) \(lists[$0.vn]!.joined(separator: " "))\r\n" }
        let batch = "fileseed routes" + done.map { " \($0.vn):\($0.clock - 1):\(lists[$0.vn]!.joined(separator: ","))" }.joined() + "\r\n"
        // On each peer's pipelined connection (answered at once, in order): a pooled connection
        // per line would queue the forwarded client writes of the same pool behind them. A romad
        // peer takes the batch as one routing change; a Ruby ROMA peer (`ERROR`) a line each.
        let send: @Sendable (String, String) -> EventLoopFuture<String> = { [self] p, text in
            var b = ByteBuffer()
            b.writeString(text)
            return peers.request(p, b, kind: .line, on: loop, pipelined: true).map { $0.lineString ?? "" }.recover { _ in "" }
        }
        let acks = done.isEmpty ? [] : peerIDs.map { p -> EventLoopFuture<Void> in
            send(p, batch).flatMap { reply -> EventLoopFuture<Void> in
                if reply.hasPrefix("STORED") { return loop.makeSucceededVoidFuture() }
                return EventLoopFuture.andAllComplete(lines.map { send(p, $0).map { _ in () } }, on: loop)
            }
        }
        let answer = "COMMITTED" + done.map { " \($0.vn)" }.joined()
        return EventLoopFuture.andAllComplete(acks, on: loop).map { [self] in
            logger.info("fileseed: \(done.count) vnode(s) committed to \(joiner)")
            return answer
        }
    }
}
