import Foundation
import NIOCore
@testable import ROMANode
import ROMAProtocol
import ROMARouting
import Testing

@Suite("routing state on the request path (R4.1, R4.6, R5.9)")
struct RouteStateTests {
    static func table() throws -> RoutingTable {
        try MkRoute.make(nodes: ["127.0.0.1_1", "127.0.0.2_2", "127.0.0.3_3"], rn: 2)
    }

    @Test func snapshotMarksLocalReadsAndPrimaryWrites() throws {
        let t = try Self.table()
        let s = RouteSnapshot(table: t, transactions: [:], me: "127.0.0.2_2")
        #expect(!s.standalone)
        for i in 0..<t.space.vnodeCount {
            let list = t.nodes(forVnode: t.space.vnode(atIndex: i))!
            #expect(s.lists[i] == list)
            #expect(s.writeLists[i] == list)
            #expect(s.readsLocal[i] == list.contains("127.0.0.2_2"))
            #expect(s.writesLocal[i] == (list.first == "127.0.0.2_2"))
        }
        let alone = RouteSnapshot(table: RoutingTable.singleNode("a_1"), transactions: [:], me: "a_1")
        #expect(alone.standalone)
    }

    /// A change of a few vnodes rebuilds only their entries: after every kind of change (a
    /// transaction, a commit of many at once, a single `setroute`, a transaction dropped by a
    /// commit that found no vnode, a `leave`), the snapshot equals one built from scratch.
    @Test func anIncrementalSnapshotEqualsAFullRebuild() throws {
        let me = "127.0.0.2_2"
        let rs = try RouteState(table: Self.table(), me: me, routeFile: nil)
        func check(_ what: String) {
            let t = rs.table
            let inc = rs.snapshot
            let full = RouteSnapshot(table: t, transactions: (0..<t.space.vnodeCount).reduce(into: [UInt64: [String]]()) { d, i in
                let vn = t.space.vnode(atIndex: i)
                if let w = rs.writeList(vn), w != t.nodes(forVnode: vn) { d[vn] = w }
            }, me: me)
            #expect(inc.lists == full.lists, "\(what): lists")
            #expect(inc.writeLists == full.writeLists, "\(what): write lists")
            #expect(inc.readsLocal == full.readsLocal, "\(what): reads")
            #expect(inc.writesLocal == full.writesLocal, "\(what): writes")
            #expect(inc.standalone == full.standalone && inc.notAlone == full.notAlone, "\(what): standalone")
        }
        let t = rs.table
        let vns = (0..<t.space.vnodeCount).map { t.space.vnode(atIndex: $0) }
        let joiner = "127.0.0.4_4"
        rs.setTransactions(vns.prefix(40).map { ($0, (t.nodes(forVnode: $0) ?? []) + [joiner]) })
        check("transactions opened")
        let done = rs.commitMany(vns.prefix(30).map { vn in (vn, [joiner] + (t.nodes(forVnode: vn) ?? []).prefix(1)) })
        #expect(done.count == 30)
        check("30 committed")
        rs.setTransactions(vns[30..<40].map { ($0, nil) })
        check("10 closed")
        rs.setTransaction(vns[50], [me, joiner])
        _ = rs.setRoute(vn: vns[60], clk: 100, nids: [me, joiner])
        check("one transaction, one setroute")
        _ = rs.leave(joiner)
        check("leave")
        #expect(vns.allSatisfy { !(rs.writeList($0) ?? []).contains(joiner) }, "a node that left gets no writes through a transaction")
        // A node alone in its table: standalone, kept through an incremental change.
        let single = try RouteState(table: RoutingTable.singleNode("a_1"), me: "a_1", routeFile: nil)
        let v0 = single.table.space.vnode(atIndex: 3)
        single.setTransaction(v0, ["a_1", "b_2"])
        #expect(!single.snapshot.standalone)
        single.setTransaction(v0, nil)
        #expect(single.snapshot.standalone)
    }

    @Test func aTransactionChangesTheWriteListOnly() throws {
        let t = try Self.table()
        let vn = t.space.vnode(atIndex: 7)
        let list = t.nodes(forVnode: vn)!
        let trans = list + ["127.0.0.9_9"]
        let s = RouteSnapshot(table: t, transactions: [vn: trans], me: list[0])
        #expect(s.writeLists[7] == trans)
        #expect(s.lists[7] == list, "reads keep using v_idx (R5.9)")
        #expect(s.writesLocal[7])
    }

    /// Release from a secondary (R5.11): replica writes the primary still sends here go on to the
    /// copy's target while the copy runs, and to the successor once the vnode is handed over,
    /// until this node is in the list again; nowhere else, ever.
    @Test func replicaWritesAreRelayedOnlyForAVnodeCopiedAwayAsASecondary() throws {
        let t = try Self.table()
        let rs = try RouteState(table: t, me: "127.0.0.2_2", routeFile: nil)
        let i = (0..<t.space.vnodeCount).first { t.nodes(forVnode: t.space.vnode(atIndex: $0))!.last == "127.0.0.2_2" }!
        let vn = t.space.vnode(atIndex: i)
        let list = t.nodes(forVnode: vn)!
        let target = ["127.0.0.1_1", "127.0.0.3_3"].first { !list.contains($0) }!
        #expect(rs.snapshot.relays.allSatisfy { $0.isEmpty }, "steady state: no relays")
        rs.setTransaction(vn, list + [target])
        #expect(rs.snapshot.relays[i] == [target])
        #expect(rs.snapshot.relays.enumerated().allSatisfy { $0.offset == i || $0.element.isEmpty })
        _ = rs.commit(vn, [list[0], target], handingOver: true)
        #expect(rs.snapshot.relays[i] == [target], "the primary may not know yet")
        #expect(rs.snapshot.lists[i] == [list[0], target])
        _ = rs.setRoute(vn: vn, clk: 5, nids: [list[0], "127.0.0.2_2"])
        #expect(rs.snapshot.relays[i].isEmpty, "back in the list: nothing relayed")
        _ = rs.setRoute(vn: vn, clk: 6, nids: [list[0], target])
        #expect(rs.snapshot.relays[i].isEmpty, "left by another node's doing: nothing relayed")
        // A copy from the primary changes nothing: its own writes already reach the target.
        let j = (0..<t.space.vnodeCount).first { t.nodes(forVnode: t.space.vnode(atIndex: $0))!.first == "127.0.0.2_2" }!
        let vj = t.space.vnode(atIndex: j)
        let lj = t.nodes(forVnode: vj)!
        rs.setTransaction(vj, lj + [["127.0.0.1_1", "127.0.0.3_3"].first { !lj.contains($0) }!])
        #expect(rs.snapshot.relays[j].isEmpty)
    }

    @Test func setRouteIsLoggedAndBumpsTheVersion() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("routestate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = "\(dir)/127.0.0.1_1.route"
        let t = try Self.table()
        try t.save(path: file)
        let rs = try RouteState(table: RoutingTable.load(path: file), me: "127.0.0.1_1", routeFile: file)
        let v0 = rs.version.load(ordering: .relaxed)
        let vn = t.space.vnode(atIndex: 3)
        #expect(rs.setRoute(vn: vn, clk: 0, nids: ["127.0.0.1_1", "127.0.0.4_4"]) == .stored(clock: 1, joined: ["127.0.0.4_4"]))
        #expect(rs.setRoute(vn: vn, clk: 0, nids: ["127.0.0.1_1"]).errorMessage == "It's old table.")
        #expect(rs.version.load(ordering: .relaxed) == v0 + 1)
        #expect(rs.snapshot.lists[3] == ["127.0.0.1_1", "127.0.0.4_4"])
        #expect(rs.snapshot.writesLocal[3])
        // The log replays to the same table at the next start (R4.5).
        let reloaded = try RoutingTable.load(path: file)
        #expect(reloaded == rs.table)
        #expect(reloaded.nodes.contains("127.0.0.4_4"))
        let changes = rs.leave("127.0.0.4_4")
        #expect(changes.contains { $0.vnode == vn && $0.nodes == ["127.0.0.1_1"] })
        #expect(try RoutingTable.load(path: file) == rs.table)
    }

    @Test func aWaiterWakesOnTheNextRouteChangeAndTimesOutWithoutOne() throws {
        let rs = try RouteState(table: Self.table(), me: "127.0.0.1_1", routeFile: nil)
        let seen = rs.version.load(ordering: .acquiring)
        // No change: the wait ends at its timeout, reporting none.
        let t0 = DispatchTime.now().uptimeNanoseconds
        #expect(!rs.waitForChange(after: seen, timeout: 0.05))
        #expect(DispatchTime.now().uptimeNanoseconds - t0 >= 45_000_000)
        // A change made by another thread while this one waits wakes it well before the timeout.
        let vn = try Self.table().space.vnode(atIndex: 5)
        let writer = Thread { rs.setTransaction(vn, ["127.0.0.1_1", "127.0.0.2_2", "127.0.0.4_4"]) }
        let t1 = DispatchTime.now().uptimeNanoseconds
        writer.start()
        #expect(rs.waitForChange(after: seen, timeout: 30))
        #expect(DispatchTime.now().uptimeNanoseconds - t1 < 10_000_000_000)
        #expect(rs.snapshot.writeLists[5].last == "127.0.0.4_4")
        // A change made before the wait starts is not missed: it returns at once.
        let before = rs.version.load(ordering: .acquiring)
        _ = rs.commit(vn, ["127.0.0.1_1", "127.0.0.4_4"])
        #expect(rs.waitForChange(after: before, timeout: 30))
        #expect(rs.version.load(ordering: .acquiring) == before + 1)
    }

    @Test func peerAddressesSplitAtTheLastUnderscore() {
        #expect(PeerAddress.split("127.0.0.1_10001")! == ("127.0.0.1", 10001))
        #expect(PeerAddress.split("my_host_10001")! == ("my_host", 10001))
        #expect(PeerAddress.split("nohost") == nil)
        #expect(PeerAddress.split("h_99999") == nil)
    }

    @Test func replicaRepliesThatAreRetried() {
        func line(_ s: String) -> PeerReply { var b = ByteBuffer(); b.writeString(s); return .line(b) }
        #expect(Replicator.needsRetry(line("ERROR: 'rset' is not roma command.")))
        #expect(!Replicator.needsRetry(line("STORED")))
        #expect(!Replicator.needsRetry(line("NOT_STORED")), "R5.2: NOT_STORED means the replica has something newer")
        #expect(!Replicator.needsRetry(line("SERVER_ERROR roma does not exists.")))
    }

    @Test func zlibRoundTripForRzset() {
        let value = Array(String(repeating: "compressible ", count: 200).utf8)
        let packed = Dispatcher.deflate(value)!
        #expect(packed.count < value.count)
        var b = ByteBuffer()
        b.writeBytes(packed)
        #expect(Array(Dispatcher.inflate(b, limit: 1 << 20)!.readableBytesView) == value)
        #expect(Dispatcher.inflate(b, limit: 100) == nil, "inflating past the value limit is refused")
        var junk = ByteBuffer()
        junk.writeString("not zlib")
        #expect(Dispatcher.inflate(junk, limit: 1 << 20) == nil)
    }
}

@Suite("failure detection (R5.6)")
struct FailureDetectorTests {
    @Test func thresholdFailuresInARowMakeANodeLeave() {
        let f = FailureDetector(threshold: 3, gap: 0, lostAction: .autoAssign)
        #expect(!f.failed("a_1", now: 1), "failover is off until the node serves")
        f.setEnabled(true)
        #expect(!f.failed("a_1", now: 1))
        #expect(!f.failed("a_1", now: 2))
        #expect(!f.failed("b_2", now: 2), "each node has its own counter")
        #expect(f.failed("a_1", now: 3))
        #expect(!f.failed("a_1", now: 4), "the counter starts again after a leave")
    }

    @Test func aSuccessResetsAndTheGapIsPerNode() {
        let f = FailureDetector(threshold: 2, gap: 5, lostAction: .noAction)
        f.setEnabled(true)
        #expect(!f.failed("a_1", now: 10))
        #expect(!f.failed("a_1", now: 12), "within the gap: not counted")
        #expect(!f.failed("b_2", now: 12), "another node's failure does not use a's gap")
        #expect(f.failed("a_1", now: 16))
        #expect(!f.failed("b_2", now: 13))
        f.succeeded("b_2")
        #expect(!f.failed("b_2", now: 30))
    }

    @Test func switchingClearsTheCounters() {
        let f = FailureDetector(threshold: 2, gap: 0, lostAction: .shutdown)
        f.setEnabled(true)
        #expect(!f.failed("a_1", now: 1))
        #expect(f.setEnabled(false))
        #expect(!f.setEnabled(false))
        #expect(!f.failed("a_1", now: 2))
        f.setEnabled(true)
        #expect(!f.failed("a_1", now: 3), "counting starts from zero again")
        #expect(f.failed("a_1", now: 4))
    }
}

@Suite("edit_nodes (R5.5)")
struct EditNodesTests {
    @Test func dropsTheLastNodeOrTheOneOnTheNewcomersHost() {
        #expect(Node.editNodes(["a_1", "b_2"], to: "c_3", isPrimary: false, rn: 2) == ["a_1", "c_3"])
        #expect(Node.editNodes(["a_1", "b_2"], to: "c_3", isPrimary: true, rn: 2) == ["c_3", "a_1"])
        #expect(Node.editNodes(["c_9", "b_2"], to: "c_3", isPrimary: false, rn: 2) == ["b_2", "c_3"], "same host goes")
        #expect(Node.editNodes(["a_1"], to: "c_3", isPrimary: false, rn: 2) == ["a_1", "c_3"], "a short list grows")
        #expect(Node.editNodes(["a_1", "c_3"], to: "c_3", isPrimary: true, rn: 2) == ["c_3", "a_1"], "already there: moves to the front")
        #expect(Node.editNodes(["a_1", "b_2"], to: "c_3", isPrimary: false, rn: 1) == ["c_3"])
    }
}

@Suite("the join's choice of moves (R5.4)")
struct BestJoinMoveTests {
    /// The choice spelled out on node names with `Node.editNodes`, as an oracle for the
    /// index-based `Node.bestJoinMove`.
    static func oracle(_ t: RoutingTable, me: String, replicationInHost: Bool, excluded: Set<UInt64>) -> (UInt64, Bool)? {
        let nodes = t.nodes
        guard nodes.contains(me), nodes.count > 1 else { return nil }
        var total: [String: Int] = [:]
        var prim: [String: Int] = [:]
        for n in nodes { total[n] = 0; prim[n] = 0 }
        for vn in t.vnodes {
            let l = t.nodes(forVnode: vn) ?? []
            for n in l { total[n, default: 0] += 1 }
            if let p = l.first { prim[p, default: 0] += 1 }
        }
        let v = Double(t.space.vnodeCount)
        let meanTotal = Double(t.rn) * v / Double(nodes.count)
        let meanPrim = v / Double(nodes.count)
        func cost(_ tot: [String: Int], _ pr: [String: Int]) -> Double {
            var c = 0.0
            for n in nodes {
                let dt = Double(tot[n] ?? 0) - meanTotal
                let dp = Double(pr[n] ?? 0) - meanPrim
                c += dt * dt + 100 * dp * dp
            }
            return c
        }
        let base = cost(total, prim)
        var best: (UInt64, Bool, Double)?
        for vn in t.vnodes where !excluded.contains(vn) {
            let l = t.nodes(forVnode: vn) ?? []
            if l.isEmpty { continue }
            for primary in [true, false] {
                if l.contains(me) && (!primary || l.first == me) { continue }
                let after = Node.editNodes(l, to: me, isPrimary: primary, rn: t.rn)
                if !replicationInHost && Set(after.map { NodeID.host(of: $0) }).count != after.count { continue }
                var tot = total
                var pr = prim
                for n in l { tot[n]! -= 1 }
                for n in after { tot[n]! += 1 }
                pr[l[0]]! -= 1
                pr[after[0]]! += 1
                if pr[me]! > Int(meanPrim.rounded(.up)) || tot[me]! > Int(meanTotal.rounded(.up)) { continue }
                let c = cost(tot, pr)
                if c < base - 1e-9, best == nil || c < best!.2 { best = (vn, primary, c) }
            }
        }
        return best.map { ($0.0, $0.1) }
    }

    @Test("a whole join: the same move as the oracle at every step, and every node within one of its share",
          arguments: [(["127.0.0.1_1", "127.0.0.2_2"], "127.0.0.3_3", 2, false),
                      (["127.0.0.1_1", "127.0.0.2_2", "127.0.0.3_3"], "127.0.0.4_4", 2, false),
                      (["127.0.0.1_1", "127.0.0.2_2", "127.0.0.3_3"], "127.0.0.4_4", 3, false),
                      (["127.0.0.1_1", "127.0.0.1_2", "127.0.0.2_3"], "127.0.0.1_4", 2, true),
                      (["127.0.0.1_1", "127.0.0.2_2", "127.0.0.3_3"], "127.0.0.1_4", 2, false)])
    func wholeJoin(members: [String], newcomer: String, rn: Int, inHost: Bool) throws {
        var t = try MkRoute.make(nodes: members, rn: rn, replicationInHost: inHost)
        t.addNode(newcomer)
        var steps = 0
        var excluded = Set<UInt64>()
        while let move = Node.bestJoinMove(t, me: newcomer, replicationInHost: inHost, excluded: excluded) {
            let expected = Self.oracle(t, me: newcomer, replicationInHost: inHost, excluded: excluded)
            #expect(expected?.0 == move.0 && expected?.1 == move.1, "step \(steps)")
            t.replaceRoute(vn: move.0, nids: Node.editNodes(t.nodes(forVnode: move.0)!, to: newcomer, isPrimary: move.1, rn: t.rn))
            steps += 1
            // Every fifth step one vnode is excluded too (a copy in flight or refused).
            if steps % 5 == 0 { excluded.insert(t.vnodes[steps % t.vnodes.count]) }
            if steps > 2_000 { Issue.record("no end"); break }
        }
        #expect(Self.oracle(t, me: newcomer, replicationInHost: inHost, excluded: excluded) == nil)
        #expect(steps > 50)
        let share = Double(t.space.vnodeCount) / Double(t.nodes.count)
        let c = t.counts(for: newcomer)
        #expect(abs(Double(c.primary) - share) <= 1.5, "primaries \(c.primary) of \(share)")
    }

    @Test("a whole plan at once (the file seed's): the moves bestJoinMove gives one by one on the edited table",
          arguments: [(["127.0.0.1_1", "127.0.0.2_2"], "127.0.0.3_3", 2, false),
                      (["127.0.0.1_1", "127.0.0.2_2", "127.0.0.3_3"], "127.0.0.4_4", 3, false),
                      (["127.0.0.1_1", "127.0.0.1_2", "127.0.0.2_3"], "127.0.0.1_4", 2, true),
                      (["127.0.0.1_1", "127.0.0.2_2", "127.0.0.3_3"], "127.0.0.1_4", 2, false)])
    func wholePlan(members: [String], newcomer: String, rn: Int, inHost: Bool) throws {
        var t = try MkRoute.make(nodes: members, rn: rn, replicationInHost: inHost)
        t.addNode(newcomer)
        let plan = Node.planJoin(t, me: newcomer, replicationInHost: inHost)
        var stepwise: [(vn: UInt64, primary: Bool)] = []
        var chosen = Set<UInt64>()
        while let (vn, primary) = Node.bestJoinMove(t, me: newcomer, replicationInHost: inHost, excluded: chosen) {
            stepwise.append((vn, primary))
            chosen.insert(vn)
            t.replaceRoute(vn: vn, nids: Node.editNodes(t.nodes(forVnode: vn)!, to: newcomer, isPrimary: primary, rn: t.rn))
        }
        #expect(plan.count > 50)
        #expect(plan.map(\.vn) == stepwise.map(\.vn))
        #expect(plan.map(\.primary) == stepwise.map(\.primary))
    }
}
