import Foundation
import Testing
@testable import ROMARouting

private func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        out.append(UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16)!)
    }
    return out
}

@Suite("Routing file and dumps (R4.4, R4.8)")
struct RoutingFormatTests {
    let reference: RoutingTable = try! RoutingTable(yaml: referenceRouteFile)

    @Test("the reference .route file loads: 3 nodes, 512 vnodes, 2 nodes on 2 hosts each")
    func referenceImport() {
        let t = reference
        #expect(t.dgstBits == 32 && t.divBits == 9 && t.rn == 2)
        #expect(t.nodes == ["127.0.0.1_10001", "127.0.0.2_10002", "127.0.0.3_10003"])
        #expect(t.vIdx.count == 512 && t.vClk.count == 512)
        #expect(t.vnodes == Array(t.space.allVnodes))
        for (vn, nids) in t.vIdx {
            #expect(nids.count == 2, "vnode \(vn)")
            #expect(Set(nids.map { NodeID.host(of: $0) }).count == 2, "vnode \(vn)")
            #expect(nids.allSatisfy { t.nodes.contains($0) })
            #expect(t.vClk[vn] == 0)
        }
        #expect(t.nodes(forVnode: 0) == ["127.0.0.1_10001", "127.0.0.3_10003"])
        #expect(t.nodes(forVnode: 8_388_608) == ["127.0.0.1_10001", "127.0.0.2_10002"])
        #expect(!t.hasReplicationInHost())
        // ROMA's mkroute balanced the primaries: 171/171/170.
        let primaries = t.nodes.map { t.counts(for: $0).primary }
        #expect(primaries.reduce(0, +) == 512)
        #expect(primaries.max()! - primaries.min()! < 2)
    }

    @Test("export of the reference file is byte-identical")
    func referenceExport() {
        let out = reference.yaml()
        #expect(out == referenceRouteFile)
        #expect(Array(out.utf8) == Array(referenceRouteFile.utf8))
        #expect(Array(referenceRouteFile.utf8).count == 35711)
    }

    @Test("the embedded fixture equals the shared reference file when present")
    func fixtureMatchesShared() throws {
        let path = "/work/shared/reference/routing/127.0.0.1_10001.route"
        guard let data = FileManager.default.contents(atPath: path) else { return }
        #expect(Array(data) == Array(referenceRouteFile.utf8))
        #expect(try RoutingTable.loadSnapshot(path: path) == reference)
    }

    @Test("dumps of the reference table match ROMA 1.3 (Ruby) byte-for-byte")
    func referenceDumps() {
        let json = reference.jsonDump()
        #expect(json.utf8.count == 26068)
        #expect(json.hasPrefix(#"[{"dgst_bits":32,"div_bits":9,"rn":2},["127.0.0.1_10001","127.0.0.2_10002","127.0.0.3_10003"],{"0":["127.0.0.1_10001","127.0.0.3_10003"],"8388608":["#))
        #expect(SHA1.hexDigest(json) == "b246d21e2eb2be9e0e172cb9d01fd1b4cb877eee")
        let bin = reference.binDump()
        #expect(bin.count == 4668)
        #expect(SHA1.hex(SHA1.hash(bin)) == "51b3afe041e2a0286cb4fe133b91db9dab985f72")
        let marshal = reference.marshalDump()
        #expect(marshal.count == 31645)
        #expect(SHA1.hex(SHA1.hash(marshal)) == "6eebb6a3d704b7e7b4980d37ac9923866e6f8344")
    }

    @Test("Merkle values of the reference table match ROMA's merkle_tree.rb")
    func referenceMerkle() {
        let expected = [
            "0": "3a3c7d5c2cd950bc83606b9dcf8d77d6dae48802",
            "00": "839f16a1d4d086f2f62e7489d03e2236caaa0417",
            "01": "9e7db426e4665536f52be3b166299ca24045c906",
            "010": "bde99690f647b15ee8da41716eb90eb562010ad0",
            "0000000000": "6769b9a38aba2fff20be2f44a2a563109be463c5",
            "0111111111": "df3bbc842e911c56a00f4b96386bf3590d656b5e",
            "01010101": "f099e59edf8b86ffc49aa595c2d4d065149e4ef6",
        ]
        for (id, h) in expected { #expect(reference.mklhash(id: id) == h, "id \(id)") }
        #expect(reference.mklhash(id: "00000000000") == nil)
        #expect(reference.mklhash(id: "0000000000") ==
                SHA1.hexDigest(RubyInspect.array(reference.nodes(forVnode: 0)!)))
    }

    @Test("small tables: binary and Marshal dumps match Ruby")
    func smallDumps() throws {
        let t = try RoutingTable(dgstBits: 32, divBits: 1, rn: 2, nodes: ["a_1", "b_2"],
                                 vIdx: [0: ["a_1", "b_2"], 2_147_483_648: ["b_2"]],
                                 vClk: [0: 0, 2_147_483_648: 7])
        #expect(t.binDump() == hexBytes("5254000120010200020003615f310003625f3200000000020000000100000007010001"))
        #expect(t.marshalDump() == hexBytes(
            "04086f3a1f526f6d613a3a526f7574696e673a3a526f7574696e67446174610b3a0f40646773745f6269747369253a0e406469765f6269747369063a0840726e69073a0b406e6f6465735b07492208615f31063a064554492208625f32063b0a543a0b40765f6964787b0769005b07492208615f31063b0a54492208625f32063b0a546c2b07000000805b06492208625f32063b0a543a0b40765f636c6b7b07690069006c2b0700000080690c"))
        #expect(t.jsonDump() == #"[{"dgst_bits":32,"div_bits":1,"rn":2},["a_1","b_2"],{"0":["a_1","b_2"],"2147483648":["b_2"]}]"#)

        let big = try RoutingTable(
            dgstBits: 64, divBits: 2, rn: 1, nodes: ["x_1"],
            vIdx: [0: ["x_1"], 4_611_686_018_427_387_904: [], 9_223_372_036_854_775_808: ["x_1"],
                   13_835_058_055_282_163_712: ["x_1"]],
            vClk: [0: 1_073_741_823, 4_611_686_018_427_387_904: 1_073_741_824,
                   9_223_372_036_854_775_808: 300, 13_835_058_055_282_163_712: -5])
        #expect(big.marshalDump() == hexBytes(
            "04086f3a1f526f6d613a3a526f7574696e673a3a526f7574696e67446174610b3a0f40646773745f6269747369453a0e406469765f6269747369073a0840726e69063a0b406e6f6465735b06492208785f31063a0645543a0b40765f6964787b0969005b06492208785f31063b0a546c2b0900000000000000405b006c2b0900000000000000805b06492208785f31063b0a546c2b0900000000000000c05b06492208785f31063b0a543a0b40765f636c6b7b0969006904ffffff3f6c2b0900000000000000406c2b07000000406c2b09000000000000008069022c016c2b0900000000000000c069f6"))
    }

    @Test("binary dump round-trips")
    func binaryRoundTrip() throws {
        let back = try RoutingTable(binary: reference.binDump())
        #expect(back == reference)
        var t = reference
        t.setRoute(vn: 0, clk: 5, nids: ["127.0.0.2_10002"])
        t.setRoute(vn: 8_388_608, clk: 0, nids: [])
        let back2 = try RoutingTable(binary: t.binDump())
        #expect(back2 == t)
        #expect(back2.clock(forVnode: 0) == 6)
        #expect(throws: RoutingError.self) { try RoutingTable(binary: Array("XX".utf8)) }
        #expect(throws: RoutingError.self) { try RoutingTable(binary: Array(reference.binDump().dropLast())) }
    }

    @Test("YAML round-trips after changes, including empty lists and empty tables")
    func yamlRoundTrip() throws {
        var t = reference
        t.setRoute(vn: 0, clk: 0, nids: [])
        t.setRoute(vn: 4_286_578_688, clk: 3, nids: ["new_1", "127.0.0.1_10001"])
        let y = t.yaml()
        #expect(y.contains("\n  0: []\n"))
        #expect(y.contains("\n  4286578688: 4\n"))
        #expect(y.contains("\n- new_1\n"))
        #expect(try RoutingTable(yaml: y) == t)

        let empty = try RoutingTable(dgstBits: 32, divBits: 9, rn: 2, nodes: [], vIdx: [:], vClk: [:])
        #expect(empty.yaml() == """
            --- !ruby/object:Roma::Routing::RoutingData
            dgst_bits: 32
            div_bits: 9
            rn: 2
            nodes: []
            v_idx: {}
            v_clk: {}

            """)
        #expect(try RoutingTable(yaml: empty.yaml()) == empty)
        #expect(empty.mklhash(id: "0") == "0")
    }

    @Test("node ids are quoted like Ruby Psych (checked with ruby 3.1)")
    func yamlQuoting() throws {
        let names = ["a_1", "b_2", "10_20", "y", "-x_1", "true_1", "1.5_2", "a: b_1", "a #b_1", "é_1", "x\ty_1", ""]
        let t = try RoutingTable(dgstBits: 32, divBits: 1, rn: 2, nodes: names,
                                 vIdx: [0: ["a_1", "b_2"], 2_147_483_648: []], vClk: [0: 0, 2_147_483_648: 3])
        let expected = """
            --- !ruby/object:Roma::Routing::RoutingData
            dgst_bits: 32
            div_bits: 1
            rn: 2
            nodes:
            - ''
            - "-x_1"
            - 1.5_2
            - '10_20'
            - 'a #b_1'
            - 'a: b_1'
            - a_1
            - b_2
            - true_1
            - "x\\ty_1"
            - "y"
            - é_1
            v_idx:
              0:
              - a_1
              - b_2
              2147483648: []
            v_clk:
              0: 0
              2147483648: 3

            """
        #expect(t.yaml() == expected)
        #expect(try RoutingTable(yaml: expected) == t)
    }

    @Test("the line reader of ROMA's layout gives what Yams gives, and leaves other spellings to Yams")
    func plainLayoutReader() throws {
        // ROMA's file, and tables after changes (empty lists, other clocks, new node ids).
        var t = reference
        var tables = [t]
        t.setRoute(vn: 0, clk: 0, nids: [])
        t.setRoute(vn: 4_286_578_688, clk: 41, nids: ["new-host.example_1", "127.0.0.1_10001"])
        tables.append(t)
        tables.append(try RoutingTable(dgstBits: 32, divBits: 9, rn: 2, nodes: [], vIdx: [:], vClk: [:]))
        tables.append(try RoutingTable(dgstBits: 32, divBits: 1, rn: 3, nodes: ["a_1"], vIdx: [0: ["a_1"]], vClk: [0: 7]))
        for table in tables {
            let y = table.yaml()
            let plain = try #require(PlainRouteYAML.parse(y), "the layout yaml() writes is read by lines")
            #expect(plain.nodes == table.nodes && plain.vIdx == table.vIdx && plain.vClk == table.vClk)
            #expect(try RoutingTable(yaml: y) == RoutingTable(yamsParsing: y))
            #expect(try RoutingTable(yaml: y) == table)
            // Without the final newline too.
            #expect(try RoutingTable(yaml: String(y.dropLast())) == table)
        }
        // Other spellings go to Yams, which reads them the same.
        let header = "--- !ruby/object:Roma::Routing::RoutingData\ndgst_bits: 32\ndiv_bits: 1\nrn: 2\n"
        let others = [
            header + "nodes:\n- 'a_1'\nv_idx:\n  0:\n  - a_1\nv_clk:\n  0: 1\n",          // quoted id
            header + "nodes: [a_1]\nv_idx: {0: [a_1]}\nv_clk: {0: 1}\n",                      // flow style
            header + "nodes:\n- a_1 # the node\nv_idx:\n  0:\n  - a_1\nv_clk:\n  0: 1\n",  // comment
            header.replacingOccurrences(of: "\n", with: "\r\n") + "nodes: []\r\n",          // CRLF
            header + "nodes: []\nv_idx:\n  0: []\n  0:\n  - a_1\nv_clk: {}\n",             // vnode twice
            header + "nodes:\n- a_1\nv_idx:\n  0: ~\nv_clk:\n  0: 1\n",                    // null list
            header + "nodes:\n- a_1\n\nv_idx:\n  0:\n  - a_1\nv_clk:\n  0: 1\n",          // blank line
            "dgst_bits: 32\ndiv_bits: 1\nrn: 1\nnodes: []\nv_idx: {}\nv_clk: {}\n",          // untagged
        ]
        for y in others {
            #expect(PlainRouteYAML.parse(y) == nil, "\(y)")
            // Same table, or both refuse it (Yams: a repeated key).
            let viaYams = try? RoutingTable(yamsParsing: y)
            #expect((try? RoutingTable(yaml: y)) == viaYams)
            #expect(viaYams != nil || y.contains("  0: []\n  0:"))
        }
        // Errors stay errors.
        #expect(PlainRouteYAML.parse(header.replacingOccurrences(of: "rn: 2\n", with: "")) == nil)
        #expect(throws: RoutingError.self) { try RoutingTable(yaml: header.replacingOccurrences(of: "rn: 2\n", with: "")) }
        #expect(throws: RoutingError.invalidVnode(3)) { try RoutingTable(yaml: header + "nodes: []\nv_idx:\n  3: []\nv_clk: {}\n") }
        // A key of another version: left to Yams, which ignores it as before.
        let extra = header + "nodes: []\nv_idx: {}\nv_clk: {}\nextra: 1\n"
        #expect(PlainRouteYAML.parse(extra) == nil)
        #expect(try RoutingTable(yaml: extra) == RoutingTable(yamsParsing: extra))
    }

    @Test("import tolerates other spellings of the same data")
    func yamlVariants() throws {
        let flow = """
            --- !ruby/object:Roma::Routing::RoutingData
            dgst_bits: 32
            div_bits: 1
            rn: 2
            nodes: [a_1, "b_2"]
            v_idx: {0: [a_1, b_2], 2147483648: [b_2, a_1]}
            v_clk: {0: 2, 2147483648: 1}
            """
        let t = try RoutingTable(yaml: flow)
        #expect(t.nodes == ["a_1", "b_2"])
        #expect(t.route(forVnode: 2_147_483_648)! == (clock: 1, nodes: ["b_2", "a_1"]))
        let untagged = """
            dgst_bits: 32
            div_bits: 1
            rn: 1
            nodes:
            - b_2
            - a_1
            v_idx:
              0:
              - a_1
              2147483648:
            """
        let u = try RoutingTable(yaml: untagged)
        #expect(u.nodes == ["a_1", "b_2"])  // sorted on load
        #expect(u.nodes(forVnode: 2_147_483_648) == [])
        #expect(u.clock(forVnode: 0) == 0)
        #expect(throws: RoutingError.self) { try RoutingTable(yaml: "dgst_bits: 32\n") }
        #expect(throws: RoutingError.self) { try RoutingTable(yaml: "- 1\n") }
        #expect(throws: RoutingError.invalidVnode(3)) {
            try RoutingTable(yaml: "dgst_bits: 32\ndiv_bits: 1\nrn: 1\nnodes: []\nv_idx:\n  3: []\nv_clk: {}\n")
        }
    }

    @Test("JSON escaping")
    func jsonEscaping() throws {
        let t = try RoutingTable(dgstBits: 8, divBits: 0, rn: 1, nodes: ["q\"\\/\u{01}é"],
                                 vIdx: [0: ["q\"\\/\u{01}é"]], vClk: [0: 0])
        #expect(t.jsonDump() == #"[{"dgst_bits":8,"div_bits":0,"rn":1},["q\"\\/\u0001é"],{"0":["q\"\\/\u0001é"]}]"#)
    }
}
