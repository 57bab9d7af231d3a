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

    init(table: RoutingTable, transactions: [UInt64: [String]], handedOver: Set<UInt64> = [], me: String) {
        space = table.space
        let n = table.space.vnodeCount
        var lists = [[String]](repeating: [], count: n)
        var writeLists = [[String]](repeating: [], count: n)
        var reads = [Bool](repeating: false, count: n)
        var writes = [Bool](repeating: false, count: n)
        var alone = true
        var relays = [[String]](repeating: [], count: n)
        for i in 0..<n {
            let vn = table.space.vnode(atIndex: i)
            let l = table.nodes(forVnode: vn) ?? []
            let w = transactions[vn] ?? l
            lists[i] = l
            writeLists[i] = w
            reads[i] = l.contains(me)
            writes[i] = w.first == me
            if w != [me] { alone = false }
            if reads[i], w != l, w.first != me {
                relays[i] = w.filter { !l.contains($0) }
            } else if !reads[i], handedOver.contains(vn) {
                relays[i] = l.dropFirst().filter { $0 != me }
            }
        }
        self.relays = relays
        self.lists = lists
        self.writeLists = writeLists
        readsLocal = reads
        writesLocal = writes
        standalone = alone
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
            let (result, events) = body(&s.table, &s.transactions)
            if !events.isEmpty {
                s.handedOver = s.handedOver.filter { !(s.table.nodes(forVnode: $0) ?? []).contains(me) }
                for e in events {
                    do { try s.log?.writer.write(e) } catch {}
                    switch e {
                    case .join(let n): s.events.append("\(RouteState.stamp()) join \(n)")
                    case .leave(let n): s.events.append("\(RouteState.stamp()) leave \(n)")
                    default: break
                    }
                }
                if s.events.count > 1000 { s.events.removeFirst(s.events.count - 1000) }
                publish(s)
            }
            return result
        }
    }

    /// Opens (`list` non-nil) or ends a vnode's transaction (R5.8): while it is open, writes of
    /// the vnode also go to the transaction list's extra node.
    func setTransaction(_ vn: UInt64, _ list: [String]?) {
        state.withLockedValue { s in
            s.transactions[vn] = list
            publish(s)
        }
    }

    /// Ends a transaction and sets the vnode's final list with its clock + 1 (logged): the commit
    /// of a vnode copy. Returns the new clock.
    ///
    /// `handingOver`: this node, a secondary of the vnode, leaves its list by this commit
    /// (release); replica writes still sent here by a primary that has not heard of it go on.
    func commit(_ vn: UInt64, _ list: [String], handingOver: Bool = false) -> Int? {
        if handingOver, !list.contains(me) { state.withLockedValue { _ = $0.handedOver.insert(vn) } }
        return mutate { t, trans in
            trans[vn] = nil
            guard let clk = t.replaceRoute(vn: vn, nids: list) else { return (nil, []) }
            var events: [RoutingLog.Event] = []
            for n in list where t.addNode(n) { events.append(.join(n)) }
            events.append(.setroute(vnode: vn, clock: clk, nodes: list))
            return (clk, events)
        }
    }

    /// `set_route` (R4.6) with logging: `join` for new nodes, then `setroute`.
    func setRoute(vn: UInt64, clk: Int, nids: [String]) -> SetRouteResult {
        mutate { t, _ in
            let r = t.setRoute(vn: vn, clk: clk, nids: nids)
            guard case let .stored(clock, joined) = r else { return (r, []) }
            return (r, joined.map { .join($0) } + [.setroute(vnode: vn, clock: clock, nodes: nids)])
        }
    }

    /// `join <nid>`: adds the node to `nodes`.
    func join(_ nid: String) {
        mutate { t, _ in ((), t.addNode(nid) ? [.join(nid)] : []) }
    }

    /// `leave <nid>` (R5.7, table part): removes the node everywhere, bumping clocks.
    func leave(_ nid: String) -> [RouteChange] {
        mutate { t, _ in
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
    private func publish(_ s: State) {
        let snap = RouteSnapshot(table: s.table, transactions: s.transactions, handedOver: s.handedOver, me: me)
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
