import DequeModule

/// The log writer's queue and the decisions made on it, apart from any I/O: where a record goes (memory or
/// the spill file), when a batch is due, when the writer waits, wakes or finishes. The ``LogWriter`` holds it
/// under its lock, does what the returned actions say (appending to the spill file, resuming waiters)
/// and reports back. `Waiter` is what a suspended task is resumed through: a continuation in the writer, any
/// value in tests, which drive the machine synchronously.
struct LogQueueStateMachine<Record, Waiter> {
    struct Limits {
        var batchSize: Int
        var flushInterval: Duration
        var maxBufferedRecords: Int
        var maxBufferedBytes: Int
        var maxBatchBytes: Int
    }

    /// One queued record, with what the decisions need to know of it.
    struct Queued {
        let record: Record
        let enqueuedAt: ContinuousClock.Instant
        let size: Int
    }

    /// Where new records go.
    enum Intake: Equatable {
        case memory
        /// Memory was full, or the spill file holds records of an earlier run: records follow those in the
        /// spill file, in order, until the writer has replayed it.
        case spilling
    }

    /// How the writer task's wait stands.
    enum Wakeup {
        case none
        /// A signal came while the writer was not waiting: its next wait returns at once.
        case signalled
        case waiting(Waiter)
    }

    enum Phase: Equatable {
        case running
        /// Graceful shutdown: everything queued is due now, and the writer finishes once memory is empty.
        case shuttingDown
    }

    /// Whether the writer holds records it took (a batch being written, a spill replay): a flush waits for
    /// those too.
    enum Work: Equatable {
        case idle
        case inProgress
    }

    let limits: Limits
    /// Records in memory, oldest first.
    private(set) var buffer = Deque<Queued>()
    /// The sizes of the records in ``buffer``, added up.
    private(set) var bufferedBytes = 0
    private(set) var intake: Intake
    private(set) var phase = Phase.running
    private(set) var work: Work
    private var wakeup = Wakeup.none
    /// Set while the spill file refuses appends, so that the failure is reported once, not per record.
    private var spillRefusing = false
    private var idleWaiters: [Waiter] = []

    init(limits: Limits, spillPending: Bool, workPending: Bool) {
        self.limits = limits
        intake = spillPending ? .spilling : .memory
        work = workPending ? .inProgress : .idle
    }

    // MARK: Request path

    enum RecordAction {
        /// Append the record to the spill file, then report with ``spillAppended()`` or
        /// ``spillRefused(_:)``.
        case appendToSpill
        /// Queued in memory; wake the writer if one is given (a batch is due, or a deadline must be set).
        case enqueued(wake: Waiter?)
    }

    /// Takes a record: queued in memory, or, past the memory bounds or while spilling, for the spill file.
    mutating func record(_ queued: Queued, spillAvailable: Bool) -> RecordAction {
        if spillAvailable, intake == .spilling || buffer.count >= limits.maxBufferedRecords
            || bufferedBytes + queued.size > limits.maxBufferedBytes && !buffer.isEmpty {
            return .appendToSpill
        }
        return .enqueued(wake: enqueue(queued))
    }

    /// Queues a record in memory; returns the writer to wake when a batch is due or a deadline must be set.
    private mutating func enqueue(_ queued: Queued) -> Waiter? {
        buffer.append(queued)
        bufferedBytes += queued.size
        guard buffer.count == 1 || buffer.count >= limits.batchSize else { return nil }
        return signal()
    }

    /// The record is in the spill file: later ones follow it there. Returns the writer to wake, if waiting.
    mutating func spillAppended() -> Waiter? {
        intake = .spilling
        spillRefusing = false
        return signal()
    }

    /// The spill file refused the record: memory is the last place left, so it is queued there past the
    /// bound rather than lost. Returns whether this failure starts a run of them, to be reported once, and
    /// the writer to wake as for any record queued in memory.
    mutating func spillRefused(_ queued: Queued) -> (report: Bool, wake: Waiter?) {
        let report = !spillRefusing
        spillRefusing = true
        return (report, enqueue(queued))
    }

    // MARK: Writer task

    /// Wakes the writer: returns it when it waits, otherwise its next wait returns at once.
    mutating func signal() -> Waiter? {
        if case .waiting(let waiter) = wakeup {
            wakeup = .none
            return waiter
        }
        wakeup = .signalled
        return nil
    }

    /// The writer is about to wait: whether it goes on at once (a signal came, or shutdown began); otherwise
    /// `waiter` is kept until ``signal()``.
    mutating func wait(_ waiter: Waiter) -> Bool {
        if case .signalled = wakeup {
            wakeup = .none
            return true
        }
        if phase == .shuttingDown {
            wakeup = .none
            return true
        }
        wakeup = .waiting(waiter)
        return false
    }

    /// Graceful shutdown begins. Returns the writer to wake.
    mutating func shutdown() -> Waiter? {
        phase = .shuttingDown
        return signal()
    }

    /// A flush: whether everything recorded is already written or spilled; otherwise `waiter` is resumed by
    /// the writer once it is.
    mutating func flush(_ waiter: Waiter) -> Bool {
        if buffer.isEmpty && work == .idle { return true }
        idleWaiters.append(waiter)
        return false
    }

    /// The oldest batch from memory, if one is due at `now`.
    mutating func takeDueBatch(now: ContinuousClock.Instant) -> [Queued]? {
        guard let first = buffer.first else { return nil }
        // While spilling, memory holds the oldest records and takes no new ones: drain it now.
        let due = buffer.count >= limits.batchSize || phase == .shuttingDown || intake == .spilling
            || first.enqueuedAt + limits.flushInterval <= now || !idleWaiters.isEmpty
        guard due else { return nil }
        var count = 0
        var bytes = 0
        for queued in buffer.prefix(limits.batchSize) {
            if count > 0, bytes + queued.size > limits.maxBatchBytes { break }
            count += 1
            bytes += queued.size
        }
        let batch = Array(buffer.prefix(count))
        buffer.removeFirst(count)
        bufferedBytes -= bytes
        work = .inProgress
        return batch
    }

    /// Everything in memory, oldest first: what remains at a shutdown the database did not take.
    mutating func takeAll() -> [Queued] {
        defer {
            buffer.removeAll()
            bufferedBytes = 0
        }
        return Array(buffer)
    }

    enum IdleStep {
        /// Memory is empty and the spill file holds records: replay its oldest batch.
        case replay
        /// Nothing to do until a signal.
        case wait
        /// Shutting down with nothing left.
        case finished
    }

    /// What the writer does when no batch is due: with memory empty, replay, wait or finish; otherwise wait
    /// for the oldest record's deadline. Flushes waiting for an empty queue are returned to be resumed.
    mutating func idleStep(spillPending: Bool) -> (step: IdleStep, deadline: ContinuousClock.Instant?, resume: [Waiter]) {
        if let first = buffer.first { return (.wait, first.enqueuedAt + limits.flushInterval, []) }
        // Everything recorded is written or spilled.
        let resume = idleWaiters
        idleWaiters = []
        // At shutdown the spill stays for the next start to replay.
        if spillPending && phase == .running {
            work = .inProgress
            return (.replay, nil, resume)
        }
        intake = spillPending ? .spilling : .memory
        work = .idle
        return (phase == .shuttingDown ? .finished : .wait, nil, resume)
    }
}

extension LogQueueStateMachine: Sendable where Record: Sendable, Waiter: Sendable {}
extension LogQueueStateMachine.Queued: Sendable where Record: Sendable {}
extension LogQueueStateMachine.Wakeup: Sendable where Waiter: Sendable {}
