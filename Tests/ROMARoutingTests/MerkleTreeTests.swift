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
