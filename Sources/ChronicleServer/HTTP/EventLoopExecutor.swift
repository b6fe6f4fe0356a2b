import NIOCore
import NIOPosix
import ServiceLifecycle

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

/// Runs each job on the event loop of the thread that enqueues it, when that thread is an event loop (NIO
/// just finished the I/O that resumed the task there), and otherwise on the group's next loop. Serving
/// HTTP with this preference keeps a connection's task on its channel's loop instead of hopping to Swift
/// Concurrency's global pool and back for every read and write.
final class EventLoopAffineExecutor: TaskExecutor {
    let group: any EventLoopGroup

    init(group: any EventLoopGroup) { self.group = group }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// Runs a service on Swift Concurrency's global pool even when started under an event-loop preference:
/// for services that do long stretches of CPU work (the log writer encodes whole batches) and must not
/// hold up a loop's I/O.
struct GlobalExecutorService: Service {
    let base: any Service

    func run() async throws {
        try await withTaskExecutorPreference(globalConcurrentExecutor) { try await base.run() }
    }
}
