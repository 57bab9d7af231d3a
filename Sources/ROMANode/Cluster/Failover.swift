import NIOConcurrencyHelpers
import NIOCore
import ROMAProtocol
import ROMARouting

#if canImport(Glibc)
import Glibc
#endif

/// What a node does when a vnode loses its last node (R5.7, `DEFAULT_LOST_ACTION`).
enum LostAction: String, Sendable {
    /// Leave the vnode empty: its keys answer `SERVER_ERROR Message forward failed.`
    case noAction = "no_action"
    /// Give the vnode the node list of the next non-empty vnode (the data is gone; logged).
    case autoAssign = "auto_assign"
    /// Stop the whole cluster (`rbalse lose_data`).
    case shutdown
}

/// Failure detection (R5.6) with ROMA 1.3's weaknesses fixed (§11 item 11): every peer is
/// probed every interval (the round does not stop at the first failure); each node has its own
/// failure counter and its own time gap; only probe failures count (a slow forward under load
/// never makes a node leave). A node that fails `threshold` probes in a row leaves the cluster.
final class FailureDetector: Sendable {
    struct State {
        /// Failover is on (after start-up, until `switch_failover off`).
        var enabled = false
        var threshold: Int
        var gap: Double
        var lostAction: LostAction
        var counts: [String: Int] = [:]
        var lastFailure: [String: Double] = [:]
        /// Peers with a probe in flight (never two at once).
        var probing: Set<String> = []
    }

    let state: NIOLockedValueBox<State>

    init(threshold: Int, gap: Double, lostAction: LostAction) {
        state = NIOLockedValueBox(State(threshold: max(1, threshold), gap: max(0, gap), lostAction: lostAction))
    }

    var enabled: Bool { state.withLockedValue { $0.enabled } }

    /// Turns failover on or off; either way the counters start again (R5.6). True if it changed.
    @discardableResult
    func setEnabled(_ on: Bool) -> Bool {
        state.withLockedValue { s in
            let changed = s.enabled != on
            s.enabled = on
            s.counts = [:]
            s.lastFailure = [:]
            return changed
        }
    }

    /// A probe of `nid` failed at `now`; true when the node must leave.
    func failed(_ nid: String, now: Double) -> Bool {
        state.withLockedValue { s in
            guard s.enabled else { return false }
            if let last = s.lastFailure[nid], now - last <= s.gap { return false }
            s.lastFailure[nid] = now
            let n = (s.counts[nid] ?? 0) + 1
            s.counts[nid] = n
            if n >= s.threshold {
                s.counts[nid] = nil
                s.lastFailure[nid] = nil
                return true
            }
            return false
        }
    }

    func succeeded(_ nid: String) {
        state.withLockedValue { s in
            s.counts[nid] = nil
            s.lastFailure[nid] = nil
        }
    }
}

extension Node {
    static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Starts the probes (R5.6) and the routing sync (R5.13); failover is enabled once the
    /// node serves (R5.3).
    func startClusterProcesses() {
        guard !peerIDs.isEmpty || routes.fromFile else { return }
        let loop = group.next()
        let interval = TimeAmount.nanoseconds(Int64(config.failoverProbeInterval * 1e9))
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] task in
            if isShuttingDown { task.cancel(); return }
            guard serving.load(ordering: .relaxed) else { return }
            if !failureDetectorArmed.exchange(true, ordering: .acquiringAndReleasing) {
                failover.setEnabled(true)
                logger.info("failover enabled: probing \(peerIDs.count) node(s) every \(config.failoverProbeInterval) s")
            }
            probeAll()
        }
        let syncEvery = TimeAmount.nanoseconds(Int64(config.routingSyncInterval * 1e9))
        loop.scheduleRepeatedTask(initialDelay: syncEvery, delay: syncEvery) { [self] task in
            if isShuttingDown { task.cancel(); return }
            guard serving.load(ordering: .relaxed) else { return }
            syncRouting()
        }
    }

    /// One probe round: `whoami` to every other node at once.
    private func probeAll() {
        guard failover.enabled else { return }
        let timeout = TimeAmount.nanoseconds(Int64(min(config.peerTimeout, config.failoverProbeInterval) * 1e9))
        for nid in peerIDs {
            let start = failover.state.withLockedValue { $0.probing.insert(nid).inserted }
            guard start else { continue }
            peers.line(nid, "whoami\r\n", timeout: timeout).whenComplete { [self] result in
                failover.state.withLockedValue { _ = $0.probing.remove(nid) }
                if case .success(let name) = result, name == config.name {
                    failover.succeeded(nid)
                    return
                }
                let why: String
                switch result {
                case .success(let answer): why = "answered '\(answer)'"
                case .failure(let error): why = "\(error)"
                }
                logger.warning("probe of \(nid) failed: \(why)")
                if failover.failed(nid, now: Node.monotonicNow()) {
                    logger.error("\(nid) failed \(failover.state.withLockedValue { $0.threshold }) probes in a row: it leaves the cluster")
                    leave(nid, broadcast: true)
                }
            }
        }
    }

    /// R5.7: `nid` leaves — removed from every vnode (clocks bumped, logged), connections to it
    /// closed, its queued replica writes dropped (counted), the other nodes told (`leave <nid>`)
    /// when `broadcast`; then the lost-vnode action.
    func leave(_ nid: String, broadcast: Bool) {
        guard nid != nodeID else { return }
        let changes = routes.leave(nid)
        peers.disconnect(nid)
        guard !changes.isEmpty || broadcast else { return }
        logger.warning("\(nid) left the routing table: \(changes.count) vnode(s) changed")
        if broadcast {
            for other in peerIDs where other != nid {
                _ = peers.line(other, "leave \(nid)\r\n").map { _ in () }
            }
        }
        handleLostVnodes()
        armAutoRecover()
    }

    /// R5.10: after a leave that left vnodes short (none lost), with auto-recover on and
    /// `lost_action` auto_assign or shutdown, `recover` starts once `seconds` have passed without
    /// another change of the status (a later leave starts the wait again; `set_auto_recover`
    /// resets it).
    func armAutoRecover() {
        let t = routing
        guard !t.shortVnodes.isEmpty, t.lostVnodes.isEmpty,
              failover.state.withLockedValue({ $0.lostAction != .noAction }) else { return }
        guard let (generation, seconds) = autoRecover.withLockedValue({ s -> (Int, Int)? in
            guard s.enabled else { return nil }
            s.status = "preparing"
            s.generation += 1
            return (s.generation, s.seconds)
        }) else { return }
        logger.notice("auto-recover: recover starts in \(seconds) s unless the routing changes meanwhile")
        group.next().scheduleTask(in: .seconds(Int64(seconds))) { [self] in
            let go = autoRecover.withLockedValue { s -> Bool in
                guard s.enabled, s.status == "preparing", s.generation == generation else { return false }
                s.status = "executing"
                return true
            }
            guard go else { return }
            if !startRecover(onEnd: { [self] in autoRecover.withLockedValue { if $0.status == "executing" { $0.status = "waiting" } } }) {
                autoRecover.withLockedValue { $0.status = "waiting" }
            }
        }
    }

    /// After a leave: vnodes without any node are lost (R5.7).
    func handleLostVnodes() {
        let lost = routing.lostVnodes
        guard !lost.isEmpty else { return }
        let action = failover.state.withLockedValue { $0.lostAction }
        logger.error("\(lost.count) vnode(s) lost their last node (data of those vnodes is gone from the cluster); lost_action \(action.rawValue)")
        switch action {
        case .noAction:
            break
        case .autoAssign:
            for vn in lost {
                let changed: [String] = routes.mutate { t, _ in
                    let next = t.nextAliveNodes(after: vn)
                    guard !next.isEmpty, (t.nodes(forVnode: vn) ?? []).isEmpty, let clk = t.replaceRoute(vn: vn, nids: next) else {
                        return ([], [])
                    }
                    return (next, [.setroute(vnode: vn, clock: clk, nodes: next)])
                }
                if !changed.isEmpty { logger.error("vnode \(vn) auto-assigned to \(changed.joined(separator: ","))") }
            }
        case .shutdown:
            for other in peerIDs {
                _ = peers.line(other, "rbalse lose_data\r\n").map { _ in () }
            }
            shutdown(reason: "lost_action shutdown: vnodes lost")
        }
    }
}

// MARK: - Routing sync (R5.13)

extension Node {
    /// Every `routingSyncInterval`: compare the Merkle tree with the node before this one in sorted
    /// order; descend where it differs; at each differing vnode the newer clock wins (pulled with
    /// `getroute`, or pushed with `setroute`). Equal clocks with different lists, which ROMA 1.3
    /// never resolves (§11 item 11), are settled the same way on both sides: the list whose
    /// Ruby-inspect text sorts greater is set with the clock + 1, here and at the peer.
    func syncRouting() {
        let nodes = routing.nodes
        guard nodes.count > 1, let me = nodes.firstIndex(of: nodeID),
              !routingSyncRunning.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let peer = nodes[(me + nodes.count - 1) % nodes.count]
        compareSubtree(peer, "0").whenComplete { [self] result in
            routingSyncRunning.store(false, ordering: .releasing)
            if case .success(let changed) = result, changed > 0 {
                routes.createNodesFromVIdx()
                _ = peers.line(peer, "create_nodes_from_v_idx\r\n").map { _ in () }
                logger.notice("routing sync with \(peer): \(changed) vnode(s) reconciled")
            }
        }
    }

    /// Compares Merkle node `id` with `peer`'s; returns how many vnodes were reconciled below it.
    private func compareSubtree(_ peer: String, _ id: String) -> EventLoopFuture<Int> {
        let loop = group.next()
        guard let mine = routes.mklhash(id: id) else { return loop.makeSucceededFuture(0) }
        return peers.line(peer, "mklhash \(id)\r\n").flatMap { [self] theirs in
            if theirs == mine || theirs.isEmpty { return loop.makeSucceededFuture(0) }
            if id.count == routing.divBits + 1 { return reconcileLeaf(peer, id) }
            let children = [compareSubtree(peer, id + "0"), compareSubtree(peer, id + "1")]
            return EventLoopFuture.whenAllSucceed(children, on: loop).map { $0.reduce(0, +) }
        }
    }

    private func reconcileLeaf(_ peer: String, _ id: String) -> EventLoopFuture<Int> {
        let loop = group.next()
        let index = Int(id.dropFirst(), radix: 2) ?? 0
        let vn = space.vnode(atIndex: index)
        return peers.line(peer, "getroute \(vn)\r\n").flatMap { [self] line in
            let parts = line.split(separator: " ")
            guard let first = parts.first, let peerClkMinus1 = Int(first) else { return loop.makeSucceededFuture(0) }
            let peerClock = peerClkMinus1 + 1
            let peerList = parts.dropFirst().map(String.init)
            guard let local = routing.route(forVnode: vn) else { return loop.makeSucceededFuture(0) }
            if peerClock > local.clock {
                _ = routes.setRoute(vn: vn, clk: peerClkMinus1, nids: peerList)
                return loop.makeSucceededFuture(1)
            }
            if peerClock < local.clock {
                return push(peer, vn, clk: local.clock - 1, local.nodes)
            }
            guard peerList != local.nodes else { return loop.makeSucceededFuture(0) }
            let winner = RubyInspect.array(peerList) > RubyInspect.array(local.nodes) ? peerList : local.nodes
            _ = routes.setRoute(vn: vn, clk: local.clock, nids: winner)
            return push(peer, vn, clk: local.clock, winner)
        }
    }

    private func push(_ peer: String, _ vn: UInt64, clk: Int, _ nids: [String]) -> EventLoopFuture<Int> {
        peers.line(peer, "setroute \(vn) \(clk) \(nids.joined(separator: " "))\r\n").map { _ in 1 }
    }
}
