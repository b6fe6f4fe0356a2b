import CoreMetrics
import ChronicleCore
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
/// - Where a record goes and when the writer writes, waits or finishes is decided by
///   ``LogQueueStateMachine``, apart from any I/O; this type does the I/O it calls for.
/// - With a journal (``Configuration/journalPath``), each record is also appended to a local file before
///   ``record(_:)`` returns, and that file is cut back as batches are stored: a process killed with records
///   still in memory finds them there at its next start and stores them before anything else.
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
        /// The crash journal's directory; `nil` keeps no journal, and a crash loses what is in memory.
        public var journalPath: String?
        /// The size at which a journal segment is closed and a new one begun; closed segments are deleted
        /// once their records are stored.
        public var journalSegmentBytes = 8 * 1024 * 1024
        /// Prices each call as it is stored (`cost_usd`): here, off the request path.
        public var prices: PriceTable = .bundled
        /// Called with each batch of records once the database has committed it (on the writer's task), so that
        /// whoever is told about a call (the dashboard's live tail) can already read it back. Keep it quick.
        public var onStored: (@Sendable ([StoredRecord]) -> Void)?

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
        /// Records read back from the journal an earlier run left, and stored.
        public var journalReplayed = 0
        /// Records the journal could not take (the disk is full or the directory is gone): a crash before
        /// they are stored would lose them.
        public var journalFailures = 0

        public init() {}
    }

    /// A record as it waits in memory.
    private struct Pending {
        let entry: LogEntry
        let wallTime: Date
        /// The journal segment holding the record, until it is stored.
        let journalSegment: UInt64?
    }

    private typealias Queue = LogQueueStateMachine<Pending, CheckedContinuation<Void, Never>>
    private typealias Queued = Queue.Queued

    /// Records on their way to the database, with the journal segments they settle once stored.
    fileprivate struct Batch {
        var records: [StoredRecord]
        var receipt = JournalReceipt()

        static func + (lhs: Batch, rhs: Batch) -> Batch {
            var receipt = lhs.receipt
            receipt.add(rhs.receipt)
            return Batch(records: lhs.records + rhs.records, receipt: receipt)
        }
    }

    private struct State {
        /// The queue and its decisions; this type does the I/O they call for.
        var queue: Queue
        /// The spill file, if configured and readable; every access holds the lock.
        var spill: SpillFile?
        var statistics = Statistics()
        /// How many times the writer went to wait for a signal (a spinning writer shows here).
        var waits = 0

        var spillPending: Bool { !(spill?.isEmpty ?? true) }
    }

    public let store: any LogStore
    public let configuration: Configuration
    private let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let spillOpenError: (any Error)?
    /// The crash journal, if configured and its directory could be opened.
    let journal: Journal?
    private let journalOpenError: (any Error)?

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
            do { spill = try SpillFile(path: path, format: .binary) } catch { openError = error }
        }
        spillOpenError = openError
        // Opened here too: the segments an earlier run left are set apart before this run appends any.
        var journal: Journal?
        var journalError: (any Error)?
        if let path = configuration.journalPath {
            do { journal = try Journal(directory: path, segmentBytes: configuration.journalSegmentBytes) } catch {
                journalError = error
            }
        }
        self.journal = journal
        journalOpenError = journalError
        let limits = Queue.Limits(
            batchSize: configuration.batchSize, flushInterval: configuration.flushInterval,
            maxBufferedRecords: configuration.maxBufferedRecords, maxBufferedBytes: configuration.maxBufferedBytes,
            maxBatchBytes: configuration.maxBatchBytes)
        // Records of an earlier run in the spill file are older than anything new; a flush waits for the
        // replay of what an earlier run left in the journal.
        let queue = Queue(limits: limits, spillPending: !(spill?.isEmpty ?? true),
                          workPending: !(journal?.leftovers.isEmpty ?? true))
        state = NIOLockedValueBox(State(queue: queue, spill: spill))
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.queued = state.queue.buffer.count
            statistics.queuedBytes = state.queue.bufferedBytes
            statistics.spillPending = state.spill?.unreadCount ?? 0
            return statistics
        }
    }

    /// How many times the writer has waited for records to become due.
    var waitCount: Int { state.withLockedValue { $0.waits } }

    // MARK: Request path

    /// Appends the entry to the journal, then enqueues it, or past the memory bound appends it to the spill
    /// file. Never touches the database.
    public func record(_ entry: LogEntry) {
        let wallTime = Date()
        var journalSegment: UInt64?
        if let journal {
            do {
                journalSegment = try journal.append(entry, wallTime: wallTime)
            } catch {
                state.withLockedValue { $0.statistics.journalFailures += 1 }
                if journal.noteFailure() {
                    logger.critical("cannot write the log journal; a crash now would lose queued log records",
                                    metadata: ["path": "\(journal.directory)", "error": "\(error)"])
                }
            }
        }
        let queued = Queued(record: Pending(entry: entry, wallTime: wallTime, journalSegment: journalSegment),
                            enqueuedAt: .now, size: entry.approximateBytes)
        enum Outcome { case wake(CheckedContinuation<Void, Never>?), spillFailed(any Error, wake: CheckedContinuation<Void, Never>?) }
        let outcome = state.withLockedValue { state -> Outcome in
            switch state.queue.record(queued, spillAvailable: state.spill != nil) {
            case .enqueued(let waiter):
                return .wake(waiter)
            case .appendToSpill:
                do {
                    // Not synced here: the writer syncs the file before its next step, off the request path.
                    // Written, it is in the page cache like the journal, so its journal copy may go.
                    try state.spill?.append([StoredRecord(entry, now: wallTime, prices: configuration.prices)], sync: false)
                    state.statistics.spilled += 1
                    var receipt = JournalReceipt()
                    receipt.add(journalSegment)
                    journal?.settle(receipt)
                    return .wake(state.queue.spillAppended())
                } catch {
                    state.statistics.spillFailures += 1
                    let refusal = state.queue.spillRefused(queued)
                    return refusal.report ? .spillFailed(error, wake: refusal.wake) : .wake(refusal.wake)
                }
            }
        }
        switch outcome {
        case .wake(let waiter): waiter?.resume()
        case .spillFailed(let error, let waiter):
            logger.critical("cannot write the spill file; keeping log records in memory past the bound", metadata: [
                "path": "\(configuration.spillPath ?? "")", "error": "\(error)",
            ])
            waiter?.resume()
        }
    }

    /// Waits until everything recorded so far is written or spilled.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLockedValue { $0.queue.flush(continuation) }
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
        if let journalOpenError { throw journalOpenError }
        let pending = state.withLockedValue { $0.spill?.unreadCount ?? 0 }
        if pending > 0 {
            logger.notice("replaying spilled log records", metadata: ["count": "\(pending)"])
        }
        var loop = WriterLoop(writer: self)
        await withGracefulShutdownHandler {
            // What an earlier run left in the journal is older than anything queued now.
            if let journal, !journal.leftovers.isEmpty { await loop.replayJournal(journal.leftovers) }
            await loop.run()
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.queue.shutdown() }?.resume()
        }
        state.withLockedValue { $0.spill?.close() }
        journal?.close()
    }

    fileprivate func wake() {
        let waiter = state.withLockedValue { $0.queue.signal() }
        waiter?.resume()
    }

    fileprivate enum Work {
        /// A batch from memory.
        case write(Batch)
        /// Memory is empty and the spill file holds records: replay its oldest batch.
        case replay
    }

    /// The next thing to do, waiting for a batch to be due; `nil` when shutting down with nothing left.
    fileprivate func nextWork() async -> Work? {
        while true {
            enum Step { case write([Queued]), replay, wait(ContinuousClock.Instant?), finished }
            let (step, resume) = state.withLockedValue { state -> (Step, [CheckedContinuation<Void, Never>]) in
                if let batch = takeDueBatch(&state) { return (.write(batch), []) }
                let idle = state.queue.idleStep(spillPending: state.spillPending)
                switch idle.step {
                case .replay: return (.replay, idle.resume)
                case .wait: return (.wait(idle.deadline), idle.resume)
                case .finished: return (.finished, idle.resume)
                }
            }
            // Everything recorded so far is written or spilled: the flushes waiting for that go on.
            for waiter in resume { waiter.resume() }
            switch step {
            case .write(let batch):
                // Converted outside the lock: the request path never waits for a record's encoding.
                return .write(Self.stored(batch, prices: configuration.prices))
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
    fileprivate func takeDueBatchNow() -> Batch? {
        state.withLockedValue { takeDueBatch(&$0) }.map { Self.stored($0, prices: configuration.prices) }
    }

    /// Takes the oldest batch from memory if it is due; the caller holds the lock.
    private func takeDueBatch(_ state: inout State) -> [Queued]? {
        // Appends from the request path are not synced; do it before anything else happens.
        state.spill?.synchronize()
        return state.queue.takeDueBatch(now: .now)
    }

    private static func stored(_ batch: some Collection<Queued>, prices: PriceTable) -> Batch {
        var receipt = JournalReceipt()
        for queued in batch { receipt.add(queued.record.journalSegment) }
        return Batch(records: batch.map { StoredRecord($0.record.entry, now: $0.record.wallTime, prices: prices) },
                     receipt: receipt)
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
                return state.queue.wait(continuation)
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
    fileprivate func takeAll() -> Batch {
        state.withLockedValue { Self.stored($0.queue.takeAll(), prices: configuration.prices) }
    }

    /// Keeps records the database could not take at shutdown in the spill file, for the next start. Records
    /// `older` than what the file holds go to its front, so that the replay keeps their order.
    fileprivate func saveForNextStart(_ batch: Batch, older: Bool) {
        let records = batch.records
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
        guard let failure else {
            journal?.settle(batch.receipt)
            return
        }
        let journaled = batch.receipt.counts.values.reduce(0, +)
        if journaled < records.count {
            logger.critical("LOG RECORDS LOST at shutdown: the database is down and the spill file cannot take them",
                            metadata: ["records": "\(records.count - journaled)", "error": "\(failure)"])
        }
        if journaled > 0 {
            logger.warning("log records left in the journal for the next start: the database is down and the spill file cannot take them",
                           metadata: ["records": "\(journaled)", "error": "\(failure)"])
        }
    }

    /// Counts a replayed segment's records as stored.
    fileprivate func countReplayed(_ count: Int) {
        state.withLockedValue { $0.statistics.journalReplayed += count }
    }

    fileprivate var isShuttingDown: Bool { state.withLockedValue { $0.queue.phase == .shuttingDown } }

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
        var converted: LogWriter.Batch?
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
                async let stored = loop.store(batch.records)
                // Batches are still written one after the other, in order; only the next one's encoding
                // overlaps this write.
                converted = writer.takeDueBatchNow()
                if await stored {
                    writer.journal?.settle(batch.receipt)
                } else {
                    gaveUp = true
                    // The batch, the one taken after it and the rest of memory are older than anything
                    // spilled meanwhile.
                    writer.saveForNextStart(batch + (converted ?? LogWriter.Batch(records: [])) + writer.takeAll(),
                                            older: true)
                    converted = nil
                }
            case .replay:
                await replaySpill()
            }
        }
    }

    /// Stores what an earlier run left in the journal, segment by segment, deleting each once all its records
    /// are stored. A record already stored (the earlier run wrote its batch, or this replay was cut short
    /// and is done again) is skipped by the insert, so each is stored once. At a shutdown while the database
    /// is down the remaining segments stay for the next start.
    mutating func replayJournal(_ segments: [String]) async {
        for path in segments {
            let read: (entries: [(entry: LogEntry, wallTime: Date)], end: JournalFrame.End)
            do {
                read = try Journal.read(segment: path)
            } catch {
                writer.log.error("cannot read a journal segment; leaving it", metadata: ["path": "\(path)", "error": "\(error)"])
                continue
            }
            if read.end == .notASegment {
                writer.log.error("not a journal segment; leaving it", metadata: ["path": "\(path)"])
                continue
            }
            writer.log.notice("replaying log records from the journal", metadata: [
                "path": "\(path)", "count": "\(read.entries.count)",
            ])
            var pending = read.entries[...]
            while !pending.isEmpty {
                var count = 0
                var bytes = 0
                for item in pending.prefix(configuration.batchSize) {
                    let size = item.entry.approximateBytes
                    if count > 0, bytes + size > configuration.maxBatchBytes { break }
                    count += 1
                    bytes += size
                }
                let batch = pending.prefix(count).map { StoredRecord($0.entry, now: $0.wallTime, prices: configuration.prices) }
                guard await store(batch) else {
                    gaveUp = true
                    return
                }
                writer.countReplayed(batch.count)
                pending = pending.dropFirst(count)
            }
            switch read.end {
            case .damaged(let offset):
                writer.log.error("a journal segment is damaged; the records after the damage are not replayed",
                                 metadata: ["path": "\(path)", "offset": "\(offset)", "kept_as": "\(path).damaged"])
                Journal.remove(segment: path, damaged: true)
            case .tornTail, .complete, .notASegment:
                // A torn last record was being written when the process died: it was never recorded.
                Journal.remove(segment: path, damaged: false)
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
                configuration.onStored?(batch)
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
            configuration.onStored?([record])
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
