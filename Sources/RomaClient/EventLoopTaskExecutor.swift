import NIOCore

/// A Swift concurrency task executor that runs jobs on one NIO event loop.
///
/// Tasks started with this executor as their preference (`Task(executorPreference:)`,
/// `group.addTask(executorPreference:)`) run on the loop's thread, and so do their
/// continuations: a request made from such a task is written on the loop without a thread hop,
/// and its reply resumes the task on the same thread. `RomaClient` prefers connections on the
/// calling task's loop, so a loop-bound task never crosses threads per request (two cross-thread
/// wake-ups fewer per request than from the default global executor).
public final class EventLoopTaskExecutor: TaskExecutor {
    public let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
