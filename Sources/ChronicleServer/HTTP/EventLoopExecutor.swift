import NIOCore

/// Runs a task's jobs on one NIO event loop. A request handled with this preference (see
/// ``withEventLoopPreference(_:_:)``) resumes on its connection's loop after every await, instead of
/// hopping to Swift Concurrency's global pool and back for each read and write.
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}

/// Runs `operation` with its jobs (and its child tasks' jobs) on `channel`'s event loop.
func withEventLoopPreference<T: Sendable>(_ channel: (any Channel)?, _ operation: @Sendable () async throws -> T)
    async throws -> T
{
    guard let channel else { return try await operation() }
    return try await withTaskExecutorPreference(EventLoopExecutor(eventLoop: channel.eventLoop), operation: operation)
}
