import NIOConcurrencyHelpers
import NIOCore
import ROMAClient
import ROMAProtocol
import ROMARouting
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// Vnode copies (R5.8) and the recover process (R5.10).
///
/// A copy of vnode `vn` to node `T` (asked by `reqpushv <vn> <T> <primary>`):
/// 1. a transaction makes `T` part of the vnode's write list, so every write from now on
///    reaches `T` too (R5.9); a pass over the event loops then waits out any write that read
///    the routing snapshot before the transaction;
/// 2. the vnode's records of every hash are streamed to `T` with `spushv` (ROMA's record layout
///    and 20-byte terminator); `T` applies them under R2.9, so records it got from step 1 in the
///    meantime are never overwritten by older ones;
/// 3. on `STORED` the new list (R5.5 `edit_nodes`) is committed with the clock + 1 and sent to
///    every other node (`setroute`); on any failure the transaction is dropped and nothing
///    changes. No fixed sleeps: the stream goes as fast as the receiver takes it.
extension Node {
    /// R5.5: the list after copying to `to` (primary: in front; else appended), dropping one node
    /// when the list is full: the last one on `to`'s host, else the last.
    static func editNodes(_ list: [String], to: String, isPrimary: Bool, rn: Int) -> [String] {
        let host = NodeID.host(of: to)
        return editNodes(list, to: to, isPrimary: isPrimary, rn: rn, onNewcomersHost: { NodeID.host(of: $0) == host })
    }

    /// `editNodes` on any node representation (the join's move search works on indices).
    static func editNodes<N: Equatable>(_ list: [N], to: N, isPrimary: Bool, rn: Int,
                                        onNewcomersHost: (N) -> Bool) -> [N] {
        var l: [N] = []
        editNodes(list, to: to, isPrimary: isPrimary, rn: rn, onNewcomersHost: onNewcomersHost, into: &l)
        return l
    }

    /// `editNodes` into `out` (emptied first, its storage reused: the join's plan tries two
    /// edits per vnode per move).
    static func editNodes<N: Equatable>(_ list: [N], to: N, isPrimary: Bool, rn: Int,
                                        onNewcomersHost: (N) -> Bool, into out: inout [N]) {
        out.removeAll(keepingCapacity: true)
        if rn == 1 { out.append(to); return }
        for n in list where n != to { out.append(n) }
        if out.count >= rn {
            if let i = out.lastIndex(where: onNewcomersHost) { out.remove(at: i) } else { out.removeLast() }
        }
        if isPrimary { out.insert(to, at: 0) } else { out.append(to) }
    }

    /// `reqpushv` on the source: copies `vn` to `target` in the background. Returns false when
    /// too many copies run already (`REJECTED`).
    func startVnodeCopy(_ vn: UInt64, to target: String, isPrimary: Bool) -> Bool {
        startVnodeCopy(vn, to: target, isPrimary: isPrimary, replacing: nil)
    }

    /// `replacing`: the copy takes that node's place in the list (release, R5.11) instead of
    /// `edit_nodes`.
    func startVnodeCopy(_ vn: UInt64, to target: String, isPrimary: Bool, replacing: String?) -> Bool {
        let ok = transfers.withLockedValue { t -> Bool in
            guard t.running < config.copyParallelism, !t.vnodes.contains(vn) else { return false }
            t.running += 1
            t.vnodes.insert(vn)
            return true
        }
        guard ok else { return false }
        background { [self] in
            defer { transfers.withLockedValue { $0.running -= 1; $0.vnodes.remove(vn) } }
            do {
                try copyVnode(vn, to: target, isPrimary: isPrimary, replacing: replacing)
            } catch {
                logger.error("copy of vnode \(vn) to \(target) failed: \(error); routing unchanged")
            }
        }
        return true
    }


    /// Paces the vnode copies leaving this node to `copyBandwidth` bytes per second together:
    /// each chunk takes its slot on one shared timeline, and its sender sleeps until that slot
    /// (no burst beyond one 64 KiB chunk per copy). Unlimited when the rate is 0.
    final class CopyPacer: Sendable {
        let bytesPerSecond: Int
        private let next = NIOLockedValueBox<Double>(0)

        init(bytesPerSecond: Int) { self.bytesPerSecond = bytesPerSecond }

        /// Blocks the calling (pool) thread until `bytes` may be sent.
        func pace(_ bytes: Int) {
            let wait = reserve(bytes)
            if wait > 0 { usleep(useconds_t(min(wait, 60) * 1_000_000)) }
        }

        /// Takes `bytes` of the bandwidth without waiting: the seconds until they may be sent.
        func reserve(_ bytes: Int) -> Double {
            guard bytesPerSecond > 0 else { return 0 }
            return next.withLockedValue { n -> Double in
                let now = Node.monotonicNow()
                let start = max(n, now)
                n = start + Double(bytes) / Double(bytesPerSecond)
                return start - now
            }
        }
    }

    struct VnodeCopyError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs on a pool thread (blocking I/O to the target is fine there).
    func copyVnode(_ vn: UInt64, to target: String, isPrimary: Bool, replacing: String? = nil) throws {
        guard let list = routing.nodes(forVnode: vn) else { throw VnodeCopyError(description: "\(vn) is not a vnode") }
        let needsRoute = !list.contains(target) || (isPrimary && list.first != target)
        if needsRoute {
            routes.setTransaction(vn, list.contains(target) ? list : list + [target])
            // Any request already past its routing lookup finishes before the copy starts.
            for loop in group.makeIterator() { try loop.submit {}.wait() }
        }
        do {
            let started = Node.monotonicNow()
            // `routing_trans_timeout`: a copy still streaming when its transaction is this old
            // is given up, and the transaction dropped (ROMA drops such transactions every 10 s).
            let giveUpAt = started + Double(bitPattern: settings.routingTransTimeout.load(ordering: .relaxed))
            var records = 0
            var bytes = 0
            for name in hashNames {
                guard let storage = storage(name) else { continue }
                let (n, b) = try streamVnode(vn, of: storage, to: target, giveUpAt: giveUpAt)
                records += n
                bytes += b
                stats.vnodeRecordsSent.add(n, ordering: .relaxed)
                stats.vnodeBytesSent.add(b, ordering: .relaxed)
            }
            guard needsRoute else {
                logger.info("vnode \(vn) streamed again to \(target): \(records) records")
                return
            }
            let current = routing.nodes(forVnode: vn) ?? list
            let final = replacing.map { r in current.map { $0 == r ? target : $0 } }
                ?? Node.editNodes(current, to: target, isPrimary: isPrimary, rn: routing.rn)
            guard let clk = routes.commit(vn, final, handingOver: list.first != nodeID) else { throw VnodeCopyError(description: "vnode vanished") }
            let ms = Int((Node.monotonicNow() - started) * 1000)
            logger.info("vnode \(vn) copied to \(target): \(records) records, \(bytes) bytes in \(ms) ms; now \(final.joined(separator: ","))")
            let line = "setroute \(vn) \(clk - 1) \(final.joined(separator: " "))\r\n"
            let acks = peerIDs.map { peers.line($0, line).map { _ in () }.recover { _ in () } }
            _ = try? EventLoopFuture.andAllComplete(acks, on: group.next()).wait()
        } catch {
            if needsRoute { routes.setTransaction(vn, nil) }
            throw error
        }
    }

    /// Streams the records of `vn` in `storage` to `target` with `spushv`; returns (records, bytes).
    func streamVnode(_ vn: UInt64, of storage: HashStorage, to target: String,
                     giveUpAt: Double = .infinity) throws -> (Int, Int) {
        let v32 = UInt32(truncatingIfNeeded: vn)
        // R5.8: a vnode is dumped from a `normal` division only; a snapshot (cpdb) of the division
        // is waited out, up to two minutes.
        let waitUntil = Node.monotonicNow() + 120
        while !storage.isNormal(vn: v32) {
            guard Node.monotonicNow() < waitUntil, !isShuttingDown else {
                throw VnodeCopyError(description: "division of vnode \(vn) stayed in a snapshot state")
            }
            usleep(20_000)
        }
        guard let (host, port) = PeerAddress.split(target) else { throw VnodeCopyError(description: "bad node id \(target)") }
        let c = try ROMAConnection(host: host, port: port, connectTimeout: config.peerTimeout, timeout: max(config.peerTimeout, 30))
        defer { c.close() }
        try c.sendLine("spushv \(storage.name) \(vn)")
        let ready = try c.readLine()
        guard ready == "READY" else { throw VnodeCopyError(description: "\(target) answered '\(ready)' to spushv") }
        let keys = try storage.keys(ofVnode: v32)
        let now = Dispatcher.now()
        var chunk: [UInt8] = []
        chunk.reserveCapacity(72 * 1024)
        var records = 0
        var total = 0
        for (i, key) in keys.enumerated() {
            guard let (h, value) = try key.withUnsafeBytes({ try storage.rawRecord(vn: v32, key: $0) }) else { continue }
            storage.stepAside(vn: v32, record: i + 1)
            // R5.8: live records and delete marks; expired records stay behind.
            if h.expire != 0 && now > h.expire { continue }
            VnodeStreamRecord.append(&chunk, header: h, key: key, value: value[...])
            records += 1
            if chunk.count >= 64 * 1024 {
                total += chunk.count
                copyPacer.pace(chunk.count)
                try c.send(chunk)
                chunk.removeAll(keepingCapacity: true)
                // `dcnice` / DATACOPY_STREAM_COPY_WAIT_PARAM: a pause after each chunk.
                let wait = settings.copyWaitSeconds
                if wait > 0 { usleep(useconds_t(min(wait, 10) * 1_000_000)) }
                guard Node.monotonicNow() < giveUpAt else {
                    throw VnodeCopyError(description: "transaction older than routing_trans_timeout; copy given up")
                }
            }
        }
        chunk.append(contentsOf: VnodeStreamRecord.terminator)
        total += chunk.count
        copyPacer.pace(chunk.count)
        try c.send(chunk)
        let done = try c.readLine()
        guard done == "STORED" else { throw VnodeCopyError(description: "\(target) answered '\(done)' at the end of the stream") }
        return (records, total)
    }

    // MARK: - Recover (R5.10)

    /// Every short vnode (fewer than rn nodes) that this node may hold (not on a host already in
    /// its list, unless `--replication_in_host`) is copied here from its primary, until none is
    /// left. Runs on a coordinator thread (`coordinate`: it only asks and waits; the copies run
    /// on the pools); false when already running.
    func startRecover(onEnd: (@Sendable () -> Void)? = nil) -> Bool {
        guard !recovering.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        // A recover started by hand ends a pending auto-recover wait (R5.10).
        if onEnd == nil { autoRecover.withLockedValue { if $0.status == "preparing" { $0.status = "waiting" } } }
        coordinate("recover") { [self] in
            defer {
                recovering.store(false, ordering: .releasing)
                onEnd?()
            }
            let started = Node.monotonicNow()
            var copied = 0
            var failures = 0
            let myHost = NodeID.host(of: nodeID)
            var skip = Set<UInt64>()
            while !isShuttingDown && failures < 20 {
                let t = routing
                let candidates = t.shortVnodes.filter { vn in
                    let l = t.nodes(forVnode: vn) ?? []
                    return !skip.contains(vn) && !l.isEmpty && !l.contains(nodeID)
                        && (config.replicationInHost || !l.contains { NodeID.host(of: $0) == myHost })
                }
                if candidates.isEmpty { break }
                // Every node recovers at once, each sending what the others pull: asking for half
                // the copy parallelism keeps a node's copies in flight (in and out) at about
                // `copyParallelism`, as in a join.
                let round = Array(candidates.prefix(max(1, config.copyParallelism / 2)))
                let done = pullVnodes(round.map { ($0, false) }, what: "recover", stillWanted: { [self] vn in
                    let l = routing.nodes(forVnode: vn) ?? []
                    return l.count < routing.rn && !l.contains(nodeID)
                })
                copied += done.count
                for vn in round where !done.contains(vn) {
                    skip.insert(vn)
                    // Another node took it first: not a failure.
                    if (routing.nodes(forVnode: vn) ?? []).count < routing.rn { failures += 1 }
                }
            }
            logger.notice("recover finished: \(copied) vnode(s) copied here in \(Int(Node.monotonicNow() - started)) s, \(routing.shortVnodes.count) short vnode(s) left in the cluster")
        }
        return true
    }
}
