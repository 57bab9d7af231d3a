import Foundation
import Testing
@testable import ROMARouting

private func makeTempDir() throws -> String {
    let dir = NSTemporaryDirectory() + "romarouting-\(UInt64.random(in: 0 ... .max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Routing log files (R4.5)")
struct RoutingLogTests {
    @Test("event text and parsing")
    func events() throws {
        let e = RoutingLog.Event.setroute(vnode: 8_388_608, clock: 3, nodes: ["a_1", "b_2"])
        #expect(e.text == "setroute 8388608 3 a_1 b_2")
        #expect(RoutingLog.Event.setroute(vnode: 0, clock: 1, nodes: []).text == "setroute 0 1")
        #expect(RoutingLog.Event.join("a_1").text == "join a_1")
        #expect(RoutingLog.Event.leave("a_1").text == "leave a_1")
        #expect(try RoutingLog.Event(text: e.text) == e)
        #expect(try RoutingLog.Event(text: "setroute 0 1") == .setroute(vnode: 0, clock: 1, nodes: []))
        #expect(throws: RoutingError.self) { try RoutingLog.Event(text: "bogus x") }
        #expect(throws: RoutingError.self) { try RoutingLog.Event(text: "setroute x 1") }

        let p = try RoutingLog.parse(line: "2011-01-27T16:40:01.16753 join a_1\n")
        #expect(p?.event == .join("a_1"))
        #expect(p?.date.year == 2011 && p?.date.month == 1 && p?.date.day == 27)
        #expect(p?.date.hour == 16 && p?.date.minute == 40 && p?.date.second == 1)
        #expect(try RoutingLog.parse(line: "# comment") == nil)
        #expect(try RoutingLog.parse(line: "") == nil)
        #expect(try RoutingLog.parse(line: "garbage") == nil)
        #expect(throws: RoutingError.self) { try RoutingLog.parse(line: "2011-01-27T16:40:01.1 what a_1") }
    }

    @Test("line format: local time, unpadded microseconds")
    func lineFormat() {
        let l = RoutingLog.line(.join("a_1"), seconds: 0, microseconds: 5)
        #expect(l.hasSuffix(".5 join a_1\n"))
        #expect(l.utf8.count == "1970-01-01T00:00:00.5 join a_1\n".utf8.count)
        let now = RoutingLog.line(.leave("b_2"))
        let parsed = try? RoutingLog.parse(line: now)
        #expect(parsed?.event == .leave("b_2"))
        // The fields as ROMA writes them, against the C library's own formatting.
        let t = 1_296_146_401
        var tt = time_t(t)
        var tmv = tm()
        localtime_r(&tt, &tmv)
        var buf = [CChar](repeating: 0, count: 32)
        _ = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%S", &tmv)
        let expected = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(RoutingLog.line(.setroute(vnode: 8_388_608, clock: 3, nodes: ["a_1", "b_2"]), seconds: t, microseconds: 167_530)
            == expected + ".167530 setroute 8388608 3 a_1 b_2\n")
        #expect(String(decoding: RoutingLog.stamp(seconds: t, microseconds: 0), as: UTF8.self) == expected + ".0 ")
    }

    @Test("appendText appends each event's text to what is there")
    func appendText() {
        for (e, text) in [(RoutingLog.Event.setroute(vnode: 8_388_608, clock: 3, nodes: ["a_1", "b_2"]), "setroute 8388608 3 a_1 b_2"),
                          (.setroute(vnode: 0, clock: 1, nodes: []), "setroute 0 1"), (.join("a_1"), "join a_1"), (.leave("b_2"), "leave b_2")] {
            var out: [UInt8] = Array("x".utf8)
            e.appendText(to: &out)
            #expect(String(decoding: out, as: UTF8.self) == "x" + text)
        }
    }

    @Test("boot load replays logs in numeric order; writer picks and rotates files")
    func loadAndWrite() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let route = dir + "/a_1.route"
        var t = RoutingTable.singleNode("a_1", dgstBits: 32, divBits: 2, rn: 2)
        try t.save(path: route)
        #expect(try String(contentsOfFile: route, encoding: .utf8) == t.yaml())

        // First writer: no logs yet → .1
        let w = try RoutingLogWriter(routeFile: route)
        #expect(w.currentPath == route + ".1")
        guard case let .stored(clk, joined) = t.setRoute(vn: 0, clk: 0, nids: ["b_2", "a_1"]) else {
            Issue.record("setRoute failed"); return
        }
        for j in joined { try w.write(.join(j)) }
        try w.write(.setroute(vnode: 0, clock: clk, nodes: ["b_2", "a_1"]))
        w.close()

        // Non-empty .1 → next writer uses .2; an empty newest file would be reused.
        let w2 = try RoutingLogWriter(routeFile: route)
        #expect(w2.currentPath == route + ".2")
        w2.close()
        let w3 = try RoutingLogWriter(routeFile: route)
        #expect(w3.currentPath == route + ".2")
        // Several events in one write (a routing change of many vnodes), one line each.
        try w3.write([.setroute(vnode: 1 << 30, clock: 1, nodes: []), .leave("b_2")])
        try w3.write([])
        w3.close()
        #expect(try String(contentsOfFile: route + ".2", encoding: .utf8).split(separator: "\n").count == 2)
        try "# comment\n\n".write(toFile: route + ".10", atomically: true, encoding: .utf8)
        try "x".write(toFile: route + ".3~", atomically: true, encoding: .utf8)

        #expect(RoutingLog.files(of: route).map(\.number) == [1, 2, 10])
        let loaded = try RoutingTable.load(path: route)
        #expect(loaded.nodes(forVnode: 0) == ["b_2", "a_1"])
        #expect(loaded.clock(forVnode: 0) == 1)
        #expect(loaded.nodes(forVnode: 1 << 30) == [])
        #expect(loaded.clock(forVnode: 1 << 30) == 1)
        #expect(loaded.nodes == ["a_1"])  // joined then left
        var expected = t
        expected.replaceRoute(vn: 1 << 30, nids: [])
        expected.removeFromNodes("b_2")
        #expect(loaded == expected)
        #expect(loaded.mklhash(id: "0") == expected.mklhash(id: "0"))

        // ssroute folds all but the newest log.
        #expect(try RoutingTable.snapshot(path: route))
        #expect(FileManager.default.fileExists(atPath: route + "~"))
        #expect(FileManager.default.fileExists(atPath: route + ".1~"))
        #expect(FileManager.default.fileExists(atPath: route + ".2~"))
        #expect(FileManager.default.fileExists(atPath: route + ".10"))
        #expect(try RoutingTable.loadSnapshot(path: route) == expected)
        #expect(try RoutingTable.load(path: route) == expected)
        #expect(try !RoutingTable.snapshot(path: route))
    }

    @Test("rotation once the file exceeds 1,024,000 bytes")
    func rotation() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let route = dir + "/r_1.route"
        let w = try RoutingLogWriter(routeFile: route)
        let line = "2020-01-01T00:00:00.1 join " + String(repeating: "x", count: 1000) + "\n"
        // 996 lines = 1,023,888 bytes (not over); the 997th is still appended to .1 → 1,024,916.
        for _ in 0..<997 { try w.write(line: line) }
        #expect(w.currentPath == route + ".1")
        try w.write(line: line)
        #expect(w.currentPath == route + ".2")
        w.close()
    }

    @Test("replay rejects vnodes outside the space")
    func replayInvalid() {
        var t = RoutingTable.singleNode("a_1")
        #expect(throws: RoutingError.invalidVnode(3)) {
            try t.replay(logText: "2020-01-01T00:00:00.1 setroute 3 1 a_1\n")
        }
    }
}
