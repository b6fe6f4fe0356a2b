import CoreMetrics
import ChronicleCore
import DequeModule
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The logging pipeline: the request path enqueues, one writer task stores records in batches, and
/// nothing is lost.
///
/// - A batch is written when it reaches `batchSize` records or its oldest record is `flushInterval` old.
///   Batches are written one at a time, in order; the next one is converted to rows while the current one
///   is being written.
/// - At most `maxBufferedRecords` records and `maxBufferedBytes` of them wait in memory, whatever the
///   database's state: past either bound
///   records are appended to the spill file, and once spilling every later record follows them there until
///   the writer has replayed the file, so that order is kept. The writer drains memory first (it holds the
///   older records), then replays the spill.
/// - A failed batch is retried with backoff while the database is down.
/// - A record the database refuses is isolated from its batch, stored with its payload replaced by an
///   error note, or failing that appended to a dead-letter file, loudly.
/// - Graceful shutdown writes everything queued before `run()` returns; if the database is down, the queue
///   goes to the front of the spill file, replayed at the next start.
public final class LogWriter: LogSink, Service {
    /// The histogram of batch write latencies.
    public static let batchWriteMetric = "chronicle_log_batch_write_seconds"

    public struct Configuration: Sendable {
        public var batchSize = 100
        public var flushInterval: Duration = .seconds(1)
        /// Records kept in memory before new ones go to the spill file.
        public var maxBufferedRecords = 10_000
        /// Bytes of records (``LogEntry/approximateBytes``) kept in memory before new ones go to the spill
        /// file: large prompts reach this bound long before the count.
        public var maxBufferedBytes = 64 * 1024 * 1024
        /// The most bytes of records taken into one batch (at least one record): a batch of large prompts
        /// is written in smaller pieces rather than held whole.
        public var maxBatchBytes = 8 * 1024 * 1024
        /// The spill file; `nil` keeps everything in memory, without bound.
        public var spillPath: String?
        /// Where refused records go when even their error note cannot be stored.
        public var deadLetterPath: String?
        /// A write (or health check) taking longer than this counts as failed: a database that accepts
        /// no connections must not stall the pipeline.
        public var writeTimeout: Duration = .seconds(10)
        public var initialRetryDelay: Duration = .milliseconds(100)
        public var maxRetryDelay: Duration = .seconds(5)
        /// Where batch write latencies go (`chronicle_log_batch_write_seconds`); none by default.
        public var metricsFactory: (any MetricsFactory)?

        public init() {}
    }

    /// Counters for monitoring.
    public struct Statistics: Sendable, Equatable {
        public var queued = 0
        /// The approximate bytes of the records waiting in memory.
        public var queuedBytes = 0
        public var written = 0
        public var spilled = 0
        public var spillPending = 0
        public var failedBatches = 0
        /// Records stored with their payload replaced by an error note.
        public var replacedRecords = 0
        public var deadLettered = 0
        /// Records the spill file could not take: kept in memory past the bound, or lost at shutdown (loudly).
        public var spillFailures = 0

        public init() {}
    }

    private struct Queued {
        let entry: LogEntry
        let enqueuedAt: ContinuousClock.Instant
        let wallTime: Date
        let size: Int
    }

    private struct State {
        var buffer = Deque<Queued>()
        /// The sizes of the records in ``buffer``, added up.
        var bufferedBytes = 0
        /// The spill file, if configured and readable; every access holds the lock.
        var spill: SpillFile?
        /// Set once memory is full (or the spill holds records from an earlier run): new records go to the
        /// spill file until the writer has replayed it.
        var spilling = false
        /// Set while the spill file refuses appends, so that the failure is reported once, not per record.
        var spillBroken = false
        var waiter: CheckedContinuation<Void, Never>?
        var signalled = false
        var shuttingDown = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var busy = false
        var statistics = Statistics()
        /// How many times the writer went to wait for a signal (a spinning writer shows here).
        var waits = 0

        var spillPending: Bool { !(spill?.isEmpty ?? true) }

        mutating func takeWaiter() -> CheckedContinuation<Void, Never>? {
            if let waiter {
                self.waiter = nil
                return waiter
            }
            signalled = true
            return nil
        }
    }

    public let store: any LogStore
    public let configuration: Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let spillOpenError: (any Error)?

    public init(store: any LogStore, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "chronicle.log-writer")) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        // Opened here, not in `run()`, so that records arriving before the writer starts already queue
        // behind what an earlier run left in the spill.
        var spill: SpillFile?
        var openError: (any Error)?
        if let path = configuration.spillPath {
            do { spill = try SpillFile(path: path) } catch { openError = error }
        }
        spillOpenError = openError
        state.withLockedValue { state in
            state.spill = spill
            state.spilling = state.spillPending
        }
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.queued = state.buffer.count
            statistics.queuedBytes = state.bufferedBytes
            statistics.spillPending = state.spill?.unreadCount ?? 0
            return statistics
        }
    }

    /// How many times the writer has waited for records to become due.
    var waitCount: Int { state.withLockedValue { $0.waits } }

    // MARK: Request path

    /// Enqueues an entry, or past the memory bound appends it to the spill file. Never touches the database.
    public func record(_ entry: LogEntry) {
        let queued = Queued(entry: entry, enqueuedAt: .now, wallTime: Date(), size: entry.approximateBytes)
        enum Outcome { case none, wake(CheckedContinuation<Void, Never>?), spillFailed(any Error) }
        let outcome = state.withLockedValue { state -> Outcome in
            var failure: (any Error)?
            if let spill = state.spill, state.spilling || state.buffer.count >= configuration.maxBufferedRecords
                || state.bufferedBytes + queued.size > configuration.maxBufferedBytes && !state.buffer.isEmpty {
                do {
                    // Not synced here: the writer syncs the file before its next step, off the request path.
                    try spill.append([StoredRecord(entry, now: queued.wallTime)], sync: false)
                    state.spilling = true
                    state.spillBroken = false
                    state.statistics.spilled += 1
                    return .wake(state.takeWaiter())
                } catch {
                    // Memory is the last place left: the record is kept past the bound rather than lost.
                    state.statistics.spillFailures += 1
                    if !state.spillBroken { failure = error }
                    state.spillBroken = true
                }
            }
            state.buffer.append(queued)
            state.bufferedBytes += queued.size
            if let failure { return .spillFailed(failure) }
            // Wake the writer when a batch is due or a deadline must be set.
            guard state.buffer.count == 1 || state.buffer.count >= configuration.batchSize else { return .none }
            return .wake(state.takeWaiter())
        }
        switch outcome {
        case .none: break
        case .wake(let waiter): waiter?.resume()
        case .spillFailed(let error):
            logger.critical("cannot write the spill file; keeping log records in memory past the bound", metadata: [
                "path": "\(configuration.spillPath ?? "")", "error": "\(error)",
            ])
        }
    }

    /// Waits until everything recorded so far is written or spilled.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLockedValue { state -> Bool in
                if state.buffer.isEmpty && !state.busy { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
            wake()
        }
    }

    /// ``flush()`` bounded by `deadline`: whether everything recorded so far was written or spilled in time.
    /// Records are written by the writer's task, so `run()` must be running for a non-empty queue to drain.
    @discardableResult
    public func flush(deadline: ContinuousClock.Instant) async -> Bool {
        let waiter = NIOLockedValueBox<CheckedContinuation<Bool, Never>?>(nil)
        let finish: @Sendable (Bool) -> Void = { flushed in
            waiter.withLockedValue { waiter in defer { waiter = nil }; return waiter }?.resume(returning: flushed)
        }
        var racers: [Task<Void, Never>] = []
        let flushed = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            waiter.withLockedValue { $0 = continuation }
            racers = [Task { await self.flush(); finish(true) },
                      Task { try? await Task.sleep(until: deadline, clock: .continuous); finish(false) }]
        }
        for racer in racers { racer.cancel() }
        return flushed
    }

    // MARK: Writer task

    public func run() async throws {
        if let spillOpenError { throw spillOpenError }
        let pending = state.withLockedValue { $0.spill?.unreadCount ?? 0 }
        if pending > 0 {
            logger.notice("replaying spilled log records", metadata: ["count": "\(pending)"])
        }
        var loop = WriterLoop(writer: self)
        await withGracefulShutdownHandler {
            await loop.run()
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.shuttingDown = true }
            self.wake()
        }
        state.withLockedValue { $0.spill?.close() }
    }

    fileprivate func wake() {
        let waiter = state.withLockedValue { $0.takeWaiter() }
        waiter?.resume()
    }

    fileprivate enum Work {
        /// A batch from memory.
        case write([StoredRecord])
        /// Memory is empty and the spill file holds records: replay its oldest batch.
        case replay
    }

    /// The next thing to do, waiting for a batch to be due; `nil` when shutting down with nothing left.
    fileprivate func nextWork() async -> Work? {
        while true {
            enum Step { case write([Queued]), replay, wait(ContinuousClock.Instant?), finished }
            let step = state.withLockedValue { state -> Step in
                if let batch = takeDueBatch(&state) { return .write(batch) }
                if state.buffer.isEmpty {
                    // Everything recorded is written or spilled.
                    let idle = state.idleWaiters
                    state.idleWaiters = []
                    for waiter in idle { waiter.resume() }
                    // At shutdown the spill stays for the next start to replay.
                    if state.spillPending && !state.shuttingDown {
                        state.busy = true
                        return .replay
                    }
                    state.spilling = state.spillPending
                    state.busy = false
                    if state.shuttingDown { return .finished }
                    return .wait(nil)
                }
                return .wait(state.buffer.first.map { $0.enqueuedAt + configuration.flushInterval })
            }
            switch step {
            case .write(let batch):
                // Converted outside the lock: the request path never waits for a record's encoding.
                return .write(Self.stored(batch))
            case .replay:
                return .replay
            case .finished:
                return nil
            case .wait(let deadline):
                await waitForSignal(until: deadline)
            }
        }
    }

    /// The next batch from memory if one is due now, without waiting; the writer converts it while the
    /// batch before it is being written.
    fileprivate func takeDueBatchNow() -> [StoredRecord]? {
        state.withLockedValue { takeDueBatch(&$0) }.map(Self.stored)
    }

    /// Takes the oldest batch from memory if it is due; the caller holds the lock.
    private func takeDueBatch(_ state: inout State) -> [Queued]? {
        // Appends from the request path are not synced; do it before anything else happens.
        state.spill?.synchronize()
        // While spilling, memory holds the oldest records and takes no new ones: drain it now.
        let due = state.buffer.count >= configuration.batchSize || state.shuttingDown || state.spilling
            || state.buffer.first.map { $0.enqueuedAt + configuration.flushInterval <= .now } == true
            || !state.idleWaiters.isEmpty
        guard !state.buffer.isEmpty && due else { return nil }
        var count = 0
        var bytes = 0
        for queued in state.buffer.prefix(configuration.batchSize) {
            if count > 0, bytes + queued.size > configuration.maxBatchBytes { break }
            count += 1
            bytes += queued.size
        }
        let batch = Array(state.buffer.prefix(count))
        state.buffer.removeFirst(count)
        state.bufferedBytes -= bytes
        state.busy = true
        return batch
    }

    private static func stored(_ batch: [Queued]) -> [StoredRecord] {
        batch.map { StoredRecord($0.entry, now: $0.wallTime) }
    }

    private func waitForSignal(until deadline: ContinuousClock.Instant?) async {
        let timer: Task<Void, Never>? = deadline.map { deadline in
            Task { [weak self] in
                // A cancelled timer must not wake the writer: that signal would make its next wait return
                // at once, which starts a timer that is cancelled in turn, and the writer spins.
                do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return }
                self?.wake()
            }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLockedValue { state -> Bool in
                state.waits += 1
                if state.signalled || state.shuttingDown {
                    state.signalled = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer?.cancel()
    }

    /// The oldest spilled records, up to a batch; commit them with ``commitSpillRead()`` once stored.
    fileprivate func readSpill() throws -> [StoredRecord] {
        try state.withLockedValue { state in
            guard let spill = state.spill else { return [] }
            return try spill.readBatch(limit: configuration.batchSize, byteLimit: configuration.maxBatchBytes)
        }
    }

    fileprivate func commitSpillRead() {
        state.withLockedValue { $0.spill?.commitRead() }
    }

    /// Everything still in memory, oldest first.
    fileprivate func takeAll() -> [StoredRecord] {
        state.withLockedValue { state in
            let records = state.buffer.map { StoredRecord($0.entry, now: $0.wallTime) }
            state.buffer.removeAll()
            state.bufferedBytes = 0
            return records
        }
    }

    /// Keeps records the database could not take at shutdown in the spill file, for the next start. Records
    /// `older` than what the file holds go to its front, so that the replay keeps their order.
    fileprivate func saveForNextStart(_ records: [StoredRecord], older: Bool) {
        guard !records.isEmpty else { return }
        let failure = state.withLockedValue { state -> (any Error)? in
            do {
                guard let spill = state.spill else { throw StorageError("no spill file is configured") }
                if older { try spill.prepend(records) } else { try spill.append(records) }
                state.statistics.spilled += records.count
                return nil
            } catch {
                state.statistics.spillFailures += records.count
                return error
            }
        }
        if let failure {
            logger.critical("LOG RECORDS LOST at shutdown: the database is down and the spill file cannot take them",
                            metadata: ["records": "\(records.count)", "error": "\(failure)"])
        }
    }

    fileprivate var isShuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    fileprivate func count(_ update: (inout Statistics) -> Void) {
        state.withLockedValue { update(&$0.statistics) }
    }

    fileprivate var log: Logger { logger }
}

/// The writer task's own state: whether the database was given up on at shutdown.
private struct WriterLoop: Sendable {
    let writer: LogWriter
    /// Set when a write failed at shutdown: what remains goes to the spill file without another attempt.
    var gaveUp = false

    var configuration: LogWriter.Configuration { writer.configuration }

    mutating func run() async {
        // A batch already taken from memory and converted while the one before it was written.
        var converted: [StoredRecord]?
        while true {
            let work: LogWriter.Work
            if let batch = converted {
                work = .write(batch)
                converted = nil
            } else if let next = await writer.nextWork() {
                work = next
            } else {
                return
            }
            switch work {
            case .write(let batch):
                if gaveUp {
                    writer.saveForNextStart(batch, older: false)
                    continue
                }
                let loop = self
                async let stored = loop.store(batch)
                // Batches are still written one after the other, in order; only the next one's encoding
                // overlaps this write.
                converted = writer.takeDueBatchNow()
                if await !stored {
                    gaveUp = true
                    // The batch, the one taken after it and the rest of memory are older than anything
                    // spilled meanwhile.
                    writer.saveForNextStart(batch + (converted ?? []) + writer.takeAll(), older: true)
                    converted = nil
                }
            case .replay:
                await replaySpill()
            }
        }
    }

    /// Writes the oldest batch of spilled records back, if the database takes it.
    func replaySpill() async {
        let batch: [StoredRecord]
        do {
            batch = try writer.readSpill()
        } catch {
            writer.log.error("cannot read the spill file", metadata: ["path": "\(configuration.spillPath ?? "")", "error": "\(error)"])
            try? await Task.sleep(for: configuration.maxRetryDelay)
            return
        }
        // A batch of torn lines only (a crash mid-append) is skipped.
        let stored = batch.isEmpty ? true : await store(batch)
        if stored { writer.commitSpillRead() }
    }

    /// Stores a batch, retrying while the database is down. Returns false when it gave up at shutdown; the
    /// caller keeps the records.
    func store(_ batch: [StoredRecord]) async -> Bool {
        var delay = configuration.initialRetryDelay
        while true {
            do {
                try await write(batch)
                writer.count { $0.written += batch.count }
                return true
            } catch {
                writer.count { $0.failedBatches += 1 }
                // Only an answer can refuse a record; a batch that timed out is retried whole.
                if !(error is TimedOut), await databaseIsUp() {
                    await isolate(batch, firstError: error)
                    return true
                }
                writer.log.warning("database unavailable; log records are waiting", metadata: [
                    "error": "\(error)", "records": "\(batch.count)",
                ])
                if writer.isShuttingDown { return false }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, configuration.maxRetryDelay)
            }
        }
    }

    func write(_ records: [StoredRecord]) async throws {
        let store = writer.store
        let start = ContinuousClock.now
        defer {
            if let factory = configuration.metricsFactory {
                CoreMetrics.Timer(label: LogWriter.batchWriteMetric, factory: factory)
                    .recordNanoseconds((ContinuousClock.now - start).nanoseconds)
            }
        }
        try await withAbandoningTimeout(configuration.writeTimeout) { try await store.write(records) }
    }

    func databaseIsUp() async -> Bool {
        let store = writer.store
        return (try? await withAbandoningTimeout(configuration.writeTimeout) { try await store.ping() }) != nil
    }

    /// The database is up but refused the batch: store records one by one, replacing refused payloads.
    func isolate(_ batch: [StoredRecord], firstError: any Error) async {
        if batch.count > 1 {
            for record in batch {
                await isolate([record], firstError: firstError)
            }
            return
        }
        guard let record = batch.first else { return }
        do {
            try await write([record])
            writer.count { $0.written += 1 }
            return
        } catch {
            writer.log.error("database refused a log record; storing an error note in its place", metadata: [
                "error": "\(error)",
            ])
        }
        let note = Self.errorNote(for: record, error: firstError)
        do {
            try await write([note])
            writer.count { $0.replacedRecords += 1 }
        } catch {
            deadLetter(record, error: error)
        }
    }

    /// A row that keeps the record's identity and says why its payload is missing.
    static func errorNote(for record: StoredRecord, error: any Error) -> StoredRecord {
        let note = "{\"chronicle_storage_error\":" + (EventRow.json(String(describing: error)) ?? "\"\"") + "}"
        switch record {
        case .event(var row):
            row.chatRequest = note
            row.chatResponse = EventRow.null
            row.meta = note
            row.responseMeta = nil
            return .event(row)
        case .workflow(let event):
            var row = EventRow(GenericEvent(type: "chronicle:unstorable_event", runID: event.runID), now: Date())
            row.meta = EventRow.json(event) ?? EventRow.null
            row.error = note
            return .event(row)
        }
    }

    func deadLetter(_ record: StoredRecord, error: any Error) {
        writer.count { $0.deadLettered += 1 }
        guard let path = configuration.deadLetterPath, let dead = try? SpillFile(path: path),
              (try? dead.append([record])) != nil
        else {
            writer.log.critical("LOG RECORD LOST: the database refused it and no dead-letter file could take it",
                                metadata: ["error": "\(error)", "record": "\(EventRow.json(record) ?? "?")"])
            return
        }
        dead.close()
        writer.log.critical("log record written to the dead-letter file", metadata: ["path": "\(path)", "error": "\(error)"])
    }
}
