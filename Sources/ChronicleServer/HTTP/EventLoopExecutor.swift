import NIOCore

/// Runs a task's jobs on one NIO event loop. A connection served with this preference (see
/// ``EventLoopBoundChildChannel``) resumes on its own loop after every await, instead of hopping to Swift
/// Concurrency's global pool and back for each read and write.
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
