@testable import ChronicleClient
import Testing

@Suite("Event queue state machine")
struct EventQueueStateMachineTests {
    func machine(capacity: Int = 100, batch: Int = 3) -> EventQueueStateMachine<Int> {
        EventQueueStateMachine(configuration: .init(capacity: capacity, maxBatchSize: batch,
                                                    initialBackoff: .milliseconds(250), maxBackoff: .seconds(2)))
    }

    func sent(_ action: EventQueueStateMachine<Int>.Action) -> [Int]? {
        if case .send(let batch) = action { return batch }
        return nil
    }

    /// The first event goes at once; events recorded meanwhile wait and go next as one batch, in order.
    @Test func batchesInOrderOneInFlight() {
        var queue = machine()
        #expect(sent(queue.enqueue(1).action) == [1])
        for event in 2...6 { #expect(sent(queue.enqueue(event).action) == nil) }
        #expect(sent(queue.sendFinished(.delivered)) == [2, 3, 4])
        #expect(sent(queue.sendFinished(.delivered)) == [5, 6])
        #expect(sent(queue.sendFinished(.delivered)) == nil)
        #expect(queue.isDrained)
        #expect(queue.statistics.delivered == 6)
    }

    /// A failed batch stays at the head and is retried after a backoff doubling up to the maximum; success
    /// resets the backoff.
    @Test func retriesWithDoublingBackoff() {
        var queue = machine()
        _ = queue.enqueue(1)
        var waits: [Duration] = []
        for _ in 0..<5 {
            guard case .retry(let wait) = queue.sendFinished(.retryable("down")) else {
                Issue.record("expected a retry")
                return
            }
            waits.append(wait)
            #expect(sent(queue.retryDue()) == [1])
        }
        #expect(waits == [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(2)])
        #expect(queue.statistics.failedAttempts == 5)
        _ = queue.enqueue(2)
        #expect(sent(queue.sendFinished(.delivered)) == [2])
        guard case .retry(let wait) = queue.sendFinished(.retryable("down")) else {
            Issue.record("expected a retry")
            return
        }
        #expect(wait == .milliseconds(250))
    }

    /// Nothing is sent while a retry waits; events recorded meanwhile join the retried batch.
    @Test func eventsWaitForTheRetry() {
        var queue = machine()
        _ = queue.enqueue(1)
        _ = queue.sendFinished(.retryable("down"))
        #expect(sent(queue.enqueue(2).action) == nil)
        #expect(sent(queue.retryDue()) == [1, 2])
    }

    /// A full buffer drops the oldest event that is not in flight, and counts it.
    @Test func fullBufferDropsOldestNotInFlight() {
        var queue = machine(capacity: 4, batch: 1)
        #expect(sent(queue.enqueue(1).action) == [1])
        for event in 2...4 { #expect(!queue.enqueue(event).droppedOne) }
        #expect(queue.enqueue(5).droppedOne)
        #expect(queue.enqueue(6).droppedOne)
        #expect(queue.queue == [1, 4, 5, 6])
        #expect(queue.statistics.dropped == 2)
        #expect(queue.statistics.pending == 4)
    }

    /// A refused batch is counted and not retried; the next one goes.
    @Test func rejectedBatchIsNotRetried() {
        var queue = machine(batch: 1)
        _ = queue.enqueue(1)
        _ = queue.enqueue(2)
        #expect(sent(queue.sendFinished(.rejected("malformed"))) == [2])
        #expect(queue.statistics.rejected == 1)
    }

    /// After stop nothing more is sent or retried, and later events are dropped.
    @Test func stopEndsDelivery() {
        var queue = machine()
        _ = queue.enqueue(1)
        _ = queue.enqueue(2)
        #expect(queue.stop() == 2)
        guard case .none = queue.sendFinished(.retryable("down")) else {
            Issue.record("no retry after stop")
            return
        }
        #expect(queue.enqueue(3).droppedOne)
        #expect(queue.statistics.dropped == 1)
    }
}
