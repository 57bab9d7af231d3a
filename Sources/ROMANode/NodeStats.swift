import Synchronization

/// Counters and markers shown by `stat` (spec R3.15, R7.11).
final class NodeStats: Sendable {
    let writeCount = Atomic<Int>(0)
    let readCount = Atomic<Int>(0)
    let deleteCount = Atomic<Int>(0)
    let connections = Atomic<Int>(0)
    /// `stats.gui_run_snapshot` (`set_gui_run_snapshot`).
    let guiRunSnapshot = Atomic<Bool>(false)
    /// `stats.gui_last_snapshot` (`set_gui_last_snapshot`), nil until set.
    let guiLastSnapshot = Mutex<String?>(nil)
    /// Start of the last clean-up pass (start time until one ran): `stats.last_clean_up`.
    let lastCleanUp: Atomic<UInt32>
    /// `stats.run_storage_clean_up`.
    let cleanUpRunning = Atomic<Bool>(false)

    /// Requests this node forwarded to another node (`stats.forward_count`).
    let forwardCount = Atomic<Int>(0)
    /// Replica writes received (`rset`, `rzset`, `rdelete`): `stats.redundant_count`.
    let redundantCount = Atomic<Int>(0)
    /// Replica writes waiting for a retry (`stats.replication_queue`).
    let replicationQueue = Atomic<Int>(0)
    /// Replica writes delivered by a retry (`stats.replication_retried`).
    let replicationRetried = Atomic<Int>(0)
    /// Replica writes given up (`stats.replication_dropped`): the peer left the routing table,
    /// or the queue's byte limit was reached. Each one is logged with its key.
    let replicationDropped = Atomic<Int>(0)
    /// `size_of_zredundant`: replica values longer than this go compressed (`rzset`); 0 = never.
    let sizeOfZredundant = Atomic<Int>(0)
    /// Vnode copies sent (R5.8): records and stream bytes (`stats.vnode_records_sent`, `…bytes_sent`).
    let vnodeRecordsSent = Atomic<Int>(0)
    let vnodeBytesSent = Atomic<Int>(0)
    /// File seeds received by this (joining) node: division-file bytes and the microseconds
    /// from the first file asked for to the last one in place (`stats.seed_bytes_received`,
    /// `stats.seed_receive_us`).
    let seedBytesReceived = Atomic<Int>(0)
    let seedReceiveMicros = Atomic<Int>(0)
    /// Records of vnodes not its own that seeded files brought and the purge after the seed
    /// removed (`stats.seed_records_dropped`).
    let seedRecordsDropped = Atomic<Int>(0)
    /// Forwarded requests sent again because the node they went to answered "inconsistent" (its
    /// routing table had moved on: a vnode move's `setroute` on its way) (`stats.forward_retries`).
    let forwardRetries = Atomic<Int>(0)
    /// `out` messages received (`stats.out_count`).
    let outCount = Atomic<Int>(0)

    init(now: UInt32) { lastCleanUp = Atomic(now) }

    @inline(__always) func countWrite() { writeCount.add(1, ordering: .relaxed) }
    @inline(__always) func countRead() { readCount.add(1, ordering: .relaxed) }
    @inline(__always) func countDelete() { deleteCount.add(1, ordering: .relaxed) }
}
