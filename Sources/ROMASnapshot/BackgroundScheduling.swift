import Dispatch
import ROMAStorage

#if canImport(Glibc)
import Glibc
#endif

extension BackgroundScheduling {
    /// Runs `body(w)` for `w` in `0..<count`, each on a new thread under this policy, and waits
    /// for all of them. New threads, not pooled ones: a policy applied to a thread cannot always
    /// be undone without privileges, so it must die with its thread.
    public func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchSemaphore(value: 0)
        for w in 0..<count {
            BackgroundScheduling.spawnThread(name: "snapshot-copy") {
                self.apply()
                body(w)
                done.signal()
            }
        }
        for _ in 0..<count { done.wait() }
    }
}
