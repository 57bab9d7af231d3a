import Logging
import NIOConcurrencyHelpers
import NIOCore
import ROMAProtocol

/// Replica writes (R5.2): after a primary write, `rset`/`rzset`/`rdelete` go to every secondary
/// **in parallel**, and the client hears its reply once all have answered or failed. A secondary
/// that did not answer (connect error, timeout, closed, or a reply starting with `ERROR`) gets
/// the message later through its retry queue:
///
/// - one FIFO per peer, retried in order (so a later write of a key never overtakes an earlier
///   one) every `replicationRetryInterval` seconds, doubling up to 10×, for as long as the peer
///   is in the routing table;
/// - bounded by `replicationQueueBytes` per peer: beyond it the oldest message is dropped;
/// - dropped messages (the bound, or the peer left the routing table) are counted in
///   `stats.replication_dropped` and logged with their keys — never silently.
///
/// Replays are harmless: the secondary applies R2.8, so a message whose clock it already has is
/// answered `NOT_STORED`/`NOT_FOUND` and changes nothing.
final class Replicator: Sendable {
    private let peers: PeerClient
    private let stats: NodeStats
    private let logger: Logger
    private let retryInterval: TimeAmount
    private let maxBytes: Int
    /// Whether a node id is still in the routing table (else its queue is dropped).
    private let isMember: @Sendable (String) -> Bool
    /// The queues; `stats.replicationQueue`, their messages together, changes under this lock
    /// too, so that while it is 0 a write goes out without taking the lock.
    private let queues = NIOLockedValueBox<[String: PeerQueue]>([:])

    struct Message: Sendable {
        /// The whole request (`rset …\r\n<value>\r\n` or `rdelete …\r\n`).
        let bytes: ByteBuffer

        /// `key\ehash` (the request's second token), for logs; made only when one is written.
        var key: String {
            let view = bytes.readableBytesView
            guard let sp = view.firstIndex(of: UInt8(ascii: " ")) else { return "?" }
            let rest = view[(sp + 1)...]
            let end = rest.firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") } ?? rest.endIndex
            let token = rest[..<end]
            guard let esc = token.firstIndex(of: 0x1B) else { return String(decoding: token, as: UTF8.self) }
            return String(decoding: token[..<esc], as: UTF8.self) + "\\e" + String(decoding: token[(esc + 1)...], as: UTF8.self)
        }
    }

    struct PeerQueue {
        var items = CircularBuffer<Message>()
        var bytes = 0
        var draining = false
    }

    init(peers: PeerClient, stats: NodeStats, logger: Logger, retryInterval: Double, maxBytes: Int,
         isMember: @escaping @Sendable (String) -> Bool) {
        self.peers = peers
        self.stats = stats
        self.logger = logger
        self.retryInterval = .nanoseconds(Int64(max(retryInterval, 0.01) * 1e9))
        self.maxBytes = maxBytes
        self.isMember = isMember
    }

    /// Sends `message` to every node of `targets` at once; completes (never fails) when each has
    /// answered or its message has been queued for retry.
    func replicate(_ message: Message, to targets: ArraySlice<String>, on loop: any EventLoop) -> EventLoopFuture<Void> {
        if targets.count == 1 {
            return send(message, to: targets.first!, on: loop)
        }
        let all = targets.map { send(message, to: $0, on: loop) }
        return EventLoopFuture.andAllComplete(all, on: loop)
    }

    private func send(_ message: Message, to nid: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        // A peer with a backlog gets new messages behind it: order per peer is kept.
        if queued(nid) {
            enqueue(message, for: nid)
            return loop.makeSucceededVoidFuture()
        }
        return peers.request(nid, message.bytes, kind: .line, on: loop, pipelined: true).map { reply in
            if Replicator.needsRetry(reply) {
                self.logger.warning("replica write of \(message.key) to \(nid) answered '\(reply.lineString ?? "?")'; queued for retry")
                self.enqueue(message, for: nid)
            }
        }.recover { error in
            self.logger.warning("replica write of \(message.key) to \(nid) failed: \(error); queued for retry")
            self.enqueue(message, for: nid)
        }
    }

    /// R5.2: only a reply starting with `ERROR` is retried (`NOT_STORED` means the replica already
    /// has something newer).
    static func needsRetry(_ reply: PeerReply) -> Bool {
        guard case .line(let l) = reply else { return true }
        return l.readableBytesView.starts(with: "ERROR".utf8)
    }

    /// Whether no replica write waits in `nid`'s retry queue.
    func isQueueEmpty(for nid: String) -> Bool { !queued(nid) }

    private func queued(_ nid: String) -> Bool {
        guard stats.replicationQueue.load(ordering: .acquiring) > 0 else { return false }
        return queues.withLockedValue { ($0[nid]?.items.isEmpty == false) }
    }

    private func enqueue(_ message: Message, for nid: String) {
        var dropped: [Message] = []
        let start = queues.withLockedValue { q -> Bool in
            var pq = q[nid] ?? PeerQueue()
            pq.items.append(message)
            pq.bytes += message.bytes.readableBytes
            while pq.bytes > maxBytes, pq.items.count > 1 {
                let m = pq.items.removeFirst()
                pq.bytes -= m.bytes.readableBytes
                dropped.append(m)
            }
            let start = !pq.draining
            pq.draining = true
            q[nid] = pq
            stats.replicationQueue.add(1 - dropped.count, ordering: .releasing)
            return start
        }
        if !dropped.isEmpty {
            stats.replicationDropped.add(dropped.count, ordering: .relaxed)
            for m in dropped {
                logger.error("replication queue for \(nid) is over \(maxBytes) bytes: dropped the replica write of \(m.key) (the replica may miss it until a recover)")
            }
        }
        if start { drain(nid, delay: retryInterval, attempt: 0) }
    }

    /// Retries the head of `nid`'s queue until it is empty.
    private func drain(_ nid: String, delay: TimeAmount, attempt: Int) {
        let loop = peers.group.next()
        loop.scheduleTask(in: delay) { [self] in
            let head: Message? = queues.withLockedValue { q in
                guard let m = q[nid]?.items.first else {
                    q[nid]?.draining = false
                    return nil
                }
                return m
            }
            guard let head else { return }
            guard isMember(nid) else {
                let n = queues.withLockedValue { q -> Int in
                    let n = q[nid]?.items.count ?? 0
                    q[nid] = nil
                    stats.replicationQueue.subtract(n, ordering: .releasing)
                    return n
                }
                stats.replicationDropped.add(n, ordering: .relaxed)
                logger.error("\(nid) left the routing table: dropped \(n) replica writes queued for it")
                return
            }
            peers.request(nid, head.bytes, kind: .line, on: loop).whenComplete { [self] result in
                var ok = false
                if case .success(let r) = result, !Replicator.needsRetry(r) { ok = true }
                if ok {
                    let more = queues.withLockedValue { q -> Bool in
                        guard var pq = q[nid], !pq.items.isEmpty else { return false }
                        let m = pq.items.removeFirst()
                        pq.bytes -= m.bytes.readableBytes
                        pq.draining = !pq.items.isEmpty
                        q[nid] = pq
                        stats.replicationQueue.subtract(1, ordering: .releasing)
                        return pq.draining
                    }
                    stats.replicationRetried.add(1, ordering: .relaxed)
                    if more { drain(nid, delay: .zero, attempt: 0) } else { logger.info("replica writes queued for \(nid) delivered") }
                } else {
                    let next = min(attempt + 1, 4)
                    drain(nid, delay: retryInterval * Int64(1 << next), attempt: next)
                }
            }
        }
    }
}

extension TimeAmount {
    static func * (a: TimeAmount, b: Int64) -> TimeAmount { .nanoseconds(a.nanoseconds * b) }
}
