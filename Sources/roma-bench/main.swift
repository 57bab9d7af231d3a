import ArgumentParser
import Dispatch
import ROMABench

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension KeyOrder: ExpressibleByArgument {}

/// One line to standard error (unbuffered, safe from any thread).
func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { break }
        offset += n
    }
}

/// `roma-bench`: load generator for ROMA (and memcached) speaking the memcached text protocol.
@main
struct RomaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roma-bench",
        abstract: "Load generator for the memcached text protocol (ROMA, memcached): throughput, latency percentiles, errors.",
        discussion: """
        Closed loop by default: every connection keeps --pipeline requests in flight. With --rate the load is \
        open loop (requests at fixed intended times, latency measured from the intended time, so a stalled \
        server is not hidden by coordinated omission). Bounded: --duration (default 10 s) and/or --requests, \
        never more than 3600 s. Only loopback targets unless --allow-remote.

        Keys are <key-prefix><10-digit index>; a value starts with its key's digits, so --verify can check \
        that every key 0..<keys holds exactly what roma-bench wrote.

        Signals: SIGINT/SIGTERM stop the load early and report what was measured (a second one \
        exits at once); SIGUSR1 opens and closes a marked window whose requests are also reported \
        separately (latency_us_marked), e.g. the time a snapshot ran; SIGUSR2 does the same for a \
        baseline window (latency_us_baseline), e.g. the time just before each snapshot.

        --cluster (or --seeds h:p,h:p) sends the same load through the RomaClient library instead: it \
        fetches the routing table from the seeds and sends each key to its node (docs/client.md).

        Exit status: 0 ok, 1 setup failure (connect, resolve, refused target), 2 request or connection \
        errors occurred, 3 --verify found missing or different values.
        """
    )

    @Option(help: "Server address (loopback only unless --allow-remote).")
    var host = "127.0.0.1"

    @Option(name: [.customShort("p"), .long], help: "Server port.")
    var port = 12000

    @Option(name: [.customShort("c"), .long], help: "Connections.")
    var connections = 4

    @Option(name: [.customShort("d"), .long], help: "Measured seconds (after warmup); default 10 unless --requests is given.")
    var duration: Double?

    @Option(name: [.customShort("n"), .long], help: "Measured requests over all connections (stops at --duration too if given).")
    var requests: Int?

    @Option(help: "Request mix get:set[:delete] as weights, e.g. 90:10, 0:1, 80:10:10.")
    var mix = "90:10"

    @Option(help: "Key space: keys 0..<K.")
    var keys = 100_000

    @Option(name: .customLong("value-size"), help: "Bytes per value for sets.")
    var valueSize = 100

    @Option(help: "Requests in flight per connection (closed loop: kept full; open loop: upper bound).")
    var pipeline = 1

    @Option(help: "Open loop: total requests per second over all connections.")
    var rate: Double?

    @Option(help: "Seconds of load before measuring.")
    var warmup: Double = 0

    @Option(help: "Event-loop threads of roma-bench.")
    var threads = 1

    @Flag(help: "Set every key 0..<keys once before the run, so gets hit.")
    var preload = false

    @Flag(name: .customLong("preload-only"), help: "Only set every key 0..<keys once, then report.")
    var preloadOnly = false

    @Flag(help: "Read every key 0..<keys and check it holds the value roma-bench writes for it.")
    var verify = false

    @Option(name: .customLong("key-prefix"), help: "Key prefix (printable ASCII, no spaces).")
    var keyPrefix = "key:"

    @Option(name: .customLong("key-order"), help: "random, or sequential (0, 1, 2, … shared by all connections).")
    var keyOrder = KeyOrder.random

    @Option(help: "Random seed (default: time-based).")
    var seed: UInt64?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(name: .customLong("allow-remote"), help: "Allow a target that is not a loopback address.")
    var allowRemote = false

    @Flag(help: "Drive a ROMA cluster through RomaClient (routing table from the seeds, requests sent to each key's node, per-node pools, failover) instead of raw connections to --host/--port. Closed loop: --connections × --pipeline concurrent requests, multiplexed over --node-connections pipelined connections per node.")
    var cluster = false

    @Option(name: .customLong("node-connections"), help: ArgumentHelp("--cluster: RomaClient's connections per node and client event loop (pipelined; default 1, the library's default).", valueName: "n"))
    var nodeConnections: Int = 1

    @Option(help: ArgumentHelp("Seed nodes for --cluster (implies it), comma-separated; default --host:--port.", valueName: "host:port,host:port"))
    var seeds: String?

    @Option(name: .customLong("log-slow-us"), help: ArgumentHelp("Print `slow <send time, CLOCK_MONOTONIC ns> <latency µs>` on stderr for every measured request slower than this, to line them up with a kernel trace (docs/performance.md).", valueName: "µs"))
    var logSlowMicroseconds: Int?

    func makeOptions() throws -> BenchOptions {
        var o = BenchOptions()
        o.host = host
        o.port = port
        o.connections = connections
        o.duration = duration
        o.requests = requests
        do { o.mix = try Mix(parsing: mix) } catch { throw ValidationError(error.description) }
        o.keys = keys
        o.valueSize = valueSize
        o.pipeline = pipeline
        o.rate = rate
        o.warmup = warmup
        o.threads = threads
        o.preload = preload
        o.keyPrefix = keyPrefix
        o.keyOrder = keyOrder
        o.seed = seed
        o.allowRemote = allowRemote
        o.logSlowMicroseconds = logSlowMicroseconds
        o.cluster = cluster || seeds != nil
        o.nodeConnections = nodeConnections
        o.seeds = seeds.map { $0.split(separator: ",").map { String($0) } } ?? []
        if seeds != nil && o.seeds.isEmpty { throw ValidationError("--seeds needs at least one host:port") }
        if preloadOnly && verify { throw ValidationError("--preload-only and --verify exclude each other") }
        o.mode = preloadOnly ? .preloadOnly : (verify ? .verify : .run)
        do { try o.validate() } catch { throw ValidationError(error.description) }
        return o
    }

    func validate() throws {
        _ = try makeOptions()
    }

    func run() async throws {
        let options = try makeOptions()
        let runner = BenchRunner(options: options)

        // SIGINT/SIGTERM: stop issuing, wait for outstanding replies, report. A second one exits.
        // SIGUSR1: open/close the marked window (latency_us_marked), e.g. around a snapshot.
        // SIGUSR2: open/close the baseline window (latency_us_baseline), e.g. just before it.
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            if sig == SIGUSR1 {
                source.setEventHandler {
                    printError("roma-bench: mark \(runner.toggleMark() ? "on" : "off")")
                }
            } else if sig == SIGUSR2 {
                source.setEventHandler {
                    printError("roma-bench: baseline \(runner.toggleBaseline() ? "on" : "off")")
                }
            } else {
                source.setEventHandler {
                    if runner.requestStop() > 1 { _exit(130) }
                }
            }
            source.resume()
            sources.append(source)
        }

        let report: BenchReport
        do {
            report = try await runner.run(progress: { message in
                printError("roma-bench: \(message)")
            })
        } catch {
            printError("roma-bench: \(error)")
            throw ExitCode(1)
        }
        for source in sources { source.cancel() }
        print(json ? report.json() : report.text())
        if let v = report.verify, v.missing > 0 || v.mismatched > 0 || v.unchecked > 0 {
            throw ExitCode(3)
        }
        if report.errorsTotal > 0 { throw ExitCode(2) }
    }
}
