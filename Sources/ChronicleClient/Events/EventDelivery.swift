import Logging
import NIOConcurrencyHelpers

/// Sends events in the background, driving an ``EventQueueStateMachine``: recording an event only takes a
/// lock and appends, and nothing a delivery does (failing, waiting to retry) reaches the caller.
final class EventDelivery: Sendable {
    private struct State: Sendable {
        var machine: EventQueueStateMachine<[UInt8]>
        var drainWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID = 0
        /// The backoff wait in progress, cancelled by shutdown.
        var retryTask: Task<Void, Never>?
    }

    private let state: NIOLockedValueBox<State>
    private let transport: any ChronicleTransport
    private let clock: any DeliveryClock
    private let logger: Logger

    init(transport: any ChronicleTransport, configuration: EventQueueStateMachine<[UInt8]>.Configuration,
         clock: any DeliveryClock, logger: Logger) {
        self.state = NIOLockedValueBox(State(machine: EventQueueStateMachine(configuration: configuration)))
        self.transport = transport
        self.clock = clock
        self.logger = logger
    }

    var statistics: EventStatistics { state.withLockedValue { $0.machine.statistics } }

    /// Queues an encoded event; returns at once.
    func enqueue(_ event: [UInt8]) {
        let (action, dropped, total) = state.withLockedValue { state in
            let (action, dropped) = state.machine.enqueue(event)
            return (action, dropped, state.machine.statistics.dropped)
        }
        // Logged at the first drop and then at each doubling, so that a long outage does not flood the log.
        if dropped, total & (total - 1) == 0 {
            logger.warning("Chronicle event buffer full: dropped the oldest events",
                           metadata: ["dropped_total": "\(total)"])
        }
        perform(action)
    }

    private func perform(_ action: EventQueueStateMachine<[UInt8]>.Action) {
        switch action {
        case .none:
            resumeDrainWaitersIfDrained()
        case .send(let batch):
            let body = WorkflowEventJSON.batch(batch)
            // An unstructured task: delivery outlives the scope that recorded the event, and a send in
            // flight at shutdown finishes on its own (its outcome then starts nothing more).
            Task {
                let outcome = await self.transport.sendEvents(body)
                if case .rejected(let reason) = outcome {
                    self.logger.error("Chronicle refused a batch of events", metadata: [
                        "count": "\(batch.count)", "reason": "\(reason)"])
                }
                let next = self.state.withLockedValue { $0.machine.sendFinished(outcome) }
                self.perform(next)
            }
        case .retry(let wait):
            logger.debug("Chronicle events not delivered; retrying", metadata: ["after": "\(wait)"])
            let task = Task {
                do {
                    try await self.clock.sleep(for: wait)
                } catch {
                    return
                }
                let next = self.state.withLockedValue { $0.machine.retryDue() }
                self.perform(next)
            }
            state.withLockedValue { $0.retryTask = task }
        }
    }

    private func resumeDrainWaitersIfDrained() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard state.machine.isDrained || state.machine.stopped else { return [] }
            defer { state.drainWaiters = [:] }
            return Array(state.drainWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until every queued event is delivered (or refused), at most `timeout` on the delivery clock.
    /// Returns whether everything was delivered in time.
    func flush(timeout: Duration) async -> Bool {
        if state.withLockedValue({ $0.machine.isDrained }) { return true }
        let clock = self.clock
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.waitUntilDrained() }
            group.addTask {
                try? await clock.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && self.state.withLockedValue { $0.machine.isDrained }
        }
    }

    /// Returns once the queue is empty (or delivery stopped), or when the task is cancelled.
    private func waitUntilDrained() async -> Bool {
        let id = state.withLockedValue { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLockedValue { state -> Bool in
                    if state.machine.isDrained || state.machine.stopped || Task.isCancelled { return true }
                    state.drainWaiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { $0.drainWaiters.removeValue(forKey: id) }
            waiter?.resume()
        }
        return true
    }

    /// Flushes for at most `timeout`, then stops: a pending retry is cancelled and later events are
    /// dropped. Returns how many events were left undelivered.
    func shutdown(timeout: Duration) async -> Int {
        _ = await flush(timeout: timeout)
        let (left, retry) = state.withLockedValue { state in
            (state.machine.stop(), state.retryTask)
        }
        retry?.cancel()
        resumeDrainWaitersIfDrained()
        if left > 0 {
            logger.warning("Chronicle client shut down with undelivered events", metadata: ["count": "\(left)"])
        }
        return left
    }
}
