import ROMARouting
import Testing
@testable import RomaClient

/// A 3-vnode-bit table (8 vnodes) with explicit node lists.
private func table(_ lists: [[String]], dgstBits: Int = 32, divBits: Int = 3) throws -> RoutingTable {
    let space = VnodeSpace(dgstBits: dgstBits, divBits: divBits)
    var idx: [UInt64: [String]] = [:]
    for (i, l) in lists.enumerated() { idx[space.vnode(atIndex: i)] = l }
    let nodes = Array(Set(lists.flatMap { $0 }))
    return try RoutingTable(dgstBits: dgstBits, divBits: divBits, rn: 2, nodes: nodes, vIdx: idx, vClk: [:])
}

@Suite struct RoutingTests {
    @Test func specVectorFoo() throws {
        // R1.4: "foo" → d = 0x75da8a33 → vn 0x75800000 (index 235 of 512).
        var idx: [UInt64: [String]] = [:]
        for vn in VnodeSpace.standard.allVnodes { idx[vn] = ["a_1"] }
        idx[0x7580_0000] = ["foo_1", "bar_2"]
        let t = try RoutingTable(dgstBits: 32, divBits: 9, rn: 2, nodes: ["a_1", "foo_1", "bar_2"], vIdx: idx, vClk: [:])
        #expect(ClientRouting.route(key: "foo", table: t) { _ in false } == "foo_1")
        #expect(ClientRouting.route(key: "foo", table: t) { $0 == "foo_1" } == "bar_2")
    }

    @Test func keyGoesToPrimaryOfItsVnode() throws {
        let lists = (0..<8).map { ["n\($0)_1", "n\(($0 + 1) % 8)_1"] }
        let t = try table(lists)
        for key in ["a", "b", "foo", "key:0000000001", "üñï"] {
            let vn = t.space.vnode(ofKey: key)
            let i = Int(vn >> UInt64(t.space.shift))
            #expect(ClientRouting.route(key: key, table: t) { _ in false } == "n\(i)_1")
        }
    }

    @Test func failoverToNextNodeOfTheVnode() throws {
        let lists = (0..<8).map { ["n\($0)_1", "n\(($0 + 1) % 8)_1"] }
        let t = try table(lists)
        let key = "foo"
        let i = Int(t.space.vnode(ofKey: key) >> UInt64(t.space.shift))
        let primary = "n\(i)_1", secondary = "n\((i + 1) % 8)_1"
        #expect(ClientRouting.route(key: key, table: t) { $0 == primary } == secondary)
        #expect(ClientRouting.candidates(key: key, table: t) { $0 == primary } == [secondary, primary])
        #expect(ClientRouting.candidates(key: key, table: t) { _ in false } == [primary, secondary])
    }

    @Test func walksNextVnodeWhenAllNodesOfTheVnodeAreDown() throws {
        // Vnode i lists nodes a_i, b_i; every vnode has its own two nodes.
        let lists = (0..<8).map { ["a\($0)_1", "b\($0)_1"] }
        let t = try table(lists)
        let key = "foo"
        let i = Int(t.space.vnode(ofKey: key) >> UInt64(t.space.shift))
        let next = (i + 1) % 8, afterNext = (i + 2) % 8
        let down: Set<String> = ["a\(i)_1", "b\(i)_1"]
        #expect(ClientRouting.route(key: key, table: t) { down.contains($0) } == "a\(next)_1")
        // The next vnode's primary is down too: its secondary.
        let down2 = down.union(["a\(next)_1"])
        #expect(ClientRouting.route(key: key, table: t) { down2.contains($0) } == "b\(next)_1")
        // The whole next vnode is down: the one after it (wrapping around the ring).
        let down3 = down2.union(["b\(next)_1"])
        #expect(ClientRouting.route(key: key, table: t) { down3.contains($0) } == "a\(afterNext)_1")
        // Candidates: the walked-to node first, then the vnode's own (failed) nodes as a last resort.
        #expect(ClientRouting.candidates(key: key, table: t) { down3.contains($0) } == ["a\(afterNext)_1", "a\(i)_1", "b\(i)_1"])
    }

    @Test func walkWrapsAroundTheRing() throws {
        // Only vnode 0 has a healthy node; a key of the last vnode must wrap to it.
        var lists = (0..<8).map { _ in ["dead_1"] }
        lists[0] = ["dead_1", "alive_1"]
        let t = try table(lists)
        for vn in t.space.allVnodes {
            #expect(ClientRouting.route(vnode: vn, table: t) { $0 == "dead_1" } == "alive_1")
        }
    }

    @Test func emptyVnodeListsAreSkipped() throws {
        var lists = (0..<8).map { ["n\($0)_1"] }
        lists[2] = []
        let t = try table(lists)
        let vn2 = t.space.vnode(atIndex: 2)
        #expect(ClientRouting.route(vnode: vn2, table: t) { _ in false } == "n3_1")
    }

    @Test func noHealthyNodeAtAll() throws {
        let t = try table((0..<8).map { ["n\($0)_1"] })
        #expect(ClientRouting.route(key: "foo", table: t) { _ in true } == nil)
        let vn = t.space.vnode(ofKey: "foo")
        let i = Int(vn >> UInt64(t.space.shift))
        #expect(ClientRouting.candidates(key: "foo", table: t) { _ in true } == ["n\(i)_1"])
    }

    @Test func singleNodeTableRoutesEverythingToIt() {
        let t = RoutingTable.singleNode("127.0.0.1_10001")
        for k in ["a", "b", "c", "foo"] {
            #expect(ClientRouting.route(key: k, table: t) { _ in false } == "127.0.0.1_10001")
        }
    }

    @Test func binaryDumpRoundTripRoutesTheSame() throws {
        let lists = (0..<8).map { ["n\($0)_1", "n\(($0 + 3) % 8)_1"] }
        let t = try table(lists)
        let u = try RoutingTable(binary: t.binDump())
        for k in (0..<100).map({ "k\($0)" }) {
            #expect(ClientRouting.route(key: k, table: u) { _ in false } == ClientRouting.route(key: k, table: t) { _ in false })
        }
    }

    @Test func nodeAddressParsing() {
        #expect(NodeAddress("127.0.0.1:10001") == NodeAddress(host: "127.0.0.1", port: 10001))
        #expect(NodeAddress("127.0.0.2_10002") == NodeAddress(host: "127.0.0.2", port: 10002))
        #expect(NodeAddress("localhost_12000")?.nodeID == "localhost_12000")
        #expect(NodeAddress("nohost") == nil)
        #expect(NodeAddress("h:0") == nil)
        #expect(NodeAddress("h:99999") == nil)
        #expect(NodeAddress(":1") == nil)
    }

    @Test func keyTokensAndValidation() throws {
        let c = try RomaClient(seeds: ["127.0.0.1:1"], hashName: "roma", timeout: .seconds(1),
                               configuration: .init(), table: nil)
        #expect(try c.keyToken("k") == "k\u{1B}roma")
        for bad in ["", "a b", "a\r", "a\nb", "a\u{1B}h", "a\u{0}"] {
            #expect(throws: RomaClientError.invalidKey(bad)) { try c.keyToken(bad) }
        }
        #expect(RomaClient.stripHash("k\u{1B}roma") == "k")
        #expect(RomaClient.stripHash("k") == "k")
        #expect(throws: RomaClientError.self) {
            _ = try RomaClient(seeds: ["bad"], hashName: "roma", timeout: .seconds(1), configuration: .init(), table: nil)
        }
        #expect(throws: RomaClientError.self) {
            _ = try RomaClient(seeds: ["h:1"], hashName: "a b", timeout: .seconds(1), configuration: .init(), table: nil)
        }
    }
}
