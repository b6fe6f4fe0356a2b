@testable import ChronicleStorage
import Testing

/// The log writer's decisions, driven synchronously: records are numbers, waiters are names.
@Suite("Log queue state machine")
struct LogQueueStateMachineTests {
    typealias Machine = LogQueueStateMachine<Int, String>

    private let start = ContinuousClock.now

    private func machine(batchSize: Int = 3, maxRecords: Int = 5, maxBytes: Int = 1000, maxBatchBytes: Int = 1000,
                         spillPending: Bool = false, workPending: Bool = false) -> Machine {
        Machine(limits: .init(batchSize: batchSize, flushInterval: .seconds(1), maxBufferedRecords: maxRecords,
                              maxBufferedBytes: maxBytes, maxBatchBytes: maxBatchBytes),
                spillPending: spillPending, workPending: workPending)
    }

    private func queued(_ record: Int, size: Int = 10, at offset: Duration = .zero) -> Machine.Queued {
        Machine.Queued(record: record, enqueuedAt: start + offset, size: size)
    }

    private func wake(_ action: Machine.RecordAction) -> String?? {
        if case .enqueued(let waiter) = action { return .some(waiter) }
        return nil
    }

    /// The first record wakes a waiting writer (it must set a deadline); the next ones do not until a batch
    /// is full. A signal while the writer is not waiting makes its next wait return at once.
    @Test func wakesTheWriterWhenNeeded() {
        var m = machine()
        #expect(m.wait("writer") == false)
        #expect(wake(m.record(queued(1), spillAvailable: true)) == .some("writer"))
        #expect(m.wait("writer") == false)
        #expect(wake(m.record(queued(2), spillAvailable: true)) == .some(nil))
        #expect(wake(m.record(queued(3), spillAvailable: true)) == .some("writer"), "the batch is full")
        #expect(m.signal() == nil)
        #expect(m.wait("writer") == true, "the signal came first")
        #expect(m.wait("writer") == false)
    }

    /// A batch is due at the batch size, at the oldest record's deadline, while a flush waits, or at
    /// shutdown; it holds at most the batch byte bound, and at least one record.
    @Test func batchesAreDueBySizeTimeFlushAndShutdown() {
        var m = machine()
        _ = m.record(queued(1), spillAvailable: false)
        #expect(m.takeDueBatch(now: start) == nil)
        #expect(m.takeDueBatch(now: start + .seconds(1))?.map(\.record) == [1])
        #expect(m.work == .inProgress)

        for record in 2...5 { _ = m.record(queued(record), spillAvailable: false) }
        #expect(m.takeDueBatch(now: start)?.map(\.record) == [2, 3, 4])
        #expect(m.takeDueBatch(now: start) == nil)
        #expect(m.flush("flush") == false)
        #expect(m.takeDueBatch(now: start)?.map(\.record) == [5], "a waiting flush makes the rest due")

        var bytes = machine(maxBatchBytes: 25)
        for record in 1...3 { _ = bytes.record(queued(record, size: 10), spillAvailable: false) }
        #expect(bytes.takeDueBatch(now: start)?.map(\.record) == [1, 2])
        _ = bytes.record(queued(9, size: 100), spillAvailable: false)
        #expect(bytes.takeDueBatch(now: start + .seconds(1))?.map(\.record) == [3])
        #expect(bytes.takeDueBatch(now: start + .seconds(1))?.map(\.record) == [9], "a large record goes alone")

        var stopping = machine()
        _ = stopping.record(queued(1), spillAvailable: false)
        #expect(stopping.shutdown() == nil)
        #expect(stopping.takeDueBatch(now: start)?.map(\.record) == [1])
        #expect(stopping.wait("writer") == true, "a shutting-down writer does not wait")
    }

    /// Past the count or byte bound records go to the spill file, and every later one follows them there
    /// until the writer has replayed it; memory then takes records again.
    @Test func spillsPastTheBoundsAndKeepsOrder() {
        var m = machine(maxRecords: 2, maxBytes: 100)
        #expect(wake(m.record(queued(1), spillAvailable: true)) != nil)
        #expect(wake(m.record(queued(2), spillAvailable: true)) != nil)
        guard case .appendToSpill = m.record(queued(3), spillAvailable: true) else {
            Issue.record("the count bound spills"); return
        }
        _ = m.spillAppended()
        #expect(m.intake == .spilling)
        #expect(m.takeDueBatch(now: start)?.map(\.record) == [1, 2], "memory holds the oldest: drained now")
        guard case .appendToSpill = m.record(queued(4), spillAvailable: true) else {
            Issue.record("while spilling, records follow the spilled ones"); return
        }
        _ = m.spillAppended()
        let replay = m.idleStep(spillPending: true)
        guard case .replay = replay.step else { Issue.record("memory empty, spill pending: replay"); return }
        let done = m.idleStep(spillPending: false)
        guard case .wait = done.step else { Issue.record("nothing left: wait"); return }
        #expect(m.intake == .memory)
        #expect(m.work == .idle)

        var bytes = machine(maxBytes: 100)
        #expect(wake(bytes.record(queued(1, size: 500), spillAvailable: true)) != nil, "one record always fits")
        guard case .appendToSpill = bytes.record(queued(2, size: 10), spillAvailable: true) else {
            Issue.record("the byte bound spills"); return
        }
        #expect(wake(bytes.record(queued(3), spillAvailable: false)) != nil, "without a spill file memory takes it")
    }

    /// A refusing spill file is reported once per run of failures; the record stays in memory.
    @Test func spillFailuresAreReportedOnce() {
        var m = machine(maxRecords: 1)
        _ = m.record(queued(1), spillAvailable: true)
        #expect(m.spillRefused(queued(2)).report == true)
        #expect(m.spillRefused(queued(3)).report == false)
        #expect(m.buffer.map(\.record) == [1, 2, 3])
        _ = m.spillAppended()
        #expect(m.spillRefused(queued(4)).report == true, "a success ends the run")
    }

    /// A flush returns at once when nothing is queued or in progress; otherwise the writer resumes it once
    /// memory is empty. Work left by an earlier run (the journal's replay) holds flushes too.
    @Test func flushesWaitForAnEmptyQueue() {
        var m = machine()
        #expect(m.flush("early") == true)
        _ = m.record(queued(1), spillAvailable: false)
        #expect(m.flush("flush") == false)
        #expect(m.takeDueBatch(now: start)?.map(\.record) == [1])
        let idle = m.idleStep(spillPending: false)
        #expect(idle.resume == ["flush"])
        #expect(m.flush("later") == true)

        var replaying = machine(workPending: true)
        #expect(replaying.flush("flush") == false)
        #expect(replaying.idleStep(spillPending: false).resume == ["flush"])
    }

    /// At shutdown the writer finishes once memory is empty, leaving the spill file for the next start.
    @Test func shutdownFinishesWithoutReplaying() {
        var m = machine(spillPending: true)
        #expect(m.intake == .spilling, "an earlier run's spill comes first")
        #expect(m.wait("writer") == false)
        #expect(m.shutdown() == "writer")
        guard case .finished = m.idleStep(spillPending: true).step else {
            Issue.record("shutting down with memory empty finishes"); return
        }
    }
}
