import Foundation
import Testing
@testable import ROMANode

@Suite struct CopySettingsTests {
    private func config(_ yaml: String) throws -> NodeConfig { try nodeConfig(fromFile: yaml, ext: "yml") }

    @Test func defaultsAreUnlimitedAndTwoAtOnce() {
        let c = NodeConfig()
        #expect(c.copyBandwidth == 0)
        #expect(c.copyParallelism == 2)
        #expect(c.vnodeIndexMemory == 1 << 30)
    }

    @Test func vnodeIndexMemoryKey() throws {
        #expect(try config("VNODE_INDEX_MEMORY: 0\n").vnodeIndexMemory == 0)
        #expect(try config("VNODE_INDEX_MEMORY: 268435456\n").vnodeIndexMemory == 256 << 20)
        #expect(throws: ConfigError.self) { _ = try config("VNODE_INDEX_MEMORY: -5\n") }
    }

    @Test func configKeysSetBothAndBadValuesAreRefused() throws {
        let c = try config("VNODE_COPY_BANDWIDTH: 20000000\nVNODE_COPY_PARALLELISM: 6\n")
        #expect(c.copyBandwidth == 20_000_000)
        #expect(c.copyParallelism == 6)
        #expect(throws: ConfigError.self) { _ = try config("VNODE_COPY_BANDWIDTH: -1\n") }
        #expect(throws: ConfigError.self) { _ = try config("VNODE_COPY_PARALLELISM: 0\n") }
        #expect(throws: ConfigError.self) { _ = try config("VNODE_COPY_PARALLELISM: 65\n") }
    }

    @Test func pacerSpreadsChunksOverOneTimeline() {
        // 1 MB/s: ten 50 kB chunks from two threads take at least 0.45 s together (the first
        // goes at once); unlimited takes no time.
        let pacer = Node.CopyPacer(bytesPerSecond: 1_000_000)
        let start = Node.monotonicNow()
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                for _ in 0..<5 { pacer.pace(50_000) }
            }
        }
        group.wait()
        #expect(Node.monotonicNow() - start >= 0.45)
        let free = Node.CopyPacer(bytesPerSecond: 0)
        let t0 = Node.monotonicNow()
        for _ in 0..<1000 { free.pace(1 << 20) }
        #expect(Node.monotonicNow() - t0 < 0.5)
    }
}
