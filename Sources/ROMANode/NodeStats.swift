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

    init(now: UInt32) { lastCleanUp = Atomic(now) }

    @inline(__always) func countWrite() { writeCount.add(1, ordering: .relaxed) }
    @inline(__always) func countRead() { readCount.add(1, ordering: .relaxed) }
    @inline(__always) func countDelete() { deleteCount.add(1, ordering: .relaxed) }
}
