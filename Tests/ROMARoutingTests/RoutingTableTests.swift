import Testing
@testable import ROMARouting

@Suite("RoutingTable (R4.1, R4.6)")
struct RoutingTableTests {
    @Test("singleNode owns every vnode")
    func singleNode() {
        let t = RoutingTable.singleNode("localhost_10001")
        #expect(t.dgstBits == 32 && t.divBits == 9 && t.rn == 1)
        #expect(t.nodes == ["localhost_10001"])
        #expect(t.vIdx.count == 512 && t.vClk.count == 512)
        #expect(t.vnodes == Array(t.space.allVnodes))
        #expect(t.nodes(forVnode: 1_971_322_880) == ["localhost_10001"])
        #expect(t.primary(forVnode: 0) == "localhost_10001")
        #expect(t.nodes(forVnode: 1) == nil)
        #expect(t.clock(forVnode: 0) == 0)
        #expect(t.nodes(forKey: "foo") == ["localhost_10001"])
        #expect(t.counts(for: "localhost_10001") == VnodeCounts(primary: 512, secondary: [], short: 0, lost: 0))
        #expect(t.vnodeBalance(for: "localhost_10001") == .even)
        #expect(!t.hasReplicationInHost())
        let t2 = RoutingTable.singleNode("a_1", dgstBits: 16, divBits: 4, rn: 2)
        #expect(t2.vIdx.count == 16)
        #expect(t2.counts(for: "a_1") == VnodeCounts(primary: 16, secondary: [0], short: 16, lost: 0))
    }

    @Test("set_route: unknown vnode, old clock, success, joins")
    func setRoute() {
        var t = RoutingTable.singleNode("a_1", rn: 2)
        let r1 = t.setRoute(vn: 1, clk: 0, nids: ["a_1"])
        #expect(r1 == .failed("1 is not found."))
        let r2 = t.setRoute(vn: 1, clk: 0, nids: ["a_1"])
        #expect(r2.errorMessage == "1 is not found.")
        let r = t.setRoute(vn: 0, clk: 0, nids: ["b_2", "a_1"])
        #expect(r == .stored(clock: 1, joined: ["b_2"]))
        #expect(r.errorMessage == nil)
        #expect(t.nodes == ["a_1", "b_2"])
        #expect(t.route(forVnode: 0)! == (clock: 1, nodes: ["b_2", "a_1"]))
        // Receiver clock 1 > 0: old table.
        let r3 = t.setRoute(vn: 0, clk: 0, nids: ["a_1"])
        #expect(r3 == .failed("It's old table."))
        // Equal clock is accepted (sender sends its clock − 1).
        let r4 = t.setRoute(vn: 0, clk: 1, nids: ["a_1", "0_9"])
        #expect(r4 == .stored(clock: 2, joined: ["0_9"]))
        #expect(t.nodes == ["0_9", "a_1", "b_2"])
        #expect(t.clock(forVnode: 0) == 2)
    }

    @Test("stat counts, short and lost vnodes")
    func counts() throws {
        let v = VnodeSpace(dgstBits: 32, divBits: 2)
        let vns = Array(v.allVnodes)
        let t = try RoutingTable(dgstBits: 32, divBits: 2, rn: 3, nodes: ["c_3", "a_1", "b_2"],
                                 vIdx: [vns[0]: ["a_1", "b_2", "c_3"], vns[1]: ["b_2", "a_1"],
                                        vns[2]: [], vns[3]: ["c_3", "b_2", "a_1"]],
                                 vClk: [:])
        #expect(t.nodes == ["a_1", "b_2", "c_3"])
        #expect(t.vClk.values.allSatisfy { $0 == 0 })
        #expect(t.counts(for: "a_1") == VnodeCounts(primary: 1, secondary: [1, 1], short: 1, lost: 1))
        #expect(t.counts(for: "b_2") == VnodeCounts(primary: 1, secondary: [2, 0], short: 1, lost: 1))
        #expect(t.counts(for: "c_3") == VnodeCounts(primary: 1, secondary: [0, 1], short: 1, lost: 1))
        #expect(t.primaryCount(for: "c_3") == 1)
        #expect(t.shortVnodes == [vns[1]])
        #expect(t.lostVnodes == [vns[2]])
        #expect(t.hasNode("c_3") && !t.hasNode("d_4"))
        #expect(t.nextAliveNodes(after: vns[1]) == ["c_3", "b_2", "a_1"])
        #expect(t.nextAliveNodes(after: vns[3]) == ["a_1", "b_2", "c_3"])
        #expect(t.vnodeBalance(for: "a_1") == .even)  // 4 / 3 = 1
    }

    @Test("invalid input is rejected")
    func invalid() {
        #expect(throws: RoutingError.invalidVnode(5)) {
            try RoutingTable(dgstBits: 32, divBits: 9, rn: 1, nodes: [], vIdx: [5: []], vClk: [:])
        }
        #expect(throws: RoutingError.invalidGeometry(dgstBits: 8, divBits: 9)) {
            try RoutingTable(dgstBits: 8, divBits: 9, rn: 1, nodes: [], vIdx: [:], vClk: [:])
        }
        #expect(throws: RoutingError.invalidRedundancy(0)) {
            try RoutingTable(dgstBits: 32, divBits: 9, rn: 0, nodes: [], vIdx: [:], vClk: [:])
        }
    }

    @Test("removeNode bumps clocks and reports changes; replaceRoute; createNodesFromVIdx")
    func leave() {
        var t = RoutingTable.singleNode("a_1", dgstBits: 32, divBits: 2, rn: 2)
        let vns = t.vnodes
        let r5 = t.setRoute(vn: vns[0], clk: 0, nids: ["a_1", "b_2"])
        #expect(r5 == .stored(clock: 1, joined: ["b_2"]))
        let r6 = t.setRoute(vn: vns[1], clk: 0, nids: ["b_2"])
        #expect(r6 == .stored(clock: 1, joined: []))
        let before = t.mklhash(id: "0")
        let changes = t.removeNode("b_2")
        #expect(changes == [RouteChange(vnode: vns[0], clock: 2, nodes: ["a_1"]),
                            RouteChange(vnode: vns[1], clock: 2, nodes: [])])
        #expect(t.nodes == ["a_1"])
        #expect(t.lostVnodes == [vns[1]])
        #expect(t.mklhash(id: "0") != before)
        let r7 = t.replaceRoute(vn: vns[1], nids: ["a_1"])
        #expect(r7 == 3)
        let r8 = t.replaceRoute(vn: 7, nids: ["a_1"])
        #expect(r8 == nil)
        #expect(t.lostVnodes.isEmpty)
        // Merkle tree follows every mutation.
        var fresh = t
        fresh.rebuildMerkle()
        #expect(fresh.mklhash(id: "0") == t.mklhash(id: "0"))

        let r9 = t.addNode("z_9")
        #expect(r9)
        let r10 = t.addNode("z_9")
        #expect(!r10)
        #expect(t.nodes == ["a_1", "z_9"])
        t.createNodesFromVIdx()
        #expect(t.nodes == ["a_1"])
        let r11 = t.removeFromNodes("a_1")
        #expect(r11)
        #expect(t.nodes.isEmpty)
    }

    @Test("replication in host detection and node-id rewriting")
    func hostsAndRewrite() throws {
        let t = try RoutingTable(dgstBits: 32, divBits: 1, rn: 2, nodes: ["h_1", "h_2", "g_1"],
                                 vIdx: [0: ["h_1", "g_1"], 1 << 31: ["h_1", "h_2"]], vClk: [:])
        #expect(t.hasReplicationInHost())
        let r = t.mapNodeIDs { $0.replacingAll("h", with: "x") }
        #expect(r.nodes == ["g_1", "x_1", "x_2"])
        #expect(r.nodes(forVnode: 1 << 31) == ["x_1", "x_2"])
        #expect(r.mklhash(id: "0") != t.mklhash(id: "0"))
    }

    @Test("mklhash on a table")
    func mklhash() throws {
        let pair = ["localhost_10001", "localhost_10002"]
        let t = try RoutingTable(dgstBits: 32, divBits: 1, rn: 2, nodes: pair,
                                 vIdx: [0: pair, 1 << 31: pair], vClk: [0: 3, 1 << 31: 4])
        #expect(t.mklhash(id: "00") == "6a315eb494f35db3f6b07ed13414c2f97da3f239")
        #expect(t.mklhash(id: "0") == "561d3fec6ad93630a514e2f9a5cbefec809eb20d")
        #expect(t.mklhash(id: "02") == nil)
        var u = t
        let r12 = u.setRoute(vn: 1 << 31, clk: 4, nids: [])
        #expect(r12 == .stored(clock: 5, joined: []))
        #expect(u.mklhash(id: "01") == "97d170e1550eee4afc0af065b78cda302a97674c")
    }
}
