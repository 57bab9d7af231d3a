import NIOConcurrencyHelpers
import ROMARouting
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the request path needs from the routing table, by vnode index, frozen at one table
/// version (readers take the current one without a lock; a change builds a new one).
final class RouteSnapshot: Sendable {
    let space: VnodeSpace
    /// Read lists (`v_idx`), by vnode index.
    let lists: [[String]]
    /// Write lists (the transaction list while a vnode moves, R5.9), by vnode index.
    let writeLists: [[String]]
    /// This node is in the read list.
    let readsLocal: [Bool]
    /// This node is the first of the write list.
    let writesLocal: [Bool]
    /// Every vnode's write list is this node alone: no forwarding, no replication anywhere.
    let standalone: Bool
    /// Where a replica write (`rset`, `rdelete`) that this node stores goes on, by vnode index;
    /// empty but for the vnodes this node copies, or handed over, as a secondary.
    ///
    /// A node releasing a vnode it is a secondary of (R5.11) copies it to its successor while the
    /// primary, which knows nothing of the copy, sends the vnode's writes here alone — and goes on
    /// doing so until the new list reaches it. ROMA lost those writes on the successor. Here they
    /// go on: to the copy's target while the copy runs (the transaction list's extra nodes), to
    /// the list's secondaries once this node has handed the vnode over. Duplicates are harmless
    /// (R2.8).
    let relays: [[String]]

    /// Vnodes whose write list is not this node alone (`standalone` when 0).
    let notAlone: Int

    convenience init(table: RoutingTable, transactions: [UInt64: [String]], handedOver: Set<UInt64> = [], me: String) {
        let n = table.space.vnodeCount
        // From nothing (every entry empty, so not "this node alone"), every vnode changed.
        self.init(space: table.space, lists: [[String]](repeating: [], count: n), writeLists: [[String]](repeating: [], count: n),
                  reads: [Bool](repeating: false, count: n), writes: [Bool](repeating: false, count: n),
                  relays: [[String]](repeating: [], count: n), notAlone: n, table: table, transactions: transactions,
                  handedOver: handedOver, me: me, changed: (0..<n).map { table.space.vnode(atIndex: $0) })
    }

    /// `base` with the entries of the `changed` vnodes taken again from `table` (every other
    /// vnode is as in `base`): a routing change of a few vnodes costs those vnodes, not the
    /// whole table (a join's commits change hundreds, one at a time, on every node).
    convenience init(updating base: RouteSnapshot, table: RoutingTable, transactions: [UInt64: [String]], handedOver: Set<UInt64>,
                     me: String, changed: [UInt64]) {
        self.init(space: base.space, lists: base.lists, writeLists: base.writeLists, reads: base.readsLocal,
                  writes: base.writesLocal, relays: base.relays, notAlone: base.notAlone, table: table,
                  transactions: transactions, handedOver: handedOver, me: me, changed: changed)
    }

    private init(space: VnodeSpace, lists: [[String]], writeLists: [[String]], reads: [Bool], writes: [Bool],
                 relays: [[String]], notAlone: Int, table: RoutingTable, transactions: [UInt64: [String]],
                 handedOver: Set<UInt64>, me: String, changed: [UInt64]) {
        var (lists, writeLists, reads, writes, relays, notAlone) = (lists, writeLists, reads, writes, relays, notAlone)
        for vn in changed {
            let i = space.index(ofVnode: vn)
            guard i >= 0 && i < lists.count, space.vnode(atIndex: i) == vn else { continue }
            let e = RouteSnapshot.entry(vn, table, transactions, handedOver, me)
            let wasAlone = writeLists[i].count == 1 && writeLists[i][0] == me
            if wasAlone != e.alone { notAlone += e.alone ? -1 : 1 }
            lists[i] = e.list
            writeLists[i] = e.write
            reads[i] = e.reads
            writes[i] = e.writes
            relays[i] = e.relay
        }
        self.space = space
        self.relays = relays
        self.lists = lists
        self.writeLists = writeLists
        readsLocal = reads
        writesLocal = writes
        self.notAlone = notAlone
        standalone = notAlone == 0
    }

    private static func entry(_ vn: UInt64, _ table: RoutingTable, _ transactions: [UInt64: [String]],
                              _ handedOver: Set<UInt64>, _ me: String)
        -> (list: [String], write: [String], reads: Bool, writes: Bool, alone: Bool, relay: [String]) {
        let l = table.nodes(forVnode: vn) ?? []
        let w = transactions.isEmpty ? l : (transactions[vn] ?? l)
        let reads = l.contains(me)
        var relay: [String] = []
        if reads, w != l, w.first != me {
            relay = w.filter { !l.contains($0) }
        } else if !reads, handedOver.contains(vn) {
            relay = l.dropFirst().filter { $0 != me }
        }
        return (l, w, reads, w.first == me, w.count == 1 && w[0] == me, relay)
    }
}

/// The node's routing table (R4.1) with its log (R4.5): one lock around the table, a frozen
/// `RouteSnapshot` for the request path, and a version counter connections use to notice a
/// change.
final class RouteState: Sendable {
    let me: String
    private let state: NIOLockedValueBox<State>
    private let current: NIOLockedValueBox<RouteSnapshot>
    /// Bumped on every change.
    let version = Atomic<Int>(0)
    /// Wakes the threads in `waitForChange` after each bump of `version`.
    private let changed = ChangeSignal()
    /// Whether the table came from a route file (a cluster member) rather than the built-in
    /// single-node table.
    let fromFile: Bool
    /// `<rttable path>/<nid>.route`, when the table came from one.
    let routeFile: String?

    struct State {
        var table: RoutingTable
        var transactions: [UInt64: [String]] = [:]
        /// Vnodes this node copied away as a secondary and left (release): replica writes for
        /// them still arriving here are relayed (`RouteSnapshot.relays`). Dropped when the node
        /// is in the vnode's list again.
        var handedOver: Set<UInt64> = []
        /// `(unix time, event)` of `join`/`leave` for `stat routing.event`.
        var events: [String] = []
        var log: RoutingLogWriterBox?
    }

    /// Holds the (non-Sendable) log writer; only touched under `state`'s lock.
    /// `@unchecked Sendable`: the writer is used only while `RouteState.state` is locked.
    final class RoutingLogWriterBox: @unchecked Sendable {
        let writer: RoutingLogWriter
        init(_ w: RoutingLogWriter) { writer = w }
    }

    init(table: RoutingTable, me: String, routeFile: String?) throws {
        self.me = me
        var log: RoutingLogWriterBox?
        if let routeFile { log = RoutingLogWriterBox(try RoutingLogWriter(routeFile: routeFile)) }
        fromFile = routeFile != nil
        self.routeFile = routeFile
        state = NIOLockedValueBox(State(table: table, log: log))
        current = NIOLockedValueBox(RouteSnapshot(table: table, transactions: [:], me: me))
    }

    /// The current snapshot.
    var snapshot: RouteSnapshot { current.withLockedValue { $0 } }

    /// A copy of the table.
    var table: RoutingTable { state.withLockedValue { $0.table } }

    var events: [String] { state.withLockedValue { $0.events } }

    /// Runs `body` on the table under the lock; when it returns log events, they are written,
    /// and the snapshot is rebuilt.
    @discardableResult
    func mutate<T>(_ body: (inout RoutingTable, inout [UInt64: [String]]) -> (T, [RoutingLog.Event])) -> T {
        state.withLockedValue { s in
            let before = s.transactions
            s.table.deferMerkleUpdates()
            // The Merkle tree's update waits for the next `mklhash` (`RouteState.mklhash`): a
            // join's commits change 64 vnodes a batch, on every node's event loops, and the tree's
            // update was 45–120 µs of each batch's 0.15–0.5 ms.
            let (result, events) = body(&s.table, &s.transactions)
            if events.isEmpty && s.transactions != before {
                publish(s)
            } else if !events.isEmpty {
                s.handedOver = s.handedOver.filter { !(s.table.nodes(forVnode: $0) ?? []).contains(me) }
                do { try s.log?.writer.write(events) } catch {}
                for e in events {
                    switch e {
                    case .join(let n): s.events.append("\(RouteState.stamp()) join \(n)")
                    case .leave(let n): s.events.append("\(RouteState.stamp()) leave \(n)")
                    default: break
                    }
                }
                if s.events.count > 1000 { s.events.removeFirst(s.events.count - 1000) }
                // Only `setroute`s (and `join`s, which add to the node list alone): those vnodes
                // change; after a `leave` the whole snapshot is rebuilt.
                var changed: [UInt64]? = []
                for e in events {
                    switch e {
                    case .setroute(let vn, _, _): changed?.append(vn)
                    case .join: break
                    case .leave: changed = nil
                    }
                }
                if changed != nil, s.transactions != before {
                    for vn in Set(before.keys).union(s.transactions.keys) where before[vn] != s.transactions[vn] { changed?.append(vn) }
                }
                publish(s, changed: changed)
            }
            return result
        }
    }

    /// `mklhash <id>` of the table, its Merkle tree brought up to date in place first (routing
    /// changes leave that to the first one who asks).
    func mklhash(id: some StringProtocol) -> String? {
        state.withLockedValue { s in
            s.table.applyDeferredMerkleUpdates()
            return s.table.mklhash(id: id)
        }
    }

    /// Opens or ends several transactions at once (one new snapshot).
    func setTransactions(_ changes: [(vn: UInt64, list: [String]?)]) {
        guard !changes.isEmpty else { return }
        state.withLockedValue { s in
            for c in changes { s.transactions[c.vn] = c.list }
            publish(s, changed: changes.map(\.vn))
        }
    }

    /// `commit` of several vnodes at once (one new snapshot): each transaction ends and its
    /// vnode gets its final list with the clock + 1. Returns (vnode, new clock) of those done.
    func commitMany(_ items: [(vn: UInt64, list: [String])]) -> [(vn: UInt64, clock: Int)] {
        guard !items.isEmpty else { return [] }
        return mutate { t, trans in
            var done: [(vn: UInt64, clock: Int)] = []
            var events: [RoutingLog.Event] = []
            for (vn, list) in items {
                trans[vn] = nil
                guard let clk = t.replaceRoute(vn: vn, nids: list) else { continue }
                for n in list where t.addNode(n) { events.append(.join(n)) }
                events.append(.setroute(vnode: vn, clock: clk, nodes: list))
                done.append((vn, clk))
            }
            return (done, events)
        }
    }

    /// The nodes writes of `vn` go to now: its open transaction's list, else its list.
    func writeList(_ vn: UInt64) -> [String]? {
        state.withLockedValue { s in s.transactions[vn] ?? s.table.nodes(forVnode: vn) }
    }

    /// Opens (`list` non-nil) or ends a vnode's transaction (R5.8): while it is open, writes of
    /// the vnode also go to the transaction list's extra node.
    func setTransaction(_ vn: UInt64, _ list: [String]?) {
        setTransactions([(vn, list)])
    }

    /// Ends a transaction and sets the vnode's final list with its clock + 1 (logged): the commit
    /// of a vnode copy. Returns the new clock.
    ///
    /// `handingOver`: this node, a secondary of the vnode, leaves its list by this commit
    /// (release); replica writes still sent here by a primary that has not heard of it go on.
    func commit(_ vn: UInt64, _ list: [String], handingOver: Bool = false) -> Int? {
        if handingOver, !list.contains(me) { state.withLockedValue { _ = $0.handedOver.insert(vn) } }
        return commitMany([(vn, list)]).first?.clock
    }

    /// `set_route` (R4.6) with logging: `join` for new nodes, then `setroute`.
    func setRoute(vn: UInt64, clk: Int, nids: [String]) -> SetRouteResult {
        setRoutes([(vn, clk, nids)])[0]
    }

    /// `setRoute` of several vnodes at once (one new snapshot); the result of each, in order.
    func setRoutes(_ items: [(vn: UInt64, clk: Int, nids: [String])]) -> [SetRouteResult] {
        mutate { t, _ in
            var results: [SetRouteResult] = []
            var events: [RoutingLog.Event] = []
            for (vn, clk, nids) in items {
                let r = t.setRoute(vn: vn, clk: clk, nids: nids)
                results.append(r)
                if case let .stored(clock, joined) = r {
                    events += joined.map { .join($0) }
                    events.append(.setroute(vnode: vn, clock: clock, nodes: nids))
                }
            }
            return (results, events)
        }
    }

    /// `join <nid>`: adds the node to `nodes`.
    func join(_ nid: String) {
        mutate { t, _ in ((), t.addNode(nid) ? [.join(nid)] : []) }
    }

    /// `leave <nid>` (R5.7, table part): removes the node everywhere, bumping clocks.
    /// Open transactions stop sending to the node too (a joining node that died mid-seed).
    func leave(_ nid: String) -> [RouteChange] {
        mutate { t, trans in
            for (vn, list) in trans where list.contains(nid) {
                let rest = list.filter { $0 != nid }
                trans[vn] = rest.isEmpty ? nil : rest
            }
            guard t.nodes.contains(nid) || t.hasNode(nid) else { return ([], []) }
            let changes = t.removeNode(nid)
            return (changes, [.leave(nid)] + changes.map { .setroute(vnode: $0.vnode, clock: $0.clock, nodes: $0.nodes) })
        }
    }

    /// `create_nodes_from_v_idx`.
    func createNodesFromVIdx() {
        state.withLockedValue { s in
            s.table.createNodesFromVIdx()
            publish(s)
        }
    }

    /// Makes `s` the request path's snapshot and bumps the version (call with `state` locked).
    /// `vnodes`: the only vnodes whose entries changed since the last publish (nil: any may have).
    private func publish(_ s: State, changed vnodes: [UInt64]? = nil) {
        let snap: RouteSnapshot
        if let vnodes, vnodes.count < s.table.space.vnodeCount / 4 {
            let base = current.withLockedValue { $0 }
            snap = RouteSnapshot(updating: base, table: s.table, transactions: s.transactions, handedOver: s.handedOver,
                                 me: me, changed: vnodes)
        } else {
            snap = RouteSnapshot(table: s.table, transactions: s.transactions, handedOver: s.handedOver, me: me)
        }
        current.withLockedValue { $0 = snap }
        version.add(1, ordering: .releasing)
        changed.notifyAll()
    }

    /// Waits until `version` is no longer `seen` (a change since it was read), at most `timeout`
    /// seconds. True when it changed.
    @discardableResult
    func waitForChange(after seen: Int, timeout: Double) -> Bool {
        changed.wait(timeout: timeout) { version.load(ordering: .acquiring) != seen }
    }

    static func stamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return RubyTimeFormat.iso(seconds: Int(ts.tv_sec))
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in local time (ROMA's event stamps).
enum RubyTimeFormat {
    static func iso(seconds: Int) -> String {
        var t = time_t(seconds)
        var tm = tm()
        localtime_r(&t, &tm)
        func p(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2))"
    }
}
