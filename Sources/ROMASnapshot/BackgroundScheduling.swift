import Dispatch
import Foundation
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
