import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import NIOCore
import Testing

/// A store that can be taken down, can refuse marked records, and remembers every batch it stored.
final class FlakyStore: LogStore {
    struct Refused: Error {}
    let inner: any LogStore
    private let state = NIOLockedValueBox((down: false, batches: [[UUID]](), refuseNotes: false, held: false,
                                           hung: false))

    init(_ inner: any LogStore) { self.inner = inner }

    var isDown: Bool {
        get { state.withLockedValue { $0.down } }
        set { state.withLockedValue { $0.down = newValue } }
    }
    var refuseNotes: Bool {
        get { state.withLockedValue { $0.refuseNotes } }
        set { state.withLockedValue { $0.refuseNotes = newValue } }
    }
    /// While set, writes wait: the database is up but slower than the records arriving.
    var isHeld: Bool {
        get { state.withLockedValue { $0.held } }
        set { state.withLockedValue { $0.held = newValue } }
    }
    /// While set, writes and pings hang and ignore cancellation, like a client waiting on a dead connection.
    var isHung: Bool {
        get { state.withLockedValue { $0.hung } }
        set { state.withLockedValue { $0.hung = newValue } }
    }
    var batches: [[UUID]] { state.withLockedValue { $0.batches } }

    private func hangWhileHung() async {
        // An unstructured task's value is awaited without passing cancellation on.
        await Task.detached { [state] in
            while state.withLockedValue({ $0.hung }) { try? await Task.sleep(for: .milliseconds(2)) }
        }.value
    }
    var storedIDs: [UUID] { batches.flatMap { $0 } }

    func migrate() async throws { try await inner.migrate() }
    func ping() async throws {
        await hangWhileHung()
        if isDown { throw Refused() }
    }
    func write(_ records: [StoredRecord]) async throws {
        while isHeld { try await Task.sleep(for: .milliseconds(2)) }
        await hangWhileHung()
        if isDown { throw Refused() }
        for record in records {
            guard case .event(let row) = record, row.eventType == "poison" else { continue }
            // A poisoned row is refused; its error note only when `refuseNotes` is set.
            if !row.meta.contains("chronicle_storage_error") || refuseNotes { throw Refused() }
        }
        try await inner.write(records)
        let ids = records.compactMap { record -> UUID? in
            if case .event(let row) = record { return row.id }
            return nil
        }
        state.withLockedValue { $0.batches.append(ids) }
    }
    func deleteExpired(before cutoff: Date, limit: Int) async throws -> Int {
        try await inner.deleteExpired(before: cutoff, limit: limit)
    }
    func close() async throws { try await inner.close() }
}

/// A running writer and the service group that runs it.
struct RunningWriter {
    let writer: LogWriter
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(_ store: any LogStore, _ configure: (inout LogWriter.Configuration) -> Void = { _ in }) -> RunningWriter {
        var configuration = LogWriter.Configuration()
        configuration.initialRetryDelay = .milliseconds(5)
        configuration.maxRetryDelay = .milliseconds(20)
        configure(&configuration)
        var logger = Logger(label: "test-writer")
        logger.logLevel = .critical
        let writer = LogWriter(store: store, configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [writer], logger: logger))
        return RunningWriter(writer: writer, group: group, task: Task { try await group.run() })
    }

    /// Graceful shutdown: returns once everything queued is written or spilled.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

func event(_ type: String = "test_event", index: Int = 0) -> LogEntry {
    .workflow(.event(GenericEvent(type: type, data: ["index": .integer(Int64(index))], time: Date())))
}

func ids(_ entries: [LogEntry]) -> [UUID] {
    entries.compactMap { if case .workflow(.event(let event)) = $0 { return event.id } else { return nil } }
}

func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}

@Suite("Log writer")
struct LogWriterTests {
    /// A batch is written when it reaches batch_size; the remainder when flushed.
    @Test func batchesBySize() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        let running = RunningWriter.start(store) {
            $0.batchSize = 10
            $0.flushInterval = .seconds(60)
        }
        let entries = (0..<25).map { event(index: $0) }
        for entry in entries { running.writer.record(entry) }
        #expect(try await eventually { store.batches.count == 2 })
        #expect(store.batches.map(\.count) == [10, 10])
        await running.writer.flush()
        #expect(store.batches.map(\.count) == [10, 10, 5])
        #expect(store.storedIDs == ids(entries))
        try await running.stop()
        await db.close()
    }

    /// A trickle is written within the flush interval of its oldest record, not postponed by new arrivals.
    @Test func flushIntervalBoundsDelay() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        let running = RunningWriter.start(store) {
            $0.batchSize = 1000
            $0.flushInterval = .milliseconds(100)
        }
        let start = ContinuousClock.now
        var firstWrite: Duration?
        for index in 0..<40 {
            running.writer.record(event(index: index))
            try await Task.sleep(for: .milliseconds(10))
            if firstWrite == nil, !store.batches.isEmpty { firstWrite = ContinuousClock.now - start }
        }
        // Written while records were still arriving: the trickle did not postpone the batch.
        _ = try #require(firstWrite)
        await running.writer.flush()
        #expect(store.storedIDs.count == 40)
        try await running.stop()
        await db.close()
    }

    /// Records waiting for their flush deadline leave the writer asleep: a cancelled deadline timer once
    /// woke it, which made it spin (creating and cancelling timers) until the deadline passed.
    @Test func writerSleepsUntilDue() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        let running = RunningWriter.start(store) {
            $0.batchSize = 10
            $0.flushInterval = .seconds(60)
        }
        for round in 0..<5 {
            for index in 0..<11 { running.writer.record(event(index: round * 11 + index)) }
            try await Task.sleep(for: .milliseconds(40))
        }
        #expect(try await eventually { store.batches.count == 5 })
        let settled = running.writer.waitCount
        try await Task.sleep(for: .milliseconds(200))
        // Five rounds need a handful of waits each; a spinning writer waits thousands of times.
        #expect(settled < 100)
        #expect(running.writer.waitCount - settled <= 2, "the writer stays asleep while nothing is due")
        await running.writer.flush()
        #expect(store.storedIDs.count == 55)
        try await running.stop()
        await db.close()
    }

    /// A record the database refuses does not take its neighbours down; it is stored as an error note.
    @Test func poisonedRecordIsIsolated() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        let running = RunningWriter.start(store) { $0.batchSize = 10 }
        let entries = (0..<4).map { event(index: $0) } + [event("poison")] + (4..<9).map { event(index: $0) }
        for entry in entries { running.writer.record(entry) }
        await running.writer.flush()
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events WHERE event_type = 'test_event'") == "9")
        #expect(running.writer.statistics.replacedRecords == 1)
        #expect(running.writer.statistics.deadLettered == 0)
        try await running.stop()
        await db.close()
    }

    /// A refused LLM call keeps its row, with the payload replaced by an error note.
    @Test func refusedCallBecomesNote() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        let running = RunningWriter.start(store) { $0.batchSize = 10 }
        running.writer.record(event(index: 1))
        running.writer.record(.workflow(.event(GenericEvent(type: "poison", data: ["big": "payload"]))))
        running.writer.record(event(index: 2))
        await running.writer.flush()
        let rows = try await db.rows("SELECT event_type, CAST(meta AS text) AS meta FROM chronicle_events ORDER BY created_at")
        #expect(rows.count == 3)
        // The refused row keeps its identity; its payload is replaced by a note saying why.
        let note = try #require(rows.first { $0["event_type"] == "poison" })
        #expect(json(note["meta"] ?? nil)?["chronicle_storage_error"] != nil)
        #expect(running.writer.statistics.replacedRecords == 1)
        try await running.stop()
        await db.close()
    }

    /// A record refused even as a note goes to the dead-letter file, never silently away.
    @Test func deadLetter() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.refuseNotes = true
        let deadLetterPath = db.directory.appendingPathComponent("dead.jsonl").path
        let running = RunningWriter.start(store) { $0.deadLetterPath = deadLetterPath }
        running.writer.record(.workflow(.event(GenericEvent(type: "poison"))))
        running.writer.record(event(index: 1))
        await running.writer.flush()
        let dead = try String(contentsOfFile: deadLetterPath, encoding: .utf8)
        #expect(dead.contains("poison"))
        #expect(running.writer.statistics.deadLettered == 1)
        #expect(store.storedIDs.count == 1)
        try await running.stop()
        await db.close()
    }

    /// While the database is down, records overflow to the spill file; when it is back every record is
    /// stored exactly once, in order.
    @Test func outageSpillsAndReplaysInOrder() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isDown = true
        let spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        let running = RunningWriter.start(store) {
            $0.batchSize = 5
            $0.flushInterval = .milliseconds(10)
            $0.maxBufferedRecords = 8
            $0.spillPath = spillPath
        }
        let entries = (0..<60).map { event(index: $0) }
        for (index, entry) in entries.enumerated() {
            running.writer.record(entry)
            if index % 10 == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(try await eventually { running.writer.statistics.spilled > 0 })
        #expect(store.storedIDs.isEmpty)
        store.isDown = false
        #expect(try await eventually {
            await running.writer.flush()
            return store.storedIDs.count == 60
        })
        #expect(store.storedIDs == ids(entries))
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "60")
        #expect(try String(contentsOfFile: spillPath, encoding: .utf8).isEmpty)
        try await running.stop()
        await db.close()
    }

    /// Memory stays bounded while the database is up but slow: past the bound records go to the spill
    /// file, and every record is stored once, in order, when the database catches up.
    @Test func boundedWhileDatabaseIsUp() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isHeld = true
        let running = RunningWriter.start(store) {
            $0.batchSize = 10
            $0.flushInterval = .milliseconds(10)
            $0.maxBufferedRecords = 20
            $0.spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        }
        let entries = (0..<200).map { event(index: $0) }
        for entry in entries { running.writer.record(entry) }
        let statistics = running.writer.statistics
        #expect(statistics.queued <= 20, "memory holds at most the bound")
        #expect(statistics.spilled >= 200 - 20 - 10, "the rest went to the spill file")
        #expect(statistics.failedBatches == 0)
        store.isHeld = false
        #expect(try await eventually {
            await running.writer.flush()
            return store.storedIDs.count == 200
        })
        #expect(store.storedIDs == ids(entries))
        #expect(running.writer.statistics.spillPending == 0)
        // Once the spill is replayed, records queue in memory again.
        running.writer.record(event(index: 200))
        #expect(running.writer.statistics.queued + store.storedIDs.count == 201)
        #expect(running.writer.statistics.spilled == statistics.spilled)
        try await running.stop()
        await db.close()
    }

    /// Large prompts are bounded by size, not only by count: memory holds at most `maxBufferedBytes` of
    /// them, a batch at most `maxBatchBytes`, and every call is still stored, in order.
    @Test func boundedByBytes() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isHeld = true
        let running = RunningWriter.start(store) {
            $0.batchSize = 100
            $0.flushInterval = .milliseconds(10)
            $0.maxBufferedBytes = 1_000_000
            $0.maxBatchBytes = 350_000
            $0.spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        }
        let prompt = String(repeating: "x", count: 100_000)
        let body = #"{"model":"m","messages":[{"role":"user","content":"\#(prompt)"}]}"#
        let calls: [LogEntry] = try (0..<30).map { _ in
            let (wire, options) = try #require(WireChatRequest.scan(ByteBuffer(string: body)))
            return .call(CallLogRecord(id: .v7(), timestamp: Date(), request: .wire(wire), options: options,
                                       provider: "p", model: "m", totalLatency: .milliseconds(1)))
        }
        for call in calls { running.writer.record(call) }
        let statistics = running.writer.statistics
        #expect(statistics.queuedBytes <= 1_000_000, "memory holds at most the byte bound")
        #expect(statistics.queued < 12)
        #expect(statistics.spilled > 0, "the rest went to the spill file")
        store.isHeld = false
        #expect(try await eventually {
            await running.writer.flush()
            return store.storedIDs.count == calls.count
        })
        let callIDs = calls.compactMap { if case .call(let call) = $0 { return call.id } else { return nil } }
        #expect(store.storedIDs == callIDs)
        #expect(store.batches.allSatisfy { $0.count <= 3 }, "no batch holds more than the batch byte bound")
        try await running.stop()
        await db.close()
    }

    /// A write that hangs and ignores cancellation counts as failed after `writeTimeout`: the writer retries
    /// instead of stalling, and every record is stored once the database answers again.
    @Test func hungWriteDoesNotStallTheWriter() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isHung = true
        let running = RunningWriter.start(store) {
            $0.batchSize = 5
            $0.flushInterval = .milliseconds(10)
            $0.maxBufferedRecords = 10
            $0.writeTimeout = .milliseconds(50)
            $0.spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        }
        let entries = (0..<20).map { event(index: $0) }
        for entry in entries { running.writer.record(entry) }
        #expect(try await eventually { running.writer.statistics.failedBatches >= 2 })
        store.isHung = false
        #expect(try await eventually {
            await running.writer.flush()
            return Set(store.storedIDs).count == 20
        }, "\(running.writer.statistics) stored \(store.storedIDs.count) hung \(store.isHung)")
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "20")
        try await running.stop()
        await db.close()
    }

    /// A shutdown while the database is down, with newer records already spilled: the queue goes ahead of
    /// them in the spill file, so the next start stores everything in order.
    @Test func shutdownDuringOutageKeepsOrder() async throws {
        try await shutdownDuringOutage(maxBufferedRecords: 8) { spilled in
            #expect(spilled > 0)
        }
    }

    /// The writer takes (and converts) the next batch while the current one is being written: when the
    /// database is down at shutdown, the failed batch, the one taken after it and the rest of memory are
    /// saved in that order, ahead of what was spilled, and replayed in order at the next start.
    @Test func shutdownDuringOutageKeepsOrderOfTheBatchTakenAhead() async throws {
        try await shutdownDuringOutage(maxBufferedRecords: 20) { spilled in
            #expect(spilled == 10)
        }
    }

    /// Records 30 events with the database down and memory bounded at `maxBufferedRecords`, checks the
    /// spill count, shuts down, and expects a second writer to store all 30 in order.
    private func shutdownDuringOutage(maxBufferedRecords: Int, checkSpilled: (Int) -> Void) async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isDown = true
        let spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        let first = RunningWriter.start(store) {
            $0.batchSize = 5
            $0.maxBufferedRecords = maxBufferedRecords
            $0.spillPath = spillPath
        }
        let entries = (0..<30).map { event(index: $0) }
        for entry in entries { first.writer.record(entry) }
        checkSpilled(first.writer.statistics.spilled)
        try await first.stop()
        #expect(store.storedIDs.isEmpty)
        store.isDown = false
        let second = RunningWriter.start(store) { $0.spillPath = spillPath }
        #expect(try await eventually { store.storedIDs.count == 30 })
        #expect(store.storedIDs == ids(entries))
        try await second.stop()
        await db.close()
    }

    /// Shutting down while the database is down spills everything; the next start replays it.
    @Test func restartReplaysSpill() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isDown = true
        let spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        let first = RunningWriter.start(store) { $0.spillPath = spillPath }
        let entries = (0..<30).map { event(index: $0) }
        for entry in entries { first.writer.record(entry) }
        try await first.stop()
        #expect(store.storedIDs.isEmpty)
        store.isDown = false
        let second = RunningWriter.start(store) { $0.spillPath = spillPath }
        #expect(try await eventually { store.storedIDs.count == 30 })
        #expect(store.storedIDs == ids(entries))
        try await second.stop()
        await db.close()
    }

    /// Graceful shutdown with a full queue writes everything before returning.
    @Test(arguments: Backend.available)
    func shutdownWritesEverything(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let running = RunningWriter.start(db.store) {
            $0.batchSize = 100
            $0.flushInterval = .seconds(60)
        }
        for index in 0..<2500 { running.writer.record(event(index: index)) }
        try await running.stop()
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "2500")
        await db.close()
    }

    /// PostgreSQL refusing connections mid-run, then coming back: every record arrives exactly once.
    @Test func postgresOutage() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let db = try await TestDatabase.make(.postgres)
        let running = RunningWriter.start(db.store) {
            $0.batchSize = 10
            $0.flushInterval = .milliseconds(20)
            $0.maxBufferedRecords = 20
            $0.writeTimeout = .milliseconds(300)
            $0.spillPath = db.directory.appendingPathComponent("spill.jsonl").path
        }
        for index in 0..<30 { running.writer.record(event(index: index)) }
        await running.writer.flush()
        // The outage: no new connections, existing ones cut.
        try await db.admin("ALTER DATABASE \(db.databaseName) ALLOW_CONNECTIONS false")
        #expect(try await eventually {
            try await db.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(db.databaseName)'")
            return try await db.adminScalar("SELECT CAST(count(*) AS text) FROM pg_stat_activity WHERE datname = '\(db.databaseName)'") == "0"
        })
        for index in 30..<150 {
            running.writer.record(event(index: index))
            if index % 20 == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        // Past the memory bound records spill at once; the writer's attempts fail until the database is back.
        #expect(try await eventually(timeout: .seconds(20)) {
            running.writer.statistics.spilled > 0 && running.writer.statistics.failedBatches > 0
        })
        try await db.admin("ALTER DATABASE \(db.databaseName) ALLOW_CONNECTIONS true")
        #expect(try await eventually {
            await running.writer.flush()
            return try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "150"
        })
        #expect(running.writer.statistics.failedBatches > 0)
        #expect(running.writer.statistics.spilled > 0, "\(running.writer.statistics)")
        let distinct = try await db.scalar("SELECT CAST(count(DISTINCT id) AS text) FROM chronicle_events")
        #expect(distinct == "150")
        try await running.stop()
        await db.close()
    }
}

@Suite("Log writer: told about stored records")
struct LogWriterStoredTests {
    /// `onStored` hears of each record once the database has it, not before, while it is down, nor twice;
    /// a poisoned record that became a note is not announced as stored.
    @Test func announcesRecordsOnceStored() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isDown = true
        let announced = NIOLockedValueBox([UUID]())
        let running = RunningWriter.start(store) {
            $0.batchSize = 5
            $0.flushInterval = .milliseconds(10)
            $0.onStored = { records in
                // Stored by then: every announced row is already in the store's batches.
                let stored = Set(store.storedIDs)
                let rows = records.compactMap { record -> UUID? in
                    if case .event(let row) = record { return row.id }
                    return nil
                }
                #expect(rows.allSatisfy { stored.contains($0) })
                announced.withLockedValue { $0.append(contentsOf: rows) }
            }
        }
        let entries = (0..<12).map { event(index: $0) }
        for entry in entries { running.writer.record(entry) }
        try await Task.sleep(for: .milliseconds(60))
        #expect(announced.withLockedValue { $0 }.isEmpty)
        store.isDown = false
        running.writer.record(.workflow(.event(GenericEvent(type: "poison"))))
        await running.writer.flush()
        #expect(announced.withLockedValue { $0 } == ids(entries))
        try await running.stop()
        await db.close()
    }
}
