import HummingbirdCore
import Logging
import NIOCore

/// Serves each connection with its task's jobs on the connection's own event loop.
///
/// Hummingbird handles a connection in a child task on Swift Concurrency's global pool. Every request head
/// that arrives, every body part and every response write then crosses between the loop's thread and a
/// pool thread, and each crossing wakes a sleeping thread: on a busy gateway those wake-ups cost more CPU
/// than the request's own work. With the loop as the task's preferred executor, the connection's reads,
/// routing, the upstream exchange (whose pooled connections live on the same loop) and the writes all
/// resume on one thread, as a plain NIO handler would.
struct EventLoopBoundChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor(eventLoop: value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// An HTTP/1.1 server whose connections each run on their own event loop
    /// (see ``EventLoopBoundChildChannel``).
    static func eventLoopBoundHTTP1(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        .init { responder in
            EventLoopBoundChildChannel(base: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }
}
