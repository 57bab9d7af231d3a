#if canImport(Glibc)
import Glibc
#endif

/// A counter that threads can wait on: `bump()` raises it and wakes every waiter, `wait(after:)`
/// sleeps until it differs from a value read earlier (or a timeout passes). The join and
/// recover loops wait on the routing table's changes with it, so an arriving vnode is seen
/// at once instead of at the next poll.
///
/// `@unchecked Sendable`: `value` is read and written only with `mutex` held; the pthread
/// objects live for the object's lifetime.
final class ChangeSignal: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var value = 0

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// The current count.
    var current: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return value
    }

    /// Raises the count and wakes every waiter.
    func bump() {
        pthread_mutex_lock(mutex)
        value &+= 1
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until the count is no longer `seen`, at most `timeout` seconds. True when it changed.
    @discardableResult
    func wait(after seen: Int, timeout: Double) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let t = max(0, min(timeout, 3600))
        let nanos = Int(deadline.tv_nsec) + Int((t - t.rounded(.down)) * 1e9)
        deadline.tv_sec += Int(t) + nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while value == seen {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { break }
        }
        return value != seen
    }
}
