import Dispatch
import Foundation
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

/// CPU scheduling of the snapshot's copy and hashing threads.
///
/// A snapshot runs on the node's own machine while the node serves clients. With `.idle` the
/// copy threads use Linux's `SCHED_IDLE` policy: they run only on CPU time nobody else wants,
/// and any runnable request thread (node or client) preempts them at once. With nice 10
/// (`.low`) they still took enough CPU on a 2-core machine to multiply the node's write p99 by
/// 10–25 while two copies ran; with `SCHED_IDLE` the same copies leave it within 2×.
///
/// On a node that keeps every core busy, idle threads would crawl; a copy thread therefore
/// leaves `SCHED_IDLE` for nice 10 when a chunk takes far longer than it should (`starved`).
/// Leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least 10; where it is
/// refused the copy simply continues idle, and `--priority low` is the operator's choice.
public enum BackgroundScheduling: String, Sendable, CaseIterable {
    /// `SCHED_IDLE` (default).
    case idle
    /// `SCHED_OTHER` at nice 10.
    case low
    /// Whatever the process had (nice 0 normally).
    case normal

    /// Linux's `SCHED_IDLE` policy number (not exported by every libc header).
    static let schedIdle: Int32 = 5

    /// The nice value of `.low`, and of a starved idle thread.
    public static let lowNice: Int32 = 10

    /// Applies this policy to the calling thread (Linux scheduling is per thread). Returns false
    /// when the kernel refused.
    @discardableResult
    public func apply() -> Bool {
        var p = sched_param()
        p.sched_priority = 0
        switch self {
        case .idle:
            FileSystem.IOPriority.idle.apply()
            return sched_setscheduler(0, Self.schedIdle, &p) == 0
        case .low:
            FileSystem.IOPriority.lowest.apply()
            let policy = sched_getscheduler(0)
            if policy != SCHED_OTHER, sched_setscheduler(0, SCHED_OTHER, &p) != 0 { return false }
            return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.lowNice) == 0
        case .normal:
            return true
        }
    }

    /// True when the calling thread currently runs under `SCHED_IDLE`.
    public static var callingThreadIsIdle: Bool { sched_getscheduler(0) == schedIdle }

    /// Watches a copy thread for CPU starvation. `check()` after each chunk reads the thread's
    /// run-queue wait from `/proc/thread-self/schedstat` (time it was runnable but not running);
    /// when an idle thread spent at least `waitFraction` of a `window` waiting for a CPU, it is
    /// moved to `.low` once.
    ///
    /// Starvation is judged by run-queue wait, not by throughput: a copy that is slow because the
    /// disk is slow is not starved, and moving it to nice 10 only takes CPU from the node (a nice
    /// 10 thread keeps the CPU for its whole slice while a request thread waits, 2–4 ms measured).
    public struct StarvationGuard: Sendable {
        public let window: Double
        public let waitFraction: Double
        private var start: (wall: Double, waited: Double)?
        public private(set) var escalated = false

        public init(window: Double = 1.0, waitFraction: Double = 0.9) {
            self.window = window
            self.waitFraction = waitFraction
        }

        /// Reads the calling thread's clock and run-queue wait and judges them.
        public mutating func check() {
            guard !escalated, let waited = BackgroundScheduling.runQueueWaitSeconds() else { return }
            observe(wall: monotonicSeconds(), waited: waited)
        }

        /// Judges one observation: `wall` is a monotonic time, `waited` the thread's cumulative
        /// run-queue wait, both in seconds.
        public mutating func observe(wall: Double, waited: Double) {
            guard !escalated else { return }
            guard let s = start else { start = (wall, waited); return }
            let span = wall - s.wall
            guard span >= window else { return }
            if (waited - s.waited) >= waitFraction * span, BackgroundScheduling.callingThreadIsIdle {
                escalated = true
                BackgroundScheduling.low.apply()
            }
            start = (wall, waited)
        }
    }

    /// The calling thread's cumulative run-queue wait (second field of
    /// `/proc/thread-self/schedstat`, nanoseconds), or nil where the kernel does not provide it.
    public static func runQueueWaitSeconds() -> Double? {
        let fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 127) }
        guard n > 0 else { return nil }
        let fields = buf[..<n].split(separator: UInt8(ascii: " "))
        guard fields.count >= 2, let ns = UInt64(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return Double(ns) / 1e9
    }
}

extension BackgroundScheduling {
    /// Runs `body(w)` for `w` in `0..<count`, each on a new thread under this policy, and waits
    /// for all of them. New threads, not pooled ones: a policy applied to a thread cannot always
    /// be undone without privileges, so it must die with its thread.
    public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchSemaphore(value: 0)
        for w in 0..<count {
            let thread = Thread {
                Thread.current.name = "snapshot-copy"   // also the OS thread name (top, ftrace)
                self.apply()
                body(w)
                done.signal()
            }
            thread.start()
        }
        for _ in 0..<count { done.wait() }
    }
}
