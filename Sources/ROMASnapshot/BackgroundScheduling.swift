import Dispatch
import Foundation

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
            return sched_setscheduler(0, Self.schedIdle, &p) == 0
        case .low:
            let policy = sched_getscheduler(0)
            if policy != SCHED_OTHER, sched_setscheduler(0, SCHED_OTHER, &p) != 0 { return false }
            return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.lowNice) == 0
        case .normal:
            return true
        }
    }

    /// True when the calling thread currently runs under `SCHED_IDLE`.
    public static var callingThreadIsIdle: Bool { sched_getscheduler(0) == schedIdle }

    /// Watches a copy thread's progress: `chunkDone(seconds:bytes:)` after each chunk; when an
    /// idle thread has been starved (a rate below `minimumRate` over at least `window` seconds)
    /// it is moved to `.low` once.
    public struct StarvationGuard: Sendable {
        public let minimumRate: Double
        public let window: Double
        private var seconds = 0.0
        private var bytes = 0
        public private(set) var escalated = false

        public init(minimumRate: Double = 20_000_000, window: Double = 0.25) {
            self.minimumRate = minimumRate
            self.window = window
        }

        public mutating func chunkDone(seconds s: Double, bytes n: Int) {
            guard !escalated else { return }
            seconds += s
            bytes += n
            guard seconds >= window else { return }
            if Double(bytes) / seconds < minimumRate, BackgroundScheduling.callingThreadIsIdle {
                escalated = true
                BackgroundScheduling.low.apply()
            }
            seconds = 0
            bytes = 0
        }
    }
}

extension BackgroundScheduling {
    /// Runs `body(w)` for `w` in `0..<count`, each on a new thread under this policy, and waits
    /// for all of them. New threads, not pooled ones: a policy applied to a thread cannot always
    /// be undone without privileges, so it must die with its thread.
    public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchSemaphore(value: 0)
        for w in 0..<count {
            Thread {
                self.apply()
                body(w)
                done.signal()
            }.start()
        }
        for _ in 0..<count { done.wait() }
    }
}
