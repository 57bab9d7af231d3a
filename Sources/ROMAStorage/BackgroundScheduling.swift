import CTokyoCabinet

#if canImport(Glibc)
import Glibc
#endif

/// CPU (and disk) scheduling of background threads: snapshot copies, and romad's own background
/// work (flush, cache cleaning, clean-up).
///
/// Background work runs on the node's own machine while the node serves clients. With `.idle` a
/// thread uses Linux's `SCHED_IDLE` policy: it runs only on CPU time nobody else wants, and a
/// waking request thread (node or client) preempts it at once. With nice 10 (`.low`) copies still
/// took enough CPU on a 2-core machine to multiply the node's write p99 by 10–25, and the kernel's
/// scheduler (EEVDF) let a nice-10 thread finish its slice (2–4 ms) while an event loop waited.
///
/// On a node that keeps every core busy, idle threads would crawl; a background loop therefore
/// paces itself with a `StarvationGuard`, which moves a starved thread to nice 10. Leaving
/// `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` of at least 10; where it is refused the
/// thread simply continues idle (and `cpdb --priority low` is the operator's choice).
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

    /// Applies this policy to the calling thread (Linux scheduling is per thread); `.idle` and
    /// `.low` also set the lowest best-effort disk I/O priority. Returns false when the kernel
    /// refused the CPU policy.
    ///
    /// Why best effort, not the idle I/O class, for `.idle`: a `SCHED_IDLE` thread's I/O is in the
    /// idle class by default, and a thread that reads the node's files (a copy, a cache merge)
    /// locks each page-cache page while reading it from disk. An event loop of the node that
    /// faults on such a page waits for that read, and an idle-class read waits for every other
    /// I/O first (the likely cause of two 230 ms stalls of the node's writers in one `make bench`).
    /// Only writes of the snapshot's own files go in the idle class (`SnapshotWriter`).
    @discardableResult
    public func apply() -> Bool {
        var p = sched_param()
        p.sched_priority = 0
        switch self {
        case .idle:
            FileSystem.IOPriority.lowest.apply()
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

    /// Paces a background loop and watches it for CPU starvation. `check()` reads the thread's
    /// run-queue wait from `/proc/thread-self/schedstat` (time it was runnable but not running);
    /// when an idle thread spent at least `waitFraction` of a `window` waiting for a CPU, it is
    /// moved to `.low` once. `pace()`, between the short steps of a loop, also yields
    /// the CPU (see `yieldCPU`).
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

        /// Yields the CPU to any runnable thread, then `check()`s.
        public mutating func pace() {
            BackgroundScheduling.yieldCPU()
            check()
        }

        /// Reads the calling thread's clock and run-queue wait and judges them.
        /// Cheap between windows: only the clock (vDSO) is read until a window is complete, then
        /// `/proc/thread-self/schedstat` (three system calls) once.
        public mutating func check() {
            guard !escalated else { return }
            let now = monotonicSeconds()
            if let s = start, now - s.wall < window { return }
            guard let waited = BackgroundScheduling.runQueueWaitSeconds() else { return }
            observe(wall: now, waited: waited)
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

    /// Starts `body` on a new, detached POSIX thread named `name`. (Not Foundation's `Thread`:
    /// cpdb avoids Foundation, whose loading is most of the CPU a cpdb process spends before
    /// `main` can lower its priority.)
    public static func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Start: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let s = Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue() as! Start
            _ = s.name.withCString { roma_set_thread_name($0) }
            s.body()
            return nil
        }, start)
        guard rc == 0 else {
            Unmanaged<AnyObject>.fromOpaque(start).release()
            fatalError("pthread_create failed: \(rc)")
        }
        pthread_detach(thread)
    }

    /// Gives the CPU to any other runnable thread (the `sched_yield` system call, never romad's
    /// no-op replacement of libc's, see Sources/CTokyoCabinetNoYield). A `SCHED_IDLE` thread
    /// yields to a thread that wakes up, but not to one that is already runnable: the scheduler
    /// (EEVDF) may pick the idle thread and let it run until the next tick (4 ms at HZ=250) while
    /// a request thread waits. Background loops call this between short steps, so that such a
    /// wait lasts one step.
    public static func yieldCPU() {
        _ = roma_yield_cpu()
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

/// CLOCK_MONOTONIC in seconds.
@inline(__always) public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
