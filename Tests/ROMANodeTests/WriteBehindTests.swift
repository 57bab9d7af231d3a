import Foundation
import Testing
@testable import ROMANode

/// Write-behind's map (R10.1) as ROMA reads `wb_command_map`, and its files.
@Suite struct WriteBehindTests {
    @Test func mapParsesAsRoma() {
        #expect(WriteBehind.parseMap("{:set=>1,:delete=>3}")!.map { "\($0.0)=\($0.1)" } == ["set=1", "delete=3"])
        // keys without a colon are skipped, values are to_i, a repeated key keeps its first place
        #expect(WriteBehind.parseMap("{set=>1,:add=>2x,:set__prev=>,:add=>5}")!.map { "\($0.0)=\($0.1)" } == ["add=5", "set__prev=0"])
        #expect(WriteBehind.parseMap("{}") == nil)
        #expect(WriteBehind.parseMap("[:set=>1]") == nil)
        #expect(WriteBehind.parseMap("{:set=>1") == nil)
    }

    @Test func everyCommandOfRomasTableIsServed() {
        #expect(Dispatcher.listedNames.isEmpty, "\(Dispatcher.listedNames.sorted())")
    }

    @Test func filesHoldRomasRecordsAndRotate() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("wb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let wb = WriteBehind(root: root, nodeID: "roma0_11211", shiftSize: 60, map: [("set", 1)])
        #expect(wb.mapInspect == "{:set=>1}")
        #expect(wb.code("set") == 1 && wb.code("set", previous: true) == nil && wb.code("delete") == nil)
        for i in 0..<4 { wb.push(hash: "roma", code: 1, key: Array("key-\(i)".utf8), value: Array("val-\(i)".utf8)) }
        let rotated = RotateResult()
        wb.rotate("roma") { rotated.value = $0 }
        wb.closeAll()
        #expect(rotated.value == true)
        let day = try FileManager.default.contentsOfDirectory(atPath: "\(root)/roma0_11211/roma")
        #expect(day.count == 1)
        let dir = "\(root)/roma0_11211/roma/\(day[0])"
        // records of 14 + 5 + 5 bytes; a file that reached 60 bytes takes no more: 3 in 0.wb, 1 in 1.wb
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["0.wb", "1.wb"])
        let first = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(dir)/0.wb")))
        #expect(first.count == 72)
        #expect(Array(first[4..<6]) == [0, 1] && Array(first[6..<10]) == [0, 0, 0, 5])
        #expect(Array(first[10..<15]) == Array("key-0".utf8) && Array(first[19..<24]) == Array("val-0".utf8))
    }
}

private final class RotateResult: @unchecked Sendable {
    // Written by the writer's queue before `closeAll` (a sync on the same queue) returns.
    var value: Bool?
}
