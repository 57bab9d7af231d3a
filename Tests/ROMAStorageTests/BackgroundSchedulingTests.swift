#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Testing
import ROMAStorage

@Suite struct BackgroundThreadTests {
    /// The OS name of the calling thread (`/proc/thread-self/comm`).
    static func threadName() -> String {
        let fd = open("/proc/thread-self/comm", O_RDONLY)
        guard fd >= 0 else { return "?" }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 31) }
        return String(decoding: buf[..<max(0, n)], as: UTF8.self).trimmingSuffixNewline()
    }

    @Test func spawnedThreadsRunTheirBodyUnderTheirName() {
        let done = DispatchSemaphore(value: 0)
        let seen = NameBox()
        BackgroundScheduling.spawnThread(name: "test-worker") {
            seen.set(BackgroundThreadTests.threadName())
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(seen.get() == "test-worker")
        #expect(BackgroundThreadTests.threadName() != "test-worker", "the caller keeps its name")
    }

    /// `pace()` yields and checks; the thread leaves SCHED_IDLE exactly when the guard says it
    /// was starved (on a busy test machine it may be; on an idle one it is not).
    @Test func pacingKeepsThePolicyInStepWithTheVerdict() {
        let done = DispatchSemaphore(value: 0)
        let policy = NameBox()
        BackgroundScheduling.spawnThread(name: "test-pacer") {
            BackgroundScheduling.idle.apply()
            var pacer = BackgroundScheduling.StarvationGuard(window: 0.01, waitFraction: 0.9)
            for _ in 0..<200 { pacer.pace() }
            policy.set("\(sched_getscheduler(0)) \(pacer.escalated)")
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(["5 false", "0 true"].contains(policy.get()), "\(policy.get())")
    }
}

/// A string written by one thread and read by another. `@unchecked Sendable`: guarded by `lock`.
final class NameBox: @unchecked Sendable {
    private let lock = PthreadMutex()
    private var value = ""
    func set(_ v: String) { lock.withLock { value = v } }
    func get() -> String { lock.withLock { value } }
}

extension String {
    func trimmingSuffixNewline() -> String { hasSuffix("\n") ? String(dropLast()) : self }
}
