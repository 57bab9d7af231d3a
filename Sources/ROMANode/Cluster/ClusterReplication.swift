import NIOConcurrencyHelpers
import NIOCore
import ROMAStorage
import RomaClient
import Synchronization

/// Cluster replication (R10.2): while on (`switch_replication true <nid> [all]`), every write this
/// node executes as primary is repeated on another ROMA cluster (the replica cluster, reached
/// through `<nid>`), to the primary of the key there, through `RomaClient` (routing table from
/// `routingdump bin`, refreshed when `mklhash 0` changes, retries on another node).
///
/// Better than ROMA's in three ways:
/// - what is sent is the key's state after the write — `set` of its value with its expire time,
///   or `delete` — so a repeated or reordered delivery cannot double an `incr` (ROMA sends
///   `incr <key> <n>`) and `set_expt`, `cas`, `append` need no commands of their own;
/// - the flags are 0 (ROMA sends 1) and keys of other hashes go to the same hash there;
/// - failures are counted in `stat` (`write-behind.replication_errors`, `…_dropped`), not only logged.
/// As ROMA's, deliveries go one at a time in write order, off the request path; a write the
/// replica cluster refuses or misses after the client's retries is logged and counted, not retried
/// forever. The queue holds up to `maxQueued` writes; beyond that new ones are dropped (counted).
/// `all` also sends every live record this node is primary for (ROMA streams them with spushv),
/// as `add`: a key the replica cluster holds already is left as it is there.
final class ClusterReplication: Sendable {
    static let maxQueued = 100_000

    struct Event: Sendable {
        let hash: String
        let key: String
        /// nil: delete.
        let value: [UInt8]?
        let exptime: Int
        /// The copy of existing data (`all`): `add`, so what the replica cluster holds already
        /// stays (ROMA's stream keeps a replica record with a newer clock).
        var onlyIfAbsent = false
    }

    private struct State {
        var seed: String?
        var clients: [String: RomaClient] = [:]
        var continuation: AsyncStream<Event>.Continuation?
        var existingData = false
        var generation = 0
    }

    private let state = NIOLockedValueBox(State())
    /// On: writes are queued.
    let isOn = Atomic<Bool>(false)
    let delivered = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    private let group: any EventLoopGroup
    private let log: @Sendable (String) -> Void

    init(group: any EventLoopGroup, log: @escaping @Sendable (String) -> Void) {
        self.group = group
        self.log = log
    }

    /// Starts replicating to the cluster of node `seed` (`host_port`); a running replication
    /// to another cluster stops first. The future completes once the replica cluster's routing
    /// table for hash `roma` was fetched, or failed to be (logged; writes are queued meanwhile
    /// and each later delivery tries again), so `stat` shows it at once, as ROMA's.
    func start(seed: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let ready = loop.makePromise(of: Void.self)
        stop()
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingOldest(Self.maxQueued))
        // The clients of an earlier replica cluster are closed, never reused for this one.
        let (generation, old) = state.withLockedValue { s -> (Int, [RomaClient]) in
            let old = Array(s.clients.values)
            s.clients = [:]
            s.seed = seed
            s.continuation = continuation
            s.generation += 1
            return (s.generation, old)
        }
        if !old.isEmpty { Task { for c in old { await c.close() } } }
        isOn.store(true, ordering: .releasing)
        Task { [self] in
            _ = await client(for: "roma", seed: seed)
            ready.succeed(())
            for await e in stream {
                // Writes queued for an earlier replica cluster are not sent to a later one.
                guard state.withLockedValue({ $0.generation }) == generation else { continue }
                await deliver(e, seed: seed)
            }
            await closeClients(generation)
        }
        log("cluster replication to the cluster of \(seed) activated")
        return ready.futureResult
    }

    func stop() {
        isOn.store(false, ordering: .releasing)
        let c = state.withLockedValue { s -> AsyncStream<Event>.Continuation? in
            defer { s.continuation = nil; s.seed = nil; s.existingData = false }
            return s.continuation
        }
        if let c {
            c.finish()
            log("cluster replication deactivated")
        }
    }

    /// Queues the state of a key after a primary write.
    func enqueue(_ e: Event) {
        guard isOn.load(ordering: .relaxed),
              let c = state.withLockedValue({ $0.continuation }) else { return }
        if case .dropped = c.yield(e) { dropped.add(1, ordering: .relaxed) }
    }

    var runExistingData: Bool {
        get { state.withLockedValue { $0.existingData } }
        set { state.withLockedValue { $0.existingData = newValue } }
    }

    private func client(for hash: String, seed: String) async -> RomaClient? {
        // Keyed by the seed too: a client made late for an earlier replica cluster is never
        // found for a later one.
        let key = seed + "\u{0}" + hash
        if let c = state.withLockedValue({ $0.clients[key] }) { return c }
        var conf = RomaClient.Configuration()
        conf.eventLoopGroup = group
        do {
            let c = try await RomaClient(seeds: [seed], hashName: hash, timeout: .seconds(5), configuration: conf)
            state.withLockedValue { $0.clients[key] = c }
            return c
        } catch {
            log("cluster replication: cannot reach the replica cluster through \(seed): \(error)")
            return nil
        }
    }

    private func deliver(_ e: Event, seed: String) async {
        guard let c = await client(for: e.hash, seed: seed) else {
            errors.add(1, ordering: .relaxed)
            return
        }
        do {
            if let v = e.value {
                _ = try await (e.onlyIfAbsent ? c.add(e.key, v, exptime: e.exptime) : c.set(e.key, v, exptime: e.exptime))
            } else {
                _ = try await c.delete(e.key)
            }
            delivered.add(1, ordering: .relaxed)
        } catch {
            errors.add(1, ordering: .relaxed)
            log("replication error: key=\(e.key) \(e.value == nil ? "delete" : "set"): \(error)")
        }
    }

    private func closeClients(_ generation: Int) async {
        let cs = state.withLockedValue { s -> [RomaClient] in
            guard s.generation == generation else { return [] }
            defer { s.clients = [:] }
            return Array(s.clients.values)
        }
        for c in cs { await c.close() }
    }

    /// `write-behind.replica_mklhash` and `…_nodelist`: what the first client knows.
    var replicaView: (mklhash: String, nodes: [String]) {
        guard isOn.load(ordering: .relaxed) else { return ("", []) }
        let c = state.withLockedValue { s in s.seed.flatMap { s.clients[$0 + "\u{0}roma"] } ?? s.clients.values.first }
        return (c?.fingerprint ?? "", c?.routingTable?.nodes ?? [])
    }

    /// A record as the replica cluster is to hold it: its value and expire (memcached's: 0 for
    /// never, else the absolute time), or nil when it is to be deleted.
    static func event(hash: String, key: [UInt8], record: (RecordHeader, [UInt8])?, now: UInt32) -> Event {
        let k = String(decoding: key, as: UTF8.self)
        guard let (h, v) = record, !h.isTombstone, h.isLive(now: now) else {
            return Event(hash: hash, key: k, value: nil, exptime: 0)
        }
        return Event(hash: hash, key: k, value: v, exptime: h.expire == RecordHeader.noExpire ? 0 : Int(h.expire))
    }
}
