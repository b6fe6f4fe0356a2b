/// The decisions of background event delivery, with no I/O: what to send next, when to retry, what a full
/// buffer drops. ``EventDelivery`` performs the actions.
///
/// One batch is in flight at a time, so events arrive in order. A batch that fails for a reason that may
/// pass stays at the head of the queue and is retried after a backoff that doubles from
/// `initialBackoff` up to `maxBackoff`; events are never given up on for failing, only dropped, oldest
/// first, when the buffer is full.
struct EventQueueStateMachine<Event> {
    struct Configuration: Sendable, Hashable {
        /// The most events held, in flight included.
        var capacity: Int
        var maxBatchSize: Int
        var initialBackoff: Duration
        var maxBackoff: Duration
    }

    enum Action {
        case none
        /// Send these events (the head of the queue) as one batch, then report with `sendFinished`.
        case send([Event])
        /// Wait, then call `retryDue`.
        case retry(after: Duration)
    }

    let configuration: Configuration
    /// Oldest first; while a batch is in flight, it is the first `inFlight` events.
    private(set) var queue: [Event] = []
    private(set) var inFlight = 0
    private(set) var waitingToRetry = false
    private(set) var stopped = false
    private(set) var consecutiveFailures = 0
    private(set) var statistics = EventStatistics()

    init(configuration: Configuration) {
        var configuration = configuration
        configuration.maxBatchSize = max(1, configuration.maxBatchSize)
        // Room for a whole batch in flight and at least one waiting event, so that the oldest waiting one
        // can always be the one dropped.
        configuration.capacity = max(configuration.capacity, configuration.maxBatchSize + 1)
        self.configuration = configuration
    }

    /// Whether every event was delivered or given up on.
    var isDrained: Bool { queue.isEmpty }

    /// Adds an event. Returns the action and whether an older event was dropped to make room.
    mutating func enqueue(_ event: Event) -> (action: Action, droppedOne: Bool) {
        guard !stopped else {
            statistics.dropped += 1
            return (.none, true)
        }
        var dropped = false
        if queue.count >= configuration.capacity {
            // The oldest event not in flight goes; capacity leaves at least one.
            queue.remove(at: inFlight)
            statistics.dropped += 1
            dropped = true
        }
        queue.append(event)
        statistics.pending = queue.count
        if inFlight == 0, !waitingToRetry { return (startBatch(), dropped) }
        return (.none, dropped)
    }

    /// The batch in flight finished with `outcome`.
    mutating func sendFinished(_ outcome: EventDeliveryOutcome) -> Action {
        guard inFlight > 0 else { return .none }
        let count = inFlight
        inFlight = 0
        defer { statistics.pending = queue.count }
        switch outcome {
        case .delivered:
            queue.removeFirst(count)
            statistics.delivered += count
            consecutiveFailures = 0
        case .rejected:
            queue.removeFirst(count)
            statistics.rejected += count
            consecutiveFailures = 0
        case .retryable:
            consecutiveFailures += 1
            statistics.failedAttempts += 1
            guard !stopped else { return .none }
            waitingToRetry = true
            return .retry(after: backoff(afterFailures: consecutiveFailures))
        }
        return stopped ? .none : startBatch()
    }

    /// The backoff wait has passed.
    mutating func retryDue() -> Action {
        guard waitingToRetry, !stopped else { return .none }
        waitingToRetry = false
        return startBatch()
    }

    /// Stops sending (shutdown): nothing more starts, later events are dropped. Returns how many events were
    /// left undelivered.
    mutating func stop() -> Int {
        stopped = true
        waitingToRetry = false
        return queue.count
    }

    /// `initialBackoff` doubled per failure after the first, at most `maxBackoff`.
    func backoff(afterFailures failures: Int) -> Duration {
        var wait = configuration.initialBackoff
        for _ in 1..<max(1, failures) {
            wait *= 2
            if wait >= configuration.maxBackoff { return configuration.maxBackoff }
        }
        return min(wait, configuration.maxBackoff)
    }

    private mutating func startBatch() -> Action {
        guard !queue.isEmpty else { return .none }
        inFlight = min(queue.count, configuration.maxBatchSize)
        return .send(Array(queue.prefix(inFlight)))
    }
}

extension EventQueueStateMachine: Sendable where Event: Sendable {}
extension EventQueueStateMachine.Action: Sendable where Event: Sendable {}

/// Counts of background event delivery, from ``ChronicleClient/eventStatistics``.
public struct EventStatistics: Sendable, Hashable {
    /// Events the gateway accepted.
    public var delivered = 0
    /// Events waiting or in flight.
    public var pending = 0
    /// Events dropped because the buffer was full (oldest first), or recorded after shutdown.
    public var dropped = 0
    /// Events the gateway refused for good (malformed, recording off).
    public var rejected = 0
    /// Deliveries that failed and were retried.
    public var failedAttempts = 0

    public init() {}
}
