import NIOCore
import NIOPosix
import ROMARouting
import Testing
@testable import RomaClient

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// RomaClient against real `romad` processes (memory storage, 127.0.0.1). Serialized: each
/// test starts its own node, and the machine may have few cores.
@Suite(.serialized) struct IntegrationTests {
    @Test func storageCommandsAgainstASingleNode() async throws {
        let node = try await RomadProcess.start()
        defer { node.stop() }
        let client = try await RomaClient(seeds: [node.seed], hashName: "roma", timeout: .seconds(5))

        // The single node's table lists itself for all 512 vnodes.
        let table = try #require(client.routingTable)
        #expect(table.nodes == [node.nodeID])
        #expect(table.vIdx.count == 512)
        #expect(table.vIdx.values.allSatisfy { $0 == [node.nodeID] })
        #expect(client.fingerprint == table.mklhash(id: "0"))
        #expect(client.node(forKey: "foo") == node.nodeID)

        #expect(try await client.get("absent") == nil)
        #expect(try await client.set("k", bytes("v")) == .stored)
        #expect(try await client.get("k") == bytes("v"))

        // Values containing CRLF and END, every byte value, and the empty value.
        let tricky = bytes("a\r\nEND\r\nVALUE x 0 1\r\n") + (0..<256).map { UInt8($0) }
        #expect(try await client.set("tricky", tricky) == .stored)
        #expect(try await client.get("tricky") == tricky)
        #expect(try await client.set("empty", []) == .stored)
        #expect(try await client.get("empty") == [])

        #expect(try await client.add("k", bytes("x")) == .notStored)
        #expect(try await client.add("new", bytes("n")) == .stored)
        #expect(try await client.replace("missing", bytes("x")) == .notStored)
        #expect(try await client.replace("new", bytes("m")) == .stored)
        #expect(try await client.append("new", bytes(">")) == .stored)
        #expect(try await client.prepend("new", bytes("<")) == .stored)
        #expect(try await client.get("new") == bytes("<m>"))
        #expect(try await client.append("missing", bytes("x")) == .notStored)

        // gets: keys without the hash suffix, cas uniques; then cas.
        let got = try await client.gets(["k", "new", "missing", "k"])
        #expect(Set(got.keys) == ["k", "new"])
        #expect(got["k"]?.value == bytes("v"))
        let casK = try #require(got["k"]?.cas)
        #expect(try await client.cas("k", bytes("v2"), cas: casK &+ 1000) == .exists)
        #expect(try await client.cas("k", bytes("v2"), cas: casK) == .stored)
        #expect(try await client.get("k") == bytes("v2"))
        #expect(try await client.cas("k", bytes("v3"), cas: casK) == .exists)
        #expect(try await client.cas("missing", bytes("v"), cas: 1) == .notFound)

        #expect(try await client.delete("k") == .deleted)
        #expect(try await client.delete("k") == .notFound)
        #expect(try await client.get("k") == nil)

        #expect(try await client.incr("counter") == nil)
        #expect(try await client.set("counter", bytes("10")) == .stored)
        #expect(try await client.incr("counter", by: 5) == 15)
        #expect(try await client.decr("counter", by: 3) == 12)
        #expect(try await client.decr("counter", by: 100) == 0)
        #expect(try await client.get("counter") == bytes("0"))

        await #expect(throws: RomaClientError.invalidKey("a b")) { _ = try await client.get("a b") }
        await client.close()
        await #expect(throws: RomaClientError.closed) { _ = try await client.get("k") }
    }

    @Test func concurrentRequestsAndMultiGet() async throws {
        let node = try await RomadProcess.start()
        defer { node.stop() }
        var config = RomaClient.Configuration()
        config.connectionsPerNode = 3
        let client = try await RomaClient(seeds: ["127.0.0.1_\(node.port)"], timeout: .seconds(5), configuration: config)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let r = try await client.set("key\(i)", bytes("value-\(i)"))
                    #expect(r == .stored)
                }
            }
            try await group.waitForAll()
        }
        let keys = (0..<220).map { "key\($0)" }
        let got = try await client.gets(keys)
        #expect(got.count == 200)
        for i in 0..<200 { #expect(got["key\(i)"]?.value == bytes("value-\(i)")) }
        // Pipelined gets on the pool, all answered correctly.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let v = try await client.get("key\(i)")
                    #expect(v == bytes("value-\(i)"))
                }
            }
            try await group.waitForAll()
        }
        // At most `connectionsPerNode` per event loop of the client.
        let open = await client.openConnections(to: node.nodeID)
        #expect(open >= 1 && open <= 3 * client.perLoop.count)
        await client.close()
    }

    @Test func serverErrorLineIsThrown() async throws {
        let node = try await RomadProcess.start()
        defer { node.stop() }
        let client = try await RomaClient(seeds: [node.seed], hashName: "nohash", timeout: .seconds(5))
        await #expect(throws: RomaClientError.serverError("SERVER_ERROR nohash does not exists.")) {
            _ = try await client.set("k", bytes("v"))
        }
        await #expect(throws: RomaClientError.serverError("SERVER_ERROR nohash does not exists.")) {
            _ = try await client.get("k")
        }
        // A missing hash makes gets omit the key (R3.9).
        #expect(try await client.gets(["k"]).isEmpty)
        // The node is not marked failed for an error reply.
        #expect(client.failureCount(of: node.nodeID) == 0)
        await client.close()
    }

    @Test func failsOverFromADeadPrimaryAndRefreshesTheTable() async throws {
        let node = try await RomadProcess.start()
        defer { node.stop() }
        let dead = "127.0.0.1_\(RomadProcess.freePort())"  // nothing listens there
        var idx: [UInt64: [String]] = [:]
        for vn in VnodeSpace.standard.allVnodes { idx[vn] = [dead, node.nodeID] }
        let table = try RoutingTable(dgstBits: 32, divBits: 9, rn: 2, nodes: [dead, node.nodeID], vIdx: idx, vClk: [:])
        var config = RomaClient.Configuration()
        config.refreshInterval = .seconds(3600)  // only forced refreshes
        let client = try RomaClient(seeds: [node.seed], hashName: "roma", timeout: .seconds(2), configuration: config,
                                    table: table, fingerprint: "stale")
        client.startRefreshLoop()
        #expect(client.node(forKey: "a") == dead)

        #expect(try await client.set("a", bytes("1")) == .stored)
        // The dead primary failed once; the forced refresh may already have dropped it.
        #expect(client.nodeFailureCount == 1)
        #expect(try await client.get("a") == bytes("1"))

        // The failure forced a refresh: the node's own table (without the dead node) replaces ours.
        try await eventually("the node's table is installed") { client.routingTable?.nodes == [node.nodeID] }
        #expect(client.node(forKey: "a") == node.nodeID)
        #expect(client.failureCount(of: dead) == 0)  // forgotten with the table that listed it
        await client.close()
    }

    @Test func silentPrimaryTimesOutAndFailsOverOnTheEventLoopAPI() async throws {
        // A primary that accepts connections and never answers: each request times out on its
        // connection's one timer, and the request fails over to the live node.
        let node = try await RomadProcess.start()
        defer { node.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let silent = try await ServerBootstrap(group: group)
            .childChannelInitializer { _ in group.next().makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let mute = "127.0.0.1_\(silent.localAddress!.port!)"
        var idx: [UInt64: [String]] = [:]
        for vn in VnodeSpace.standard.allVnodes { idx[vn] = [mute, node.nodeID] }
        let table = try RoutingTable(dgstBits: 32, divBits: 9, rn: 2, nodes: [mute, node.nodeID], vIdx: idx, vClk: [:])
        var config = RomaClient.Configuration()
        config.refreshInterval = .seconds(3600)
        config.eventLoopGroup = group
        let client = try RomaClient(seeds: [node.seed], hashName: "roma", timeout: .milliseconds(300), configuration: config,
                                    table: table, fingerprint: "stale")
        let loop = group.next()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try await client.set("t", bytes("1"), on: loop).get() == .stored)
        #expect(clock.now - start >= .milliseconds(300), "the silent primary was tried first")
        #expect(clock.now - start < .seconds(5))
        #expect(client.nodeFailureCount >= 1)
        #expect(try await client.get("t", on: loop).get() == bytes("1"))
        #expect(try await client.delete("t", on: loop).get() == .deleted)
        await client.close()
        try await silent.close()
        try await group.shutdownGracefully()
    }

    @Test func backgroundRefreshFetchesOnlyWhenTheFingerprintChanges() async throws {
        let node = try await RomadProcess.start()
        defer { node.stop() }
        var config = RomaClient.Configuration()
        config.refreshInterval = .milliseconds(50)
        // Start from a stale table and fingerprint: the first background round must refetch.
        let stale = RoutingTable.singleNode("127.0.0.1_1")
        let client = try RomaClient(seeds: [node.seed], hashName: "roma", timeout: .seconds(2), configuration: config,
                                    table: stale, fingerprint: "stale")
        client.startRefreshLoop()
        try await eventually("the node's table is installed") { client.routingTable?.nodes == [node.nodeID] }
        let installed = client.state.withLock { $0.tablesInstalled }
        #expect(installed == 1)
        let rounds = client.state.withLock { $0.refreshRounds }
        try await eventually("three more refresh rounds") { client.state.withLock { $0.refreshRounds } >= rounds + 3 }
        // Same fingerprint every round: no new table fetched.
        #expect(client.state.withLock { $0.tablesInstalled } == installed)
        #expect(try await client.set("x", bytes("y")) == .stored)
        await client.close()
    }

    @Test func nodeDownGivesClearErrorAndComesBackHealthy() async throws {
        var node = try await RomadProcess.start()
        defer { node.stop() }
        var config = RomaClient.Configuration()
        config.refreshInterval = .milliseconds(100)
        let client = try await RomaClient(seeds: [node.seed], timeout: .seconds(1), configuration: config)
        #expect(try await client.set("k", bytes("v")) == .stored)

        let port = node.port
        node.stop()
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try await client.set("k", bytes("v2"))
            Issue.record("set succeeded with the only node down")
        } catch let e as RomaClientError {
            guard case .unavailable(let message) = e else { Issue.record("unexpected error \(e)"); return }
            #expect(message.contains(node.nodeID))
        }
        #expect(clock.now - start < .seconds(10), "bounded retries")
        #expect(client.failureCount(of: node.nodeID) >= 1)

        // The node comes back on the same port: the background probe marks it healthy again.
        node = try await RomadProcess.start(port: port)
        try await eventually("the node is healthy again") { client.failureCount(of: node.nodeID) == 0 }
        #expect(try await client.set("k", bytes("v3")) == .stored)
        #expect(try await client.get("k") == bytes("v3"))
        await client.close()
    }

    @Test func multiGetIsSplitPerNodeAndSurvivesANodeLoss() async throws {
        // Two independent single nodes; a hand-built table gives even vnodes to A, odd ones to B
        // (each with the other as secondary). Each node serves whatever reaches it.
        let a = try await RomadProcess.start()
        defer { a.stop() }
        let b = try await RomadProcess.start()
        defer { b.stop() }
        var idx: [UInt64: [String]] = [:]
        for (i, vn) in VnodeSpace.standard.allVnodes.enumerated() {
            idx[vn] = i % 2 == 0 ? [a.nodeID, b.nodeID] : [b.nodeID, a.nodeID]
        }
        let table = try RoutingTable(dgstBits: 32, divBits: 9, rn: 2, nodes: [a.nodeID, b.nodeID], vIdx: idx, vClk: [:])
        var config = RomaClient.Configuration()
        config.refreshInterval = .seconds(3600)
        let client = try RomaClient(seeds: [a.seed], hashName: "roma", timeout: .seconds(2), configuration: config,
                                    table: table, fingerprint: "hand-built")
        // No refresh loop: the hand-built table stays unless a failure forces a refresh.
        let keys = (0..<100).map { "k\($0)" }
        for k in keys { #expect(try await client.set(k, bytes("v-\(k)")) == .stored) }
        let onA = keys.filter { client.node(forKey: $0) == a.nodeID }
        let onB = keys.filter { client.node(forKey: $0) == b.nodeID }
        #expect(!onA.isEmpty && !onB.isEmpty && onA.count + onB.count == keys.count)

        let all = try await client.gets(keys)
        #expect(all.count == keys.count)
        for k in keys { #expect(all[k]?.value == bytes("v-\(k)")) }

        // Each key went to its own node only: a client pinned to A (A's own table lists only A).
        let pinnedA = try await RomaClient(seeds: [a.seed], timeout: .seconds(2))
        #expect(Set(try await pinnedA.gets(keys).keys) == Set(onA))
        await pinnedA.close()

        // B dies: its group fails over to A (its secondary), which does not hold B's keys.
        b.stop()
        let afterLoss = try await client.gets(keys)
        #expect(Set(afterLoss.keys) == Set(onA))
        #expect(client.failureCount(of: b.nodeID) >= 1)  // no refresh loop runs, so the table stays
        await client.close()
    }
}
