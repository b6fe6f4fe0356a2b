import CoreMetrics
import ChronicleCore
import DequeModule
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The logging pipeline: the request path enqueues, one writer task stores records in batches, and
/// nothing is lost (gaps 30–32).
///
/// - A batch is written when it reaches `batchSize` records or its oldest record is `flushInterval` old.
/// - A failed batch is retried with backoff while the database is down. Meanwhile records wait in memory
///   up to `maxBufferedRecords`, then spill, in order, to an append-only file, replayed when the database
///   is back (and at the next start).
/// - A record the database refuses is isolated from its batch, stored with its payload replaced by an
///   error note, or failing that appended to a dead-letter file, loudly.
/// - Graceful shutdown writes (or spills) everything queued before `run()` returns.
public final class LogWriter: LogSink, Service {
    /// The histogram of batch write latencies.
    public static let batchWriteMetric = "chronicle_log_batch_write_seconds"

    public struct Configuration: Sendable {
        public var batchSize = 100
        public var flushInterval: Duration = .seconds(1)
        /// Records kept in memory while the database is down before they spill to the file.
        public var maxBufferedRecords = 10_000
        /// The spill file; `nil` keeps everything in memory.
        public var spillPath: String?
        /// Where refused records go when even their error note cannot be stored.
        public var deadLetterPath: String?
        /// A write (or health check) taking longer than this counts as failed: a database that accepts
        /// no connections must not stall the pipeline, or memory would grow without bound.
        public var writeTimeout: Duration = .seconds(10)
        public var initialRetryDelay: Duration = .milliseconds(100)
        public var maxRetryDelay: Duration = .seconds(5)
        /// Rows older than this many days are deleted in the background; 0 keeps everything.
        public var retentionDays = 30
        public var retentionInterval: Duration = .seconds(3600)
        public var retentionBatchSize = 1000
        /// Where batch write latencies go (`chronicle_log_batch_write_seconds`); none by default.
        public var metricsFactory: (any MetricsFactory)?

        public init() {}
    }

    /// Counters for monitoring.
    public struct Statistics: Sendable, Equatable {
        public var queued = 0
        public var written = 0
        public var spilled = 0
        public var spillPending = 0
        public var failedBatches = 0
        /// Records stored with their payload replaced by an error note.
        public var replacedRecords = 0
        public var deadLettered = 0
        /// Records that could be neither stored nor spilled (kept in memory; reported loudly).
        public var spillFailures = 0
        public var retentionDeleted = 0
    }

    private struct Queued {
        let entry: LogEntry
        let enqueuedAt: ContinuousClock.Instant
        let wallTime: Date
    }

    private struct State {
        var buffer = Deque<Queued>()
        var waiter: CheckedContinuation<Void, Never>?
        var signalled = false
        var shuttingDown = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var busy = false
        var statistics = Statistics()
        /// How many times the writer went to wait for a signal (a spinning writer shows here).
        var waits = 0

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

    public init(store: any LogStore, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "chronicle.log-writer")) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.queued = state.buffer.count
            return statistics
        }
    }

    /// How many times the writer has waited for records to become due.
    var waitCount: Int { state.withLockedValue { $0.waits } }

    // MARK: Request path

    /// Enqueues an entry. Never blocks and never touches the database.
    public func record(_ entry: LogEntry) {
        let queued = Queued(entry: entry, enqueuedAt: .now, wallTime: Date())
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.buffer.append(queued)
            // Wake the writer when a batch is due or a deadline must be set.
            guard state.buffer.count == 1 || state.buffer.count >= configuration.batchSize else { return nil }
            return state.takeWaiter()
        }
        waiter?.resume()
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
        let spill = try configuration.spillPath.map { try SpillFile(path: $0) }
        defer { spill?.close() }
        if let spill, !spill.isEmpty {
            logger.notice("replaying spilled log records", metadata: ["count": "\(spill.unreadCount)"])
        }
        var loop = WriterLoop(writer: self, spill: spill)
        await withGracefulShutdownHandler {
            await loop.run()
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.shuttingDown = true }
            self.wake()
        }
    }

    fileprivate func wake() {
        let waiter = state.withLockedValue { $0.takeWaiter() }
        waiter?.resume()
    }

    /// The next batch from memory, waiting for it to be due; `nil` when shutting down with nothing left.
    fileprivate func nextBatch(spillPending: Bool) async -> [StoredRecord]? {
        while true {
            enum Step { case take([Queued]), wait(ContinuousClock.Instant?), finished, replay }
            let step = state.withLockedValue { state -> Step in
                let due = state.buffer.count >= configuration.batchSize || state.shuttingDown
                    || state.buffer.first.map { $0.enqueuedAt + configuration.flushInterval <= .now } == true
                    || !state.idleWaiters.isEmpty
                // Spilled records are older than anything in memory: they go first (at shutdown the
                // memory queue joins them in the spill instead, for the next start to replay).
                if spillPending && !state.shuttingDown {
                    state.busy = true
                    return .replay
                }
                if !state.buffer.isEmpty && due {
                    let count = min(configuration.batchSize, state.buffer.count)
                    let batch = Array(state.buffer.prefix(count))
                    state.buffer.removeFirst(count)
                    state.busy = true
                    return .take(batch)
                }
                if state.buffer.isEmpty {
                    state.busy = false
                    let idle = state.idleWaiters
                    state.idleWaiters = []
                    for waiter in idle { waiter.resume() }
                    if state.shuttingDown { return .finished }
                    return .wait(nil)
                }
                return .wait(state.buffer.first.map { $0.enqueuedAt + configuration.flushInterval })
            }
            switch step {
            case .take(let queued):
                return queued.map { StoredRecord($0.entry, now: $0.wallTime) }
            case .replay:
                return []
            case .finished:
                return nil
            case .wait(let deadline):
                await waitForSignal(until: deadline)
            }
        }
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

    /// Moves the oldest records past the memory bound out of the queue, for spilling.
    fileprivate func takeOverflow() -> [StoredRecord] {
        state.withLockedValue { state in
            let excess = state.buffer.count - configuration.maxBufferedRecords
            guard excess > 0 else { return [] }
            let overflow = state.buffer.prefix(excess).map { StoredRecord($0.entry, now: $0.wallTime) }
            state.buffer.removeFirst(excess)
            return overflow
        }
    }

    fileprivate var isShuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    fileprivate func count(_ update: (inout Statistics) -> Void) {
        state.withLockedValue { update(&$0.statistics) }
    }

    fileprivate var log: Logger { logger }
}

/// The writer task's own state: the spill file and the retry/retention bookkeeping.
private struct WriterLoop {
    let writer: LogWriter
    let spill: SpillFile?
    /// Records that could not be spilled either; kept, oldest first, and retried.
    var stranded: [StoredRecord] = []
    var nextRetention = ContinuousClock.now + .seconds(5)

    init(writer: LogWriter, spill: SpillFile?) {
        self.writer = writer
        self.spill = spill
    }

    var configuration: LogWriter.Configuration { writer.configuration }

    mutating func run() async {
        while true {
            let spillPending = !(spill?.isEmpty ?? true) || !stranded.isEmpty
            guard let batch = await writer.nextBatch(spillPending: spillPending) else { break }
            if batch.isEmpty {
                await replaySpill()
            } else if spillPending {
                // Older records are waiting in the spill: keep the order by queueing behind them.
                spillOrStrand(batch)
            } else {
                await store(batch)
            }
            await runRetentionIfDue()
        }
        writer.count { $0.spillPending = spill?.unreadCount ?? 0 }
    }

    /// Writes spilled records back, oldest first, while the database takes them.
    mutating func replaySpill() async {
        if !stranded.isEmpty {
            let batch = stranded
            stranded = []
            guard await store(batch, allowSpill: false) else {
                stranded = batch + stranded
                return
            }
        }
        guard let spill else { return }
        while !spill.isEmpty {
            let batch: [StoredRecord]
            do {
                batch = try spill.readBatch(limit: configuration.batchSize)
            } catch {
                writer.log.error("cannot read the spill file", metadata: ["path": "\(spill.path)", "error": "\(error)"])
                return
            }
            guard !batch.isEmpty else {
                spill.commitRead()
                continue
            }
            guard await store(batch, allowSpill: false) else { return }
            spill.commitRead()
            writer.count { $0.spillPending = spill.unreadCount }
            // Let the memory queue's overflow join the spill behind what remains.
            spillOrStrand(writer.takeOverflow())
            if writer.isShuttingDown { break }
        }
    }

    /// Stores a batch, retrying while the database is down. Returns false when it gave up (the records
    /// were spilled, or `allowSpill` is false and the caller keeps them).
    @discardableResult
    mutating func store(_ batch: [StoredRecord], allowSpill: Bool = true) async -> Bool {
        var delay = configuration.initialRetryDelay
        while true {
            do {
                try await write(batch)
                writer.count { $0.written += batch.count }
                return true
            } catch {
                writer.count { $0.failedBatches += 1 }
                if await databaseIsUp() {
                    await isolate(batch, firstError: error)
                    return true
                }
                writer.log.warning("database unavailable; log records are waiting", metadata: [
                    "error": "\(error)", "records": "\(batch.count)",
                ])
                if writer.isShuttingDown {
                    if allowSpill { spillOrStrand(batch) }
                    return false
                }
                // Keep memory bounded while we wait: the oldest overflow goes to the spill.
                spillOrStrand(writer.takeOverflow())
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, configuration.maxRetryDelay)
                if !allowSpill && writer.isShuttingDown { return false }
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
        try await withTimeout(configuration.writeTimeout, clock: SystemClock()) { try await store.write(records) }
    }

    func databaseIsUp() async -> Bool {
        let store = writer.store
        return (try? await withTimeout(configuration.writeTimeout, clock: SystemClock()) { try await store.ping() }) != nil
    }

    /// The database is up but refused the batch: store records one by one, replacing refused payloads.
    mutating func isolate(_ batch: [StoredRecord], firstError: any Error) async {
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

    /// Appends records to the spill file, or keeps them in memory (loudly) if the file cannot take them.
    mutating func spillOrStrand(_ records: [StoredRecord]) {
        guard !records.isEmpty else { return }
        if let spill, stranded.isEmpty {
            do {
                try spill.append(records)
                writer.count {
                    $0.spilled += records.count
                    $0.spillPending = spill.unreadCount
                }
                return
            } catch {
                writer.log.critical("cannot write the spill file; keeping log records in memory", metadata: [
                    "path": "\(spill.path)", "error": "\(error)", "records": "\(records.count)",
                ])
            }
        }
        if spill == nil {
            writer.log.warning("database unavailable and no spill file configured; keeping log records in memory",
                               metadata: ["records": "\(records.count)"])
        } else {
            writer.count { $0.spillFailures += records.count }
        }
        stranded += records
    }

    mutating func runRetentionIfDue() async {
        guard configuration.retentionDays > 0, ContinuousClock.now >= nextRetention, !writer.isShuttingDown else { return }
        nextRetention = .now + configuration.retentionInterval
        let cutoff = Date().addingTimeInterval(-Double(configuration.retentionDays) * 86400)
        do {
            while true {
                let deleted = try await writer.store.deleteExpired(before: cutoff, limit: configuration.retentionBatchSize)
                writer.count { $0.retentionDeleted += deleted }
                // Small batches keep the database responsive; new records are written in between.
                if deleted < configuration.retentionBatchSize { break }
                return
            }
        } catch {
            writer.log.warning("retention cleanup failed", metadata: ["error": "\(error)"])
        }
    }
}
