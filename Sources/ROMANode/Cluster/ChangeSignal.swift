#if canImport(Glibc)
import Glibc
#endif

/// A wake-up for threads that wait for a condition someone else makes true: `notifyAll()` after
/// the change (made before the call), `wait(timeout:until:)` sleeps until the condition holds
/// (or a timeout passes). The join and recover loops wait with it for the routing table's next
/// change (`RouteState.waitForChange`), so an arriving vnode is seen at once instead of at the
/// next poll.
///
/// `@unchecked Sendable`: the pthread objects live for the object's lifetime and are used only
/// through the pthread calls, which synchronise themselves.
final class ChangeSignal: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

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

    /// Wakes every waiter. Call it after the change its condition looks at.
    func notifyAll() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until `condition` holds, at most `timeout` seconds; returns whether it holds. The
    /// condition is asked with the mutex held, so a change notified after it was found false
    /// still wakes this wait.
    @discardableResult
    func wait(timeout: Double, until condition: () -> Bool) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let t = max(0, min(timeout, 3600))
        let nanos = Int(deadline.tv_nsec) + Int((t - t.rounded(.down)) * 1e9)
        deadline.tv_sec += Int(t) + nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !condition() {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { return condition() }
        }
        return true
    }
}
