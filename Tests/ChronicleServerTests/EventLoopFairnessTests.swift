@testable import ChronicleCore
@testable import ChronicleServer
import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Calls run on their connection's event loop, so a call doing a lot of work must not keep the loop from
/// the other connections it serves.
@Suite("Event loop fairness")
struct EventLoopFairnessTests {
    /// Runs jobs on a queue of its own and counts how often a task hands its thread back to it.
    final class CountingExecutor: TaskExecutor {
        private let queue = DispatchQueue(label: "counting-executor")
        private let counter = NIOLockedValueBox(0)

        var enqueued: Int { counter.withLockedValue { $0 } }

        func enqueue(_ job: consuming ExecutorJob) {
            counter.withLockedValue { $0 += 1 }
            let job = UnownedJob(job)
            let executor = asUnownedTaskExecutor()
            queue.async { job.runSynchronously(on: executor) }
        }
    }

    /// A response body that takes every write at once, like a fast client: the relay never waits on it.
    struct InstantWriter: ResponseBodyWriter {
        let written: NIOLockedValueBox<Int>
        mutating func write(_ buffer: ByteBuffer) async throws { written.withLockedValue { $0 += buffer.readableBytes } }
        mutating func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
            for buffer in buffers { try await write(buffer) }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    /// A stream whose events are all at hand (one large upstream read) never suspends on its own, so
    /// without yielding, its relay would keep the loop until the last event. The relay hands its executor
    /// back every ``ServerSentEvents/eventsBetweenYields`` events, so the loop's other connections get
    /// their turns in between.
    @Test func relayOfBufferedEventsGivesItsExecutorBack() async throws {
        let eventCount = 1_600
        let chunks: [ChatStreamEvent] = (0..<eventCount).map { index in
            .chunk(ChatChunk(id: "c", model: "m", choices: [ChunkChoice(delta: ChatMessage(role: "assistant", content: .text("\(index) ")))]))
        }
        let call = GatewayCall(finishedBy: .caller)
        let stream = ChatStream(
            requestInfo: RequestInfo(id: call.id, provider: "p", model: "m", numRetries: 0, wasRateLimited: false),
            upstream: ChatEventStream(events: chunks), call: call)
        let executor = CountingExecutor()
        let written = NIOLockedValueBox(0)
        var logger = Logger(label: "fairness")
        logger.logLevel = .critical
        try await withTaskExecutorPreference(executor) { [logger] in
            var writer = InstantWriter(written: written)
            try await ServerSentEvents.relay(stream, forwardUsageOnlyChunks: true, to: &writer, logger: logger)
        }
        #expect(written.withLockedValue { $0 } > 0)
        #expect(call.isFinished)
        // Each yield is one more job on the executor; the few others are the relay's start and end.
        #expect(executor.enqueued >= eventCount / ServerSentEvents.eventsBetweenYields,
                "the relay gave its executor back \(executor.enqueued) times for \(eventCount) events")
    }
}
