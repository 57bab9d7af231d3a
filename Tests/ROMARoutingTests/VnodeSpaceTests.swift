import Testing
@testable import ROMARouting

@Suite("Digest, vnodes and divisions (R1.4, R1.6, R4.1)")
struct VnodeSpaceTests {
    let space = VnodeSpace()

    @Test("defaults")
    func defaults() {
        #expect(space.dgstBits == 32 && space.divBits == 9)
        #expect(space.vnodeCount == 512)
        #expect(space.searchMask == 0xFF80_0000)
        #expect(space.vnodeStep == 8_388_608)
        #expect(space == VnodeSpace.standard)
    }

    @Test("key foo → d = 1977256499, vn = 1971322880")
    func fooVector() {
        #expect(space.digest(ofKey: "foo") == 1_977_256_499)
        #expect(space.vnode(ofKey: "foo") == 1_971_322_880)
        let bytes: [UInt8] = Array("foo".utf8)
        #expect(bytes.withUnsafeBytes { space.digest(ofKey: $0) } == 0x75DA_8A33)
        #expect(bytes.withUnsafeBytes { space.vnode(ofKey: $0) } == 0x7580_0000)
        #expect(space.digest(ofKey: bytes) == 1_977_256_499)
        #expect(space.vnode(ofDigest: 1_977_256_499) == 1_971_322_880)
    }

    @Test("other geometries take the low dgst_bits of the digest")
    func otherGeometries() {
        let s16 = VnodeSpace(dgstBits: 16, divBits: 4)
        #expect(s16.digest(ofKey: "foo") == 0x8A33)
        #expect(s16.searchMask == 0xF000)
        #expect(s16.vnode(ofKey: "foo") == 0x8000)
        let s64 = VnodeSpace(dgstBits: 64, divBits: 32)
        #expect(s64.digest(ofKey: "foo") == 0x7F3C_5BC2_75DA_8A33)
        #expect(s64.searchMask == 0xFFFF_FFFF_0000_0000)
        #expect(s64.vnode(ofKey: "foo") == 0x7F3C_5BC2_0000_0000)
        let s0 = VnodeSpace(dgstBits: 8, divBits: 0)
        #expect(s0.vnodeCount == 1)
        #expect(s0.searchMask == 0)
        #expect(Array(s0.allVnodes) == [0])
        #expect(s0.nextVnode(0) == 0)
        #expect(!VnodeSpace.isValid(dgstBits: 8, divBits: 9))
        #expect(!VnodeSpace.isValid(dgstBits: 65, divBits: 9))
        #expect(!VnodeSpace.isValid(dgstBits: 64, divBits: 33))
        #expect(VnodeSpace.isValid(dgstBits: 64, divBits: 32))
    }

    @Test("allVnodes, index and nextVnode")
    func ring() {
        let all = Array(space.allVnodes)
        #expect(all.count == 512)
        #expect(all.first == 0)
        #expect(all[1] == 8_388_608)
        #expect(all.last == 4_286_578_688)
        for (i, vn) in all.enumerated() {
            #expect(space.index(ofVnode: vn) == i)
            #expect(space.vnode(atIndex: i) == vn)
            #expect(space.isVnode(vn))
        }
        #expect(space.nextVnode(0) == 8_388_608)
        #expect(space.nextVnode(4_286_578_688) == 0)
        #expect(space.nextVnode(1_971_322_880) == 1_979_711_488)
        #expect(!space.isVnode(1))
        #expect(!space.isVnode(1 << 32))
    }

    @Test("division vectors (divnum 10)", arguments: [
        (UInt64(0), 8), (8_388_608, 6), (4_286_578_688, 8), (1_971_322_880, 3),
    ])
    func divisionVectors(vn: UInt64, expected: Int) {
        #expect(divisionOf(vnode: vn, divnum: 10) == expected)
        #expect(DivisionMap(space: space, divnum: 10).division(ofVnode: vn) == expected)
    }

    @Test("division with other divnums (checked with Ruby)")
    func divisionOther() {
        #expect(divisionOf(vnode: 1_971_322_880, divnum: 7) == 5)
        #expect(divisionOf(vnode: 123, divnum: 1_000_003) == 74937)
        #expect(divisionOf(vnode: 4_286_578_688, divnum: 3) == 0)
        #expect(divisionOf(vnode: 42, divnum: 1) == 0)
    }

    @Test("DivisionMap covers every vnode; unknown vnodes map to 0")
    func divisionMap() {
        let map = DivisionMap(space: space, divnum: 10)
        // Ruby: s = 0; 512.times { |i| s = (s*31 + SHA1(i<<23) % 10) % 1000000007 }
        var s = 0
        for vn in space.allVnodes {
            let d = map.division(ofVnode: vn)
            #expect(d == divisionOf(vnode: vn, divnum: 10))
            #expect(map[vnode: vn] == d)
            s = (s * 31 + d) % 1_000_000_007
        }
        #expect(s == 490_069_260)
        #expect(map.division(ofVnode: 1) == 0)
        #expect(map.division(ofVnode: 1 << 40) == 0)

        let partial = DivisionMap(space: space, divnum: 10, vnodes: [8_388_608, 1_971_322_880])
        #expect(partial.division(ofVnode: 8_388_608) == 6)
        #expect(partial.division(ofVnode: 1_971_322_880) == 3)
        #expect(partial.division(ofVnode: 0) == 0)  // not in the table (its real division is 8)
        #expect(partial.division(ofVnode: 4_286_578_688) == 0)
    }
}

@Suite("Node ids and Ruby inspect (R1.1)")
struct NodeIDTests {
    @Test("normalize, host, well-formedness")
    func nodeIDs() {
        #expect(NodeID.normalize("localhost:10001") == "localhost_10001")
        #expect(NodeID.normalize("a:1:2") == "a_1:2")
        #expect(NodeID.normalize("a_1") == "a_1")
        #expect(NodeID.host(of: "127.0.0.1_10001") == "127.0.0.1")
        #expect(NodeID.host(of: "host:1") == "host")
        #expect(NodeID.host(of: "plain") == "plain")
        #expect(NodeID.isWellFormed("127.0.0.1_10001"))
        #expect(NodeID.isWellFormed("roma-0.example.com_12000"))
        #expect(!NodeID.isWellFormed("localhost"))
        #expect(!NodeID.isWellFormed("_1"))
        #expect(!NodeID.isWellFormed("a_"))
        #expect(!NodeID.isWellFormed("a_12x"))
        #expect(!NodeID.isWellFormed("a_70000"))
        #expect(!NodeID.isWellFormed("a b_1"))
        #expect(NodeID.precedes("127.0.0.1_10001", "127.0.0.2_10002"))
        #expect(NodeID.precedes("B_1", "a_1"))  // byte order, like Ruby
    }

    @Test("Ruby inspect (checked with ruby 3.1)")
    func inspect() {
        #expect(RubyInspect.array(["localhost_10001", "localhost_10002"]) == #"["localhost_10001", "localhost_10002"]"#)
        #expect(RubyInspect.array([String]()) == "[]")
        #expect(RubyInspect.string("a\u{01}b") == #""a\u0001b""#)
        #expect(RubyInspect.string("q\"\\") == #""q\"\\""#)
        #expect(RubyInspect.string("\u{1B}") == #""\e""#)
        #expect(RubyInspect.string("#{x}") == ##""\#{x}""##)
        #expect(RubyInspect.string("#x") == ##""#x""##)
        #expect(RubyInspect.string("\u{7F}") == #""\u007F""#)
        #expect(RubyInspect.string("é") == "\"é\"")
        #expect(RubyInspect.string("a\tb\n") == #""a\tb\n""#)
    }
}
