import Testing
@testable import ROMARouting

@Suite("Merkle tree (R4.7)")
struct MerkleTreeTests {
    let pair = ["localhost_10001", "localhost_10002"]

    @Test("spec vectors")
    func specVectors() {
        var t = MerkleTree(divBits: 1)
        t.set(index: 0, nodes: pair)
        t.set(index: 1, nodes: pair)
        #expect(t.get("00") == "6a315eb494f35db3f6b07ed13414c2f97da3f239")
        #expect(t.get("01") == "6a315eb494f35db3f6b07ed13414c2f97da3f239")
        #expect(t.get("0") == "561d3fec6ad93630a514e2f9a5cbefec809eb20d")
        #expect(t.root == "561d3fec6ad93630a514e2f9a5cbefec809eb20d")
        t.set(index: 1, nodes: [])
        #expect(t.get("01") == "97d170e1550eee4afc0af065b78cda302a97674c")
        #expect(t.root == SHA1.hexDigest("6a315eb494f35db3f6b07ed13414c2f97da3f239:97d170e1550eee4afc0af065b78cda302a97674c"))
    }

    @Test("unassigned nodes read as \"0\" like ROMA (checked with ROMA's merkle_tree.rb)")
    func partial() {
        var t = MerkleTree(divBits: 2)
        #expect(t.root == "0")
        t.set(index: 0, nodes: ["a_1"])
        #expect(t.get("0") == "52adb7529209f4638253e0935d0122777b0e8e16")
        #expect(t.get("00") == "ae3e47b8acd9584402d594286be81cb16eeb4053")
        #expect(t.get("01") == "0")
        #expect(t.get("000") == "c166b2f1d0552b7a2c3e72557f0c90aa8314ae15")
        #expect(t.get("001") == "0")
        #expect(t.get("011") == "0")
        // The bulk constructor gives the same values as incremental sets.
        let bulk = MerkleTree(divBits: 2, leaves: [["a_1"], nil, nil, nil])
        for id in ["0", "00", "01", "000", "001", "010", "011"] { #expect(bulk.get(id) == t.get(id)) }
    }

    @Test("many leaves set at once give the tree that setting them one by one gives")
    func batchOfLeaves() {
        var rng = SystemRandomNumberGenerator()
        let lists = [["a_1", "b_2"], ["b_2", "c_3"], ["c_3", "a_1"], [], ["a_1"]]
        for divBits in [0, 1, 3, 9] {
            for _ in 0..<5 {
                // A partly assigned tree, then a batch touching a random subset (some leaves twice).
                var one = MerkleTree(divBits: divBits)
                for i in 0..<(1 << divBits) where Bool.random(using: &rng) {
                    one.set(index: i, nodes: lists.randomElement(using: &rng)!)
                }
                var batch = one
                var leaves: [(index: Int, nodes: [String])] = []
                for _ in 0..<Int.random(in: 1...(1 << divBits) + 2, using: &rng) {
                    let i = Int.random(in: 0..<(1 << divBits), using: &rng)
                    let l = lists.randomElement(using: &rng)!
                    leaves.removeAll { $0.index == i }
                    leaves.append((i, l))
                    one.set(index: i, nodes: l)
                }
                batch.set(leaves: leaves)
                var ids = ["0"]
                var level = ["0"]
                for _ in 0..<divBits {
                    level = level.flatMap { [$0 + "0", $0 + "1"] }
                    ids += level
                }
                for id in ids { #expect(batch.get(id) == one.get(id), "div_bits \(divBits), node \(id)") }
            }
        }
    }

    @Test("a routing table's deferred Merkle updates end in the tree of immediate ones")
    func deferredTableUpdates() throws {
        var t = try RoutingTable(yaml: referenceRouteFile)
        var d = t
        d.deferMerkleUpdates()
        for (i, vn) in t.vnodes.enumerated() where i % 3 != 1 {
            let list = i % 2 == 0 ? ["127.0.0.2_10002", "127.0.0.4_10004"] : ["127.0.0.4_10004"]
            t.replaceRoute(vn: vn, nids: list)
            d.replaceRoute(vn: vn, nids: list)
        }
        // Asked while deferred, the hash is that of the updated tree (worked out on a copy).
        #expect(d.mklhash(id: "0") == t.mklhash(id: "0"))
        #expect(d.mklhash(id: "01") == t.mklhash(id: "01"))
        d.applyDeferredMerkleUpdates()
        #expect(d == t)
        #expect(d.mklhash(id: "0") == t.mklhash(id: "0"))
        var rebuilt = t
        rebuilt.rebuildMerkle()
        #expect(rebuilt.mklhash(id: "0") == t.mklhash(id: "0"))
    }

    @Test("malformed ids give nil")
    func badIDs() {
        let t = MerkleTree(divBits: 2, leaves: [[], [], [], []])
        #expect(t.get("") == nil)
        #expect(t.get("1") == nil)
        #expect(t.get("0000") == nil)
        #expect(t.get("002") == nil)
        #expect(t.get("0a") == nil)
        #expect(t.get("011") == "97d170e1550eee4afc0af065b78cda302a97674c")
    }

    @Test("incremental updates equal a rebuild")
    func incremental() {
        var rng = SplitMix64(seed: 7)
        let names = ["a_1", "b_2", "c_3", "d_4"]
        var leaves: [[String]?] = (0..<64).map { _ in [names[Int(rng.next() % 4)]] }
        var t = MerkleTree(divBits: 6, leaves: leaves)
        for _ in 0..<50 {
            let i = Int(rng.next() % 64)
            let l = Array(names.shuffled(using: &rng).prefix(Int(rng.next() % 3)))
            leaves[i] = l
            t.set(index: i, nodes: l)
        }
        let rebuilt = MerkleTree(divBits: 6, leaves: leaves)
        #expect(t.root == rebuilt.root)
        #expect(t.get("0101") == rebuilt.get("0101"))
    }
}

/// Deterministic generator for tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
