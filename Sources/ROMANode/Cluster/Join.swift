import Foundation
import ROMAClient
import ROMARouting
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// Joining a running cluster (`romad … -j host:port`, R5.4) and the balancing that follows.
public enum JoinPreparation {
    /// Before the node opens anything: asks the seed for its cluster name (`whoami`) and routing
    /// table (`routingdump bin`), tells every node `join <me>` (each must answer `ADDED`), and
    /// writes the table, with this node added, as `<rttable-path>/<nid>.route` (old logs of this
    /// node id are set aside as `.route.<n>.old`). Throws with an operator's message.
    public static func prepare(config: NodeConfig, seed: String) throws {
        let me = config.nodeID
        guard let (host, port) = PeerAddress.split(seed) else { throw ConfigError("[address:port] can not parse.") }
        let c: ROMAConnection
        do { c = try ROMAConnection(host: host, port: port, connectTimeout: config.peerTimeout, timeout: 30) } catch {
            throw ConfigError("cannot join through \(seed): \(error)")
        }
        defer { c.close() }
        let name = try c.request("whoami")
        guard name == config.name else {
            throw ConfigError("\(seed) belongs to cluster '\(name)', this node to '\(config.name)' (-n): not joining")
        }
        try c.sendLine("routingdump bin")
        let lenLine = try c.readLine()
        guard let n = Int(lenLine), n > 0 else { throw ConfigError("\(seed) answered '\(lenLine)' to routingdump bin") }
        let bin = try c.readExact(n)
        _ = try c.readLine()
        guard try c.readLine() == "END" else { throw ConfigError("\(seed): malformed routingdump bin reply") }
        var table: RoutingTable
        do { table = try RoutingTable(binary: bin) } catch { throw ConfigError("\(seed): cannot decode its routing table: \(error)") }
        guard !table.nodes.contains(me) && !table.hasNode(me) else {
            throw ConfigError("\(me) is already in the routing table of \(seed): start it without -j")
        }
        for nid in table.nodes {
            guard let (h, p) = PeerAddress.split(nid) else { continue }
            do {
                let pc = try ROMAConnection(host: h, port: p, connectTimeout: config.peerTimeout, timeout: max(config.peerTimeout, 5))
                defer { pc.close() }
                let answer = try pc.request("join \(me)")
                guard answer == "ADDED" else { throw ConfigError("\(nid) answered '\(answer)' to join") }
            } catch let e as ConfigError {
                throw ConfigError("Hotscale initialize failed. \(e.description)")
            } catch {
                throw ConfigError("Hotscale initialize failed. \(nid): \(error)")
            }
        }
        table.addNode(me)
        let dir = FileSystem.absolute(config.routingPath)
        try FileSystem.makeDirectories(dir)
        let file = "\(dir)/\(me).route"
        for (_, old) in RoutingLog.files(of: file) { rename(old, old + ".old") }
        do { try table.save(path: file) } catch { throw ConfigError("cannot write \(file): \(error)") }
    }
}

extension Node {
    /// The join process (R5.4), aiming past ROMA's: it runs until this node holds its full share —
    /// within one of `rn × vnodes / nodes` vnodes and of `vnodes / nodes` primaries — and picks each
    /// move so that the nodes losing a vnode (`edit_nodes` decides who) are the fullest ones, so
    /// every node ends within one of the mean (ROMA stopped once the newcomer was primary for its
    /// share, leaving it in as few as 37 % of the vnodes of a 3-node cluster). Up to
    /// `copyParallelism` copies are in flight, without sleeps (each takes as long as its data
    /// needs; the source paces them to its `copyBandwidth`).
    ///
    /// `seedFromFiles`: first take a romad peer's division files (`seedFromFiles()`), when this
    /// node's storage is empty; the copies then do what the seed did not.
    func startJoinProcess(seedFromFiles seed: Bool = false) {
        coordinate("join") { [self] in
            let started = Node.monotonicNow()
            if seed { _ = seedFromFiles() }
            var moves = 0
            var refused = Set<UInt64>()
            var failed: [UInt64: Int] = [:]
            // A sliding window of copies: each time one arrives the next best move is asked for,
            // chosen on the table as the copies still in flight will leave it. After a failure,
            // one at a time until a copy succeeds (a failed move changes what the next best is).
            var width = config.copyParallelism
            var inFlight: [(vn: UInt64, primary: Bool, deadline: Double, askAgain: Double)] = []
            while !isShuttingDown {
                // Read before the arrivals are looked at, so that none is missed by the wait.
                let seen = routes.version.load(ordering: .acquiring)
                while inFlight.count < width {
                    var t = routing
                    for m in inFlight {
                        t.replaceRoute(vn: m.vn, nids: Node.editNodes(t.nodes(forVnode: m.vn) ?? [], to: nodeID,
                                                                      isPrimary: m.primary, rn: t.rn))
                    }
                    let busy = refused.union(inFlight.map(\.vn))
                    guard let (vn, primary) = Node.bestJoinMove(t, me: nodeID, replicationInHost: config.replicationInHost,
                                                                excluded: busy) else { break }
                    if requestCopy(vn, primary: primary, what: "join") {
                        let now = Node.monotonicNow()
                        inFlight.append((vn, primary, now + copyWaitLimit, now + Node.askAgainAfter))
                    } else {
                        failed[vn, default: 0] += 1
                        if failed[vn]! >= 3 { refused.insert(vn) }
                        width = 1
                        if !inFlight.isEmpty { break }
                    }
                }
                // An empty window after filling it: no move is left, the share is complete.
                if inFlight.isEmpty { break }
                // Until a routing change (an arrival is one), at most 50 ms (re-asking, deadlines).
                if !inFlight.contains(where: { hasArrived($0.vn, primary: $0.primary) }) {
                    routes.waitForChange(after: seen, timeout: 0.05)
                }
                let now = Node.monotonicNow()
                for i in inFlight.indices where now > inFlight[i].askAgain && !hasArrived(inFlight[i].vn, primary: inFlight[i].primary) {
                    askAgain(inFlight[i].vn, primary: inFlight[i].primary, what: "join")
                    inFlight[i].askAgain = Node.monotonicNow() + Node.askAgainAfter
                }
                inFlight.removeAll { m in
                    if hasArrived(m.vn, primary: m.primary) {
                        moves += 1
                        width = config.copyParallelism
                        return true
                    }
                    guard now > m.deadline else { return false }
                    logger.warning("join: vnode \(m.vn) did not arrive within \(Int(copyWaitLimit)) s (reqpushv_timeout_count)")
                    failed[m.vn, default: 0] += 1
                    if failed[m.vn]! >= 3 { refused.insert(m.vn) }
                    width = 1
                    return true
                }
            }
            let c = routing.counts(for: nodeID)
            logger.notice("join finished: \(moves) vnode(s) copied here in \(String(format: "%.2f", Node.monotonicNow() - started)) s; primary of \(c.primary), in \(c.primary + c.secondary.reduce(0, +)) vnodes")
            joining.store(false, ordering: .releasing)
        }
    }

    /// Runs a membership process's coordinator on a thread of its own, at the priority of the
    /// caller (the main thread or an event loop: normal), not on the idle-priority pool. It does
    /// little work (the plan, batches of requests, waiting for answers), but every step of the
    /// process waits for it: at `SCHED_IDLE` it got no CPU while the copies, the nodes and their
    /// clients kept both cores busy (with a `make test` running beside a join, a file seed's six
    /// commit requests took 25 ms to go out from the pool, 5 ms from a thread of its own). The
    /// bulk work it starts (files, copies) still runs on the pool.
    func coordinate(_ name: String, _ work: @escaping @Sendable () -> Void) {
        let thread = Thread(block: work)
        thread.name = name
        thread.start()
    }

    /// Asks vnode `vn`'s primary to copy it here (`reqpushv`); a `REJECTED` (the source is busy
    /// with that vnode, or with as many copies as it sends at once) is asked again for a while
    /// as long as `stillWanted`. True when the source answered `PUSHED`.
    func requestCopy(_ vn: UInt64, primary: Bool, what: String, maxTries: Int = 50,
                     stillWanted: (UInt64) -> Bool = { _ in true }) -> Bool {
        guard let source = routing.nodes(forVnode: vn)?.first, source != nodeID else { return false }
        var tries = 0
        while true {
            pulls.withLockedValue { $0.asked[vn] = Node.monotonicNow() }
            let answer = (try? peers.line(source, "reqpushv \(vn) \(nodeID) \(primary)\r\n").wait()) ?? "no answer"
            if answer == "REJECTED" && tries < maxTries && stillWanted(vn) {
                tries += 1
                usleep(50_000)
                continue
            }
            if answer == "PUSHED" { return true }
            logger.warning("\(what): \(source) answered '\(answer)' for vnode \(vn)")
            return false
        }
    }

    /// A `setroute` from another node changed the list of `vn`, adding nodes to it that no copy
    /// of this node's put there: another node copied the vnode — a releasing one (R5.11), which
    /// may be a secondary of it. A secondary's copy misses the writes the primary took while it
    /// ran: the primary knew nothing of it and sent them to the old list alone (ROMA 1.3's
    /// release lost them on the new node; a releasing romad node relays them,
    /// `RouteSnapshot.relays`, a Ruby one does not). So the vnode is streamed again from its
    /// primary, in the background, one vnode at a time (R2.9 keeps out what is there already):
    ///
    /// - this node is the primary: it streams the vnode to each added node;
    /// - this node was added behind the primary without asking: unless a stream of the vnode
    ///   comes within 10 s (a romad primary sends it by the first rule), it asks the primary for
    ///   one — `reqpushv <vn> <me> false` on a node already in the list only streams (R5.8) —
    ///   once the primary's own table lists this node.
    func restreamAfterForeignCopy(_ vn: UInt64, before: [String], after: [String]) {
        let me = nodeID
        if after.first == me {
            let added = after.filter { $0 != me && !before.contains($0) }
            guard !added.isEmpty else { return }
            let start = pulls.withLockedValue { p -> Bool in
                for t in added where !p.push.contains(where: { $0.vn == vn && $0.target == t }) { p.push.append((vn, t)) }
                if p.pushing { return false }
                p.pushing = true
                return true
            }
            if start { background { [self] in drainPushes() } }
            return
        }
        guard after.contains(me), !before.contains(me) else { return }
        let start = pulls.withLockedValue { p -> Bool in
            if let t = p.asked[vn], Node.monotonicNow() - t < 300 { return false }  // asked for: it came from the primary
            if !p.restream.contains(where: { $0.vn == vn }) { p.restream.append((vn, Node.monotonicNow())) }
            if p.draining { return false }
            p.draining = true
            return true
        }
        if start { background { [self] in drainRestreams() } }
    }

    private func drainPushes() {
        while !isShuttingDown, let (vn, target) = pulls.withLockedValue({ p -> (vn: UInt64, target: String)? in
            if let next = p.push.popFirst() { return next }
            p.pushing = false
            return nil
        }) {
            guard let list = routing.nodes(forVnode: vn), list.first == nodeID, list.contains(target) else { continue }
            do {
                try copyVnode(vn, to: target, isPrimary: false)
            } catch {
                logger.warning("stream of vnode \(vn) again to \(target), after another node's copy, failed: \(error)")
            }
        }
    }

    private func drainRestreams() {
        while !isShuttingDown, let (vn, since) = pulls.withLockedValue({ p -> (vn: UInt64, since: Double)? in
            if let next = p.restream.popFirst() { return next }
            p.draining = false
            return nil
        }) {
            func streamed(after t: Double) -> Bool { pulls.withLockedValue { ($0.received[vn] ?? 0) > t } }
            // 10 s from the `setroute` (not from now: the queue may have waited already).
            guard !poll(until: since + 10, { streamed(after: since) }) else { continue }  // the primary sent it on its own
            guard let list = routing.nodes(forVnode: vn), list.contains(nodeID), list.first != nodeID else { continue }
            // Only once the primary's table lists this node: else it would take the request for
            // a new copy and edit the list itself.
            let listed = poll(until: Node.monotonicNow() + 5) {
                let route = (try? peers.line(list[0], "getroute \(vn)\r\n").wait()) ?? ""
                return route.split(separator: " ").dropFirst().contains(Substring(nodeID))
            }
            guard listed else {
                logger.warning("vnode \(vn) was pushed here, but \(list[0]) does not list this node after 5 s: not asked to stream it again")
                continue
            }
            // A busy source (Ruby ROMA sends one vnode at a time) refuses: ask again for up to 30 s.
            let asked = Node.monotonicNow()
            guard requestCopy(vn, primary: false, what: "stream again after a copy from a secondary", maxTries: 600) else { continue }
            // One at a time: wait for the stream's end, up to a minute (Ruby ROMA sleeps 1 ms a record).
            let done = poll(until: asked + 60) { streamed(after: asked) }
            logger.info("vnode \(vn) pushed here by another node: \(list[0]) streamed it again\(done ? "" : " (its end not seen within 60 s)")")
        }
    }

    /// Asks `condition` every 50 ms until it holds (true) or the monotonic time `deadline` has
    /// passed, or the node shuts down (false). On a pool thread.
    private func poll(until deadline: Double, _ condition: () -> Bool) -> Bool {
        while !isShuttingDown {
            if condition() { return true }
            if Node.monotonicNow() >= deadline { return false }
            usleep(50_000)
        }
        return false
    }

    /// Seconds a copy asked for is awaited before it counts as failed: `reqpushv_timeout_count`
    /// polls of 0.1 s (ROMA's; 300 by default: 30 s). A copy that arrives later still counts;
    /// a copy paced by a low bandwidth limit may need the count raised.
    var copyWaitLimit: Double { Double(settings.reqpushvTimeoutCount.load(ordering: .relaxed)) * 0.1 }

    /// Seconds after which a copy asked for and not arrived is asked for again.
    static let askAgainAfter = 10.0

    /// Asks again for a copy that answered `PUSHED` and has not come. Ruby ROMA answers `PUSHED`
    /// to a second `reqpushv` that arrives before the first one's copy starts, then drops it
    /// (`already be iterated storage process` in its log): without this, the copy would be given
    /// up after 120 s (seen in a join of romad into a Ruby cluster). Asking a source that is
    /// still copying the vnode is refused (`REJECTED`) or, if it just finished, streams it once
    /// more (R5.8), both harmless; the answer is not waited for beyond a short retry.
    func askAgain(_ vn: UInt64, primary: Bool, what: String) {
        logger.info("\(what): vnode \(vn) not here \(Int(Node.askAgainAfter)) s after its source answered PUSHED: asking again")
        _ = requestCopy(vn, primary: primary, what: what, maxTries: 4)
    }

    /// Whether a copy of `vn` here has arrived: its `setroute` put this node in the list (first,
    /// when asked as primary).
    func hasArrived(_ vn: UInt64, primary: Bool) -> Bool {
        let l = routing.nodes(forVnode: vn) ?? []
        return primary ? l.first == nodeID : l.contains(nodeID)
    }

    /// Asks each vnode's primary to copy it here (as primary or not), all at once, and waits
    /// until each has arrived (its `setroute` reached this node) or failed. Returns the vnodes
    /// that arrived. Runs on a pool thread.
    /// `stillWanted` is asked before a refused (`REJECTED`: the source is busy with that vnode)
    /// request is sent again.
    func pullVnodes(_ wanted: [(UInt64, Bool)], what: String, stillWanted: (UInt64) -> Bool = { _ in false }) -> Set<UInt64> {
        var pending = wanted.filter { requestCopy($0.0, primary: $0.1, what: what, stillWanted: stillWanted) }
        var arrived = Set<UInt64>()
        let limit = copyWaitLimit
        let deadline = Node.monotonicNow() + limit
        var again = Node.monotonicNow() + Node.askAgainAfter
        while !pending.isEmpty && Node.monotonicNow() < deadline && !isShuttingDown {
            let seen = routes.version.load(ordering: .acquiring)
            pending.removeAll { vn, primary in
                let ok = hasArrived(vn, primary: primary)
                if ok { arrived.insert(vn) }
                return ok
            }
            if !pending.isEmpty && Node.monotonicNow() > again {
                for (vn, primary) in pending { askAgain(vn, primary: primary, what: what) }
                again = Node.monotonicNow() + Node.askAgainAfter
            }
            // Until a routing change (an arrival is one), at most 50 ms.
            if !pending.isEmpty { routes.waitForChange(after: seen, timeout: 0.05) }
        }
        for (vn, _) in pending { logger.warning("\(what): vnode \(vn) did not arrive within \(Int(limit)) s (reqpushv_timeout_count)") }
        return arrived
    }

    /// The next copy the joining node `me` asks for: the (vnode, as primary?) whose result per
    /// `edit_nodes` lowers the spread of vnode and primary counts over the nodes most; nil when
    /// no copy improves it (`JoinPlanner.best`).
    static func bestJoinMove(_ t: RoutingTable, me: String, replicationInHost: Bool, excluded: Set<UInt64>) -> (UInt64, Bool)? {
        guard var planner = JoinPlanner(t, me: me, replicationInHost: replicationInHost),
              let move = planner.best(excluded: excluded) else { return nil }
        return (planner.vnodes[move.index], move.primary)
    }

    /// Every move of a whole join, in order: `bestJoinMove` asked again after each move is
    /// applied to the table, until none is left (the file seed's plan). The table is converted
    /// once for the whole plan, and each move judges each distinct list once: the 341 moves of a
    /// 3-node join take about 3 ms of CPU (release build), where asking `bestJoinMove` move by
    /// move took 66 ms.
    static func planJoin(_ t: RoutingTable, me: String, replicationInHost: Bool) -> [(vn: UInt64, primary: Bool)] {
        guard var planner = JoinPlanner(t, me: me, replicationInHost: replicationInHost) else { return [] }
        var plan: [(vn: UInt64, primary: Bool)] = []
        // A vnode moved is not moved again (`apply` marks it taken).
        while let move = planner.best(excluded: []) {
            plan.append((planner.vnodes[move.index], move.primary))
            planner.apply(move)
        }
        return plan
    }
}

/// The join's move search on node indices and counts in arrays (no String operation per
/// candidate): built from a routing table once, it answers the best move (`best`) and applies
/// moves to its own lists and counts (`apply`), as `edit_nodes` would change the table.
struct JoinPlanner {
    struct Move {
        let index: Int
        let primary: Bool
        let after: [Int]
    }

    let vnodes: [UInt64]
    private var lists: [[Int]]
    private var total: [Int]
    private var prim: [Int]
    private let host: [Int]
    private let meI: Int
    /// The table's nodes: the ones the cost counts (list members not in the table come after).
    private let counted: Int
    private let rn: Int
    private let meanTotal: Double
    private let meanPrim: Double
    private let capPrim: Int
    private let capTotal: Int
    private let replicationInHost: Bool
    /// Vnodes `apply` moved.
    private var taken: [Bool]
    private var scratch: [Int] = []

    init?(_ t: RoutingTable, me: String, replicationInHost: Bool) {
        let nodes = t.nodes
        guard let meI = nodes.firstIndex(of: me), nodes.count > 1 else { return nil }
        // Indices: the table's nodes first (the ones the cost counts), then any other list member.
        // A scan of the few names: cheaper than hashing each of the rn × 2^div_bits members
        // (this runs before every move of a record-copy join).
        var names = nodes
        func intern(_ n: String) -> Int {
            if let i = names.firstIndex(of: n) { return i }
            names.append(n)
            return names.count - 1
        }
        vnodes = t.vnodes
        var lists: [[Int]] = []
        lists.reserveCapacity(vnodes.count)
        for vn in vnodes { lists.append((t.nodes(forVnode: vn) ?? []).map(intern)) }
        var hostIDs: [String: Int] = [:]
        var host: [Int] = []
        for n in names {
            let h = String(NodeID.host(of: n))
            if hostIDs[h] == nil { hostIDs[h] = hostIDs.count }
            host.append(hostIDs[h]!)
        }
        var total = [Int](repeating: 0, count: names.count)
        var prim = [Int](repeating: 0, count: names.count)
        for l in lists {
            for n in l { total[n] += 1 }
            if let p = l.first { prim[p] += 1 }
        }
        self.lists = lists
        self.total = total
        self.prim = prim
        self.host = host
        self.meI = meI
        counted = nodes.count
        rn = t.rn
        let v = Double(t.space.vnodeCount)
        meanTotal = Double(t.rn) * v / Double(counted)
        meanPrim = v / Double(counted)
        // The newcomer can only gain: it never goes above its share (rounded up), so what is left
        // over stays spread over the others, each within one of the mean.
        capPrim = Int(meanPrim.rounded(.up))
        capTotal = Int(meanTotal.rounded(.up))
        self.replicationInHost = replicationInHost
        taken = [Bool](repeating: false, count: vnodes.count)
    }

    private func cost() -> Double {
        var c = 0.0
        for n in 0..<counted {
            let dt = Double(total[n]) - meanTotal
            let dp = Double(prim[n]) - meanPrim
            c += dt * dt + 100 * dp * dp
        }
        return c
    }

    /// The move that lowers the cost most, among vnodes not `excluded` nor moved by `apply`; nil
    /// when none lowers it. (Mutating only to try each candidate on the counts and in a scratch
    /// list; the counts are as before when it returns.)
    mutating func best(excluded: Set<UInt64>) -> Move? {
        let base = cost()
        var best: (index: Int, primary: Bool, cost: Double)?
        // A move's effect depends on the vnode's list alone: each list is judged once, on the
        // first vnode (in table order) that has it, which is the one a scan of every vnode would
        // keep (the others cost the same and only a lower cost replaces the best).
        var judged: [[Int]] = []
        for k in vnodes.indices where !taken[k] && (excluded.isEmpty || !excluded.contains(vnodes[k])) {
            let l = lists[k]
            if l.isEmpty || judged.contains(l) { continue }
            judged.append(l)
            for primary in [true, false] {
                if l.contains(meI) && (!primary || l.first == meI) { continue }
                edit(l, primary: primary, into: &scratch)
                if !replicationInHost && !onDistinctHosts(scratch) { continue }
                shift(from: l, to: scratch)
                let allowed = prim[meI] <= capPrim && total[meI] <= capTotal
                let c = allowed ? cost() : .infinity
                shift(from: scratch, to: l)
                if allowed && c < base - 1e-9, best == nil || c < best!.cost { best = (k, primary, c) }
            }
        }
        guard let best else { return nil }
        var after: [Int] = []
        edit(lists[best.index], primary: best.primary, into: &after)
        return Move(index: best.index, primary: best.primary, after: after)
    }

    /// Applies `move` (found by `best`) to the lists and counts; its vnode is not moved again.
    mutating func apply(_ move: Move) {
        shift(from: lists[move.index], to: move.after)
        lists[move.index] = move.after
        taken[move.index] = true
    }

    /// `Node.editNodes` of `l` with this node as the newcomer, into `out`.
    private func edit(_ l: [Int], primary: Bool, into out: inout [Int]) {
        let meHost = host[meI]
        Node.editNodes(l, to: meI, isPrimary: primary, rn: rn, onNewcomersHost: { host[$0] == meHost }, into: &out)
    }

    private func onDistinctHosts(_ l: [Int]) -> Bool {
        for i in l.indices.dropFirst() {
            for j in 0..<i where host[l[i]] == host[l[j]] { return false }
        }
        return true
    }

    /// The counts as they are with a vnode's list `a` replaced by `b`.
    private mutating func shift(from a: [Int], to b: [Int]) {
        for n in a { total[n] -= 1 }
        for n in b { total[n] += 1 }
        prim[a[0]] -= 1
        prim[b[0]] += 1
    }
}

// MARK: - Release (R5.11) and balance (R5.12)

extension Node {
    /// `release`: every vnode that lists this node is copied to another node (the one holding the
    /// fewest vnodes among those not on a host already in the list), which takes this node's
    /// place in the list. Incoming copies are refused meanwhile (`spushv_protection`). When it
    /// ends this node holds no vnode and can be stopped without losing anything. Returns an error
    /// line when it cannot start.
    func startRelease() -> String? {
        let t = routing
        let hosts = Set(t.nodes.filter { $0 != nodeID }.map { NodeID.host(of: $0) })
        let others = t.nodes.filter { $0 != nodeID }
        if (config.replicationInHost ? others.count : hosts.count) < t.rn {
            return "SERVER_ERROR Releasing this node would leave fewer nodes than the redundancy \(t.rn)."
        }
        guard !joining.load(ordering: .relaxed), !recovering.load(ordering: .relaxed),
              !releasing.exchange(true, ordering: .acquiringAndReleasing) else {
            return "SERVER_ERROR Other process is already running."
        }
        spushvProtection.store(true, ordering: .releasing)
        background { [self] in
            defer { releasing.store(false, ordering: .releasing) }
            let started = Node.monotonicNow()
            var moved = 0
            var failures = 0
            while !isShuttingDown && failures < 50 {
                let t = routing
                guard let vn = t.vnodes.first(where: { (t.nodes(forVnode: $0) ?? []).contains(nodeID) }),
                      let list = t.nodes(forVnode: vn) else { break }
                var load: [String: Int] = [:]
                for v in t.vnodes { for n in t.nodes(forVnode: v) ?? [] { load[n, default: 0] += 1 } }
                let rest = list.filter { $0 != nodeID }
                let candidates = t.nodes.filter { n in
                    n != nodeID && !list.contains(n)
                        && (config.replicationInHost || !rest.contains { NodeID.host(of: $0) == NodeID.host(of: n) })
                }
                guard let target = candidates.min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) }) else {
                    logger.error("release: no node can take vnode \(vn) (\(list.joined(separator: ",")))")
                    failures += 1
                    break
                }
                do {
                    try copyVnode(vn, to: target, isPrimary: list.first == nodeID, replacing: nodeID)
                    moved += 1
                } catch {
                    logger.warning("release: copy of vnode \(vn) to \(target) failed: \(error); trying again")
                    failures += 1
                    usleep(200_000)
                }
            }
            let left = routing.vnodes.filter { (routing.nodes(forVnode: $0) ?? []).contains(nodeID) }.count
            logger.notice("release finished: \(moved) vnode(s) handed over in \(Int(Node.monotonicNow() - started)) s; \(left) still list this node\(left == 0 ? ": it can be stopped" : "")")
        }
        return nil
    }

    /// `balance`/`rbalance`: a node below its share of primaries pulls vnodes as a joining node
    /// does. Nil when started, else the reason it did not.
    func startBalance() -> Bool {
        let t = routing
        guard t.vnodeBalance(for: nodeID) == .less, !releasing.load(ordering: .relaxed), !recovering.load(ordering: .relaxed),
              !joining.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        startJoinProcess()
        return true
    }
}

extension JoinPreparation {
    /// A node on the memory engine keeps nothing over a restart, yet its route file still lists it
    /// as an owner of its vnodes (ROMA 1.3 then served them empty: spec §11 item 12). Before
    /// such a node opens anything it tells every other node of its table `leave <me>`, so that
    /// none counts on it, and returns a node to join through (`-j`), which then copies its share
    /// back. Nil when there is nothing to do: another engine, no route file, no routing log of
    /// this node beside it (the node has not run on this table yet: a cluster started from
    /// `mkroute`, where every node is empty), no other node in it, or none of them answering (a
    /// whole cluster restarted: nothing is left to copy).
    public static func rejoinSeed(config: NodeConfig, log: (String) -> Void) -> String? {
        guard case .memory = config.storage, config.joinSeed == nil else { return nil }
        let me = config.nodeID
        let file = "\(FileSystem.absolute(config.routingPath))/\(me).route"
        guard FileSystem.exists(file), !RoutingLog.files(of: file).isEmpty,
              let table = try? RoutingTable.load(path: file), table.hasNode(me) else { return nil }
        let others = table.nodes.filter { $0 != me }
        guard !others.isEmpty else { return nil }
        var seed: String?
        for nid in others {
            guard let (h, p) = PeerAddress.split(nid) else { continue }
            do {
                let c = try ROMAConnection(host: h, port: p, connectTimeout: min(config.peerTimeout, 2), timeout: max(config.peerTimeout, 5))
                defer { c.close() }
                guard try c.request("whoami") == config.name else { continue }
                let answer = try c.request("leave \(me)")
                log("memory storage restarted empty: \(nid) answered '\(answer)' to leave \(me)")
                if seed == nil { seed = nid }
            } catch {
                log("memory storage restarted empty: \(nid) did not answer (\(error))")
            }
        }
        return seed
    }
}
