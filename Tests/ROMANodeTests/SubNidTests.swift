import Foundation
import ROMARouting
import Testing
@testable import ROMANode

/// RTTABLE_SUB_NID: the rules, their matching, the rewritten table, `stat`'s form and the config.
@Suite struct SubNidTests {
    @Test func netmasksMatchAsRomaComputesThem() {
        #expect(SubNidTable.netmask("127.0.0.0/24")! == (0x7F00_0000, 0xFFFF_FF00))
        #expect(SubNidTable.netmask("10.1.2.3/0")! == (0x0A01_0203, 0))
        #expect(SubNidTable.netmask("10.1.2.3/32")! == (0x0A01_0203, 0xFFFF_FFFF))
        #expect(SubNidTable.netmask("10.1.2.3") == nil)
        #expect(SubNidTable.netmask("10.1.2.3/33") == nil)
        #expect(SubNidTable.netmask("vm") == nil)
        #expect(SubNidTable.firstIPv4(in: "::ffff:192.168.1.20") == 0xC0A8_0114)
        #expect(SubNidTable.firstIPv4(in: "::1") == nil)
    }

    @Test func theFirstMatchingRuleRewritesTheFirstOccurrence() throws {
        var t = SubNidTable()
        t.add(mask: "192.168.0.0/16", pattern: "localhost", replacement: "vm")
        t.add(mask: "127.0.0.0/24", pattern: "127.0.0.", replacement: "10.9.9.")
        t.add(mask: "bad", pattern: "x", replacement: "y")
        #expect(t.rule(forClient: "127.0.0.1")?.mask == "127.0.0.0/24")
        #expect(t.rule(forClient: "192.168.3.4")?.mask == "192.168.0.0/16")
        #expect(t.rule(forClient: "10.0.0.1") == nil)
        #expect(t.rule(forClient: "::1") == nil)
        let rt = try RoutingTable(dgstBits: 32, divBits: 1, rn: 2, nodes: ["127.0.0.1_1", "127.0.0.2_2"],
                                  vIdx: [0: ["127.0.0.2_2", "127.0.0.1_1"], 1 << 31: ["127.0.0.1_1", "127.0.0.2_2"]], vClk: [:])
        let seen = t.table(rt, forClient: "127.0.0.9")
        #expect(seen.nodes == ["10.9.9.1_1", "10.9.9.2_2"])
        #expect(seen.nodes(forVnode: 0) == ["10.9.9.2_2", "10.9.9.1_1"])
        #expect(t.table(rt, forClient: "10.1.1.1") == rt)
        #expect(t.table(rt, forClient: nil) == rt)
        #expect(SubNidTable.replaceFirst("a", with: "b", in: "aaa") == "baa")
        // Re-adding a netmask keeps its place; delete and clear.
        t.add(mask: "192.168.0.0/16", pattern: "localhost", replacement: "box")
        #expect(t.inspect == #"{"192.168.0.0/16"=>{:regexp=>"localhost", :replace=>"box"}, "127.0.0.0/24"=>{:regexp=>"127.0.0.", :replace=>"10.9.9."}, "bad"=>{:regexp=>"x", :replace=>"y"}}"#)
        let deleted = t.delete(mask: "bad")
        let again = t.delete(mask: "bad")
        #expect(deleted && !again)
        t.clear()
        #expect(t.inspect == "{}")
    }

    @Test func configRbAndYamlSetTheRules() throws {
        func config(_ text: String, ext: String) throws -> NodeConfig { try nodeConfig(fromFile: text, ext: ext) }
        let rb = try config("""
            module Roma
              module Config
                RTTABLE_SUB_NID = {
                  '10.0.0.0/8' => { :regexp => 'node', :replace => 'pub' },
                  "127.0.0.0/24" => { regexp: "localhost", replace: "vm" },
                }
              end
            end
            """, ext: "rb")
        #expect(rb.subNid.inspect == #"{"10.0.0.0/8"=>{:regexp=>"node", :replace=>"pub"}, "127.0.0.0/24"=>{:regexp=>"localhost", :replace=>"vm"}}"#)
        let yaml = try config("RTTABLE_SUB_NID:\n  127.0.0.0/24: {regexp: localhost, replace: vm}\n", ext: "yml")
        #expect(yaml.subNid.inspect == #"{"127.0.0.0/24"=>{:regexp=>"localhost", :replace=>"vm"}}"#)
        #expect(throws: ConfigError.self) { _ = try config("RTTABLE_SUB_NID: [1, 2]\n", ext: "yml") }
        #expect(throws: ConfigError.self) { _ = try config("RTTABLE_SUB_NID:\n  127.0.0.0/24: {regexp: x}\n", ext: "yml") }
    }
}
