import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import ROMABench

/// A tiny in-process memcached (get, set, delete) to drive roma-bench end to end.
final class FakeServer: Sendable {
    enum Fault: Sendable, Equatable {
        case none
        /// Every set is answered `SERVER_ERROR …`.
        case serverErrorOnSet
        /// Every set is answered `NOT_STORED`.
        case notStored
        /// The connection is closed after this many requests.
        case closeAfter(Int)
    }

    let store = Mutex<[String: [UInt8]]>([:])
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let fault: Fault
    let channel: Mutex<Channel?> = Mutex(nil)

    init(fault: Fault = .none) { self.fault = fault }

    func start() async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeServerHandler(server: self))
                }
            }
        let ch = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        channel.withLock { $0 = ch }
        return ch.localAddress?.port ?? 0
    }

    func stop() async {
        let ch = channel.withLock { $0 }
        try? await ch?.close()
        try? await group.shutdownGracefully()
    }
}

final class FakeServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let server: FakeServer
    var buffer = ByteBuffer()
    var served = 0

    init(server: FakeServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        var out = context.channel.allocator.buffer(capacity: 256)
        while let lineEnd = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let lineLength = lineEnd - buffer.readerIndex + 1
            guard let line = buffer.getString(at: buffer.readerIndex, length: lineLength - 2) else { break }
            let parts = line.split(separator: " ").map(String.init)
            if parts.first == "set" {
                let n = Int(parts[4]) ?? 0
                guard buffer.readableBytes >= lineLength + n + 2 else { break }
                buffer.moveReaderIndex(forwardBy: lineLength)
                let value = buffer.readBytes(length: n) ?? []
                buffer.moveReaderIndex(forwardBy: 2)
                switch server.fault {
                case .serverErrorOnSet: out.writeString("SERVER_ERROR out of memory\r\n")
                case .notStored: out.writeString("NOT_STORED\r\n")
                default:
                    server.store.withLock { $0[parts[1]] = value }
                    out.writeString("STORED\r\n")
                }
            } else {
                buffer.moveReaderIndex(forwardBy: lineLength)
                switch parts.first {
                case "get":
                    if let v = server.store.withLock({ $0[parts[1]] }) {
                        out.writeString("VALUE \(parts[1]) 0 \(v.count)\r\n")
                        out.writeBytes(v)
                        out.writeString("\r\nEND\r\n")
                    } else {
                        out.writeString("END\r\n")
                    }
                case "delete":
                    let existed = server.store.withLock { $0.removeValue(forKey: parts[1]) != nil }
                    out.writeString(existed ? "DELETED\r\n" : "NOT_FOUND\r\n")
                default:
                    out.writeString("ERROR\r\n")
                }
            }
            served += 1
            if case .closeAfter(let n) = server.fault, served >= n {
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
                context.close(promise: nil)
                return
            }
        }
        buffer.discardReadBytes()
        if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
    }
}

@Suite("roma-bench end to end (in-process server)", .serialized)
struct RunnerTests {
    func options(port: Int, _ change: (inout BenchOptions) -> Void) -> BenchOptions {
        var o = BenchOptions()
        o.port = port
        o.seed = 1
        o.drainTimeout = 2
        change(&o)
        return o
    }

    @Test func preloadThenMixedRunByCount() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let o = options(port: port) {
            $0.connections = 3; $0.requests = 2000; $0.mix = Mix(get: 50, set: 40, delete: 10)
            $0.keys = 500; $0.pipeline = 8; $0.preload = true
        }
        let r = try await BenchRunner(options: o).run()
        await server.stop()
        #expect(r.errorsTotal == 0)
        #expect(r.preload?.keys == 500)
        #expect(r.preload?.errorsTotal == 0)
        #expect(r.ops == 2000)
        #expect(r.gets + r.sets + r.deletes == 2000)
        #expect(r.hits + r.misses == r.gets)
        #expect(r.gets > 800 && r.sets > 600 && r.deletes > 100)
        #expect(r.latencyMicroseconds.count == 2000)
        #expect(r.latencyMicroseconds.p99 >= r.latencyMicroseconds.p50)
        #expect(r.latencyMicrosecondsByOp["get"]?.count == r.gets)
        #expect(r.opsPerSec > 0)
    }

    @Test func getsHitAfterPreload() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let o = options(port: port) { $0.requests = 1000; $0.mix = Mix(get: 1, set: 0); $0.keys = 200; $0.preload = true; $0.pipeline = 4 }
        let r = try await BenchRunner(options: o).run()
        await server.stop()
        #expect(r.hits == 1000)
        #expect(r.misses == 0)
    }

    @Test func sequentialWritesThenVerify() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let write = options(port: port) {
            $0.requests = 777; $0.mix = Mix(get: 0, set: 1); $0.keyOrder = .sequential; $0.keys = 1_000_000
            $0.keyPrefix = "w:"; $0.valueSize = 150; $0.pipeline = 16
        }
        let w = try await BenchRunner(options: write).run()
        #expect(w.errorsTotal == 0)
        #expect(w.sequentialKeysIssued == 777)
        #expect(server.store.withLock { $0.count } == 777)

        let verify = options(port: port) { $0.mode = .verify; $0.keys = 777; $0.keyPrefix = "w:"; $0.valueSize = 150 }
        let v = try await BenchRunner(options: verify).run()
        #expect(v.verify == VerifySummary(keys: 777, ok: 777, missing: 0, mismatched: 0, unchecked: 0))

        // One key lost, one key changed: verify reports both.
        server.store.withLock {
            $0.removeValue(forKey: "w:0000000005")
            $0["w:0000000006"] = Array("x".utf8)
        }
        let v2 = try await BenchRunner(options: verify).run()
        await server.stop()
        #expect(v2.verify == VerifySummary(keys: 777, ok: 775, missing: 1, mismatched: 1, unchecked: 0))
    }

    @Test func errorsAreCountedByKind() async throws {
        let server = FakeServer(fault: .serverErrorOnSet)
        let port = try await server.start()
        let r = try await BenchRunner(options: options(port: port) { $0.requests = 300; $0.mix = Mix(get: 1, set: 1) }).run()
        await server.stop()
        #expect(r.errors.serverError == r.sets)
        #expect(r.errors.serverError > 0)
        #expect(r.errorsTotal == r.errors.serverError)

        let server2 = FakeServer(fault: .notStored)
        let port2 = try await server2.start()
        let r2 = try await BenchRunner(options: options(port: port2) { $0.requests = 100; $0.mix = Mix(get: 0, set: 1) }).run()
        await server2.stop()
        #expect(r2.errors.notStored == 100)
    }

    @Test func connectionLossIsCounted() async throws {
        let server = FakeServer(fault: .closeAfter(50))
        let port = try await server.start()
        let r = try await BenchRunner(options: options(port: port) {
            $0.connections = 2; $0.duration = 0.5; $0.mix = Mix(get: 1, set: 0); $0.pipeline = 4
        }).run()
        await server.stop()
        #expect(r.errors.connection == 2)
        #expect(r.ops <= 100)
    }

    @Test func durationBoundedRun() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let start = ContinuousClock.now
        let r = try await BenchRunner(options: options(port: port) { $0.duration = 0.4; $0.warmup = 0.2 }).run()
        let elapsed = ContinuousClock.now - start
        await server.stop()
        #expect(r.errorsTotal == 0)
        #expect(abs(r.durationSeconds - 0.4) < 0.05)
        #expect(r.ops > 0)
        #expect(elapsed < .seconds(3))
    }

    @Test func openLoopKeepsTheRate() async throws {
        let server = FakeServer()
        let port = try await server.start()
        // 1,000 requests/s over 4 connections for 1 s: 250 intended send times per connection.
        // The window (pipeline 256) never fills, so a stall of the loop or of the server (CI runs
        // the suites side by side) only delays sends: the open loop catches up on every send due,
        // and issues none beyond the schedule. A closed loop would make tens of thousands.
        let r = try await BenchRunner(options: options(port: port) {
            $0.duration = 1; $0.rate = 1000; $0.connections = 4; $0.pipeline = 256
        }).run()
        await server.stop()
        #expect(r.errorsTotal == 0)
        #expect(r.ops >= 995 && r.ops <= 1000, "every intended send in the second, no more: \(r.ops)")
        #expect(r.rate == 1000)
        #expect(abs(r.durationSeconds - 1) < 0.05)
    }

    @Test func stopRequestEndsEarly() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let runner = BenchRunner(options: options(port: port) { $0.duration = 30 })
        let task = Task { try await runner.run() }
        try await Task.sleep(for: .milliseconds(400))
        runner.requestStop()
        let r = try await task.value
        await server.stop()
        #expect(r.stoppedEarly)
        #expect(r.durationSeconds < 5)
        #expect(r.errorsTotal == 0)
    }

    @Test func markedWindowIsReportedSeparately() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let runner = BenchRunner(options: options(port: port) { $0.duration = 2.5; $0.rate = 1000; $0.pipeline = 64 })
        let task = Task { try await runner.run() }
        let clock = ContinuousClock()
        try await Task.sleep(for: .milliseconds(300))
        let baselineOpened = clock.now
        #expect(runner.toggleBaseline())
        try await Task.sleep(for: .milliseconds(300))
        #expect(!runner.toggleBaseline())
        let baselineClosed = clock.now
        #expect(runner.toggleMark())
        try await Task.sleep(for: .milliseconds(300))
        #expect(!runner.toggleMark())
        let markClosed = clock.now
        let r = try await task.value
        await server.stop()
        let marked = try #require(r.latencyMicrosecondsMarked)
        let baseline = try #require(r.latencyMicrosecondsBaseline)
        // Each window holds the requests issued while it was open: about rate x its length as the
        // test measured it (a loaded machine oversleeps; sends due in a stall go out a little late).
        func expected(_ d: Duration) -> Double { 1000 * Double(d.components.attoseconds) / 1e18 + 1000 * Double(d.components.seconds) }
        let baselineWant = expected(baselineClosed - baselineOpened)
        let markedWant = expected(markClosed - baselineClosed)
        #expect(Double(baseline.count) > baselineWant * 0.6 && Double(baseline.count) < baselineWant * 1.4 + 20,
                "baseline \(baseline.count) for \(baselineWant)")
        #expect(Double(marked.count) > markedWant * 0.6 && Double(marked.count) < markedWant * 1.4 + 20,
                "marked \(marked.count) for \(markedWant)")
        #expect(r.latencyMicroseconds.count > marked.count + baseline.count, "two disjoint windows inside the run")
    }

    @Test func noMarkNoMarkedLatency() async throws {
        let server = FakeServer()
        let port = try await server.start()
        let r = try await BenchRunner(options: options(port: port) { $0.requests = 100 }).run()
        await server.stop()
        #expect(r.latencyMicrosecondsMarked == nil)
        #expect(r.latencyMicrosecondsBaseline == nil)
    }

    @Test func refusesRemoteTargets() async {
        var o = BenchOptions()
        o.host = "192.0.2.1"
        await #expect(throws: BenchOptionError.self) { try await BenchRunner(options: o).run() }
    }

    @Test func connectFailureIsAnError() async {
        // Nothing listens on port 1 of loopback.
        var o = BenchOptions()
        o.port = 1
        await #expect(throws: BenchError.self) { try await BenchRunner(options: o).run() }
    }
}
