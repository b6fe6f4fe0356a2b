import ChronicleCore
@testable import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

@Suite("Retention")
struct RetentionTests {
    static func expiredCalls(_ count: Int, daysAgo: Double = 40) -> [StoredRecord] {
        (0..<count).map { _ in
            var call = sampleCall()
            call.timestamp = Date().addingTimeInterval(-daysAgo * 86400)
            return StoredRecord(.call(call))
        }
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "test-retention")
        logger.logLevel = .critical
        return logger
    }

    /// One pass deletes a whole backlog, in batches with a pause between them, and keeps recent rows.
    @Test(arguments: Backend.available)
    func onePassDeletesTheBacklog(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let expired = Self.expiredCalls(10_000)
        for start in stride(from: 0, to: expired.count, by: 2000) {
            try await db.store.write(Array(expired[start..<start + 2000]))
        }
        let recent = sampleCall()
        try await db.store.write([StoredRecord(.call(recent))])
        let clock = ManualClock(autoAdvance: true)
        var configuration = RetentionService.Configuration()
        configuration.batchSize = 1000
        configuration.pause = .milliseconds(50)
        let retention = RetentionService(store: db.store, configuration: configuration, clock: clock,
                                         logger: Self.quietLogger())
        let deleted = try await retention.runPass()
        #expect(deleted == 10_000)
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "1")
        #expect(try await db.scalar("SELECT CAST(id AS text) FROM chronicle_events") == recent.id.uuidString.lowercased())
        // A pause after each full batch: ten full batches, then a short one that ends the pass.
        #expect(clock.sleeps == Array(repeating: .milliseconds(50), count: 10))
        await db.close()
    }

    /// Retention runs as its own service: a server that records nothing still cleans up, at start and then
    /// at every interval.
    @Test(arguments: Backend.available)
    func idleServerCleansUp(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        try await db.store.write(Self.expiredCalls(3))
        let clock = ManualClock()
        var configuration = RetentionService.Configuration()
        configuration.interval = .seconds(3600)
        let retention = RetentionService(store: db.store, configuration: configuration, clock: clock,
                                         logger: Self.quietLogger())
        let group = ServiceGroup(configuration: .init(services: [retention], logger: Self.quietLogger()))
        let task = Task { try await group.run() }
        func count() async throws -> String? {
            try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events")
        }
        #expect(try await eventually { try await count() == "0" })
        await clock.waitForPendingSleeps()
        // Rows expire while nothing is recorded; the next interval removes them.
        try await db.store.write(Self.expiredCalls(5) + [StoredRecord(.call(sampleCall()))])
        #expect(try await count() == "6")
        clock.advance(by: .seconds(3600))
        #expect(try await eventually { retention.statistics.passes == 2 })
        #expect(try await count() == "1")
        #expect(retention.statistics.deleted == 8)
        await group.triggerGracefulShutdown()
        try await task.value
        await db.close()
    }

    /// Zero retention days keeps everything: the service deletes nothing and idles until shutdown.
    @Test func zeroDaysKeepsEverything() async throws {
        let db = try await TestDatabase.make(.sqlite)
        try await db.store.write(Self.expiredCalls(2, daysAgo: 4000))
        var configuration = RetentionService.Configuration()
        configuration.retentionDays = 0
        let retention = RetentionService(store: db.store, configuration: configuration, clock: ManualClock(),
                                         logger: Self.quietLogger())
        let group = ServiceGroup(configuration: .init(services: [retention], logger: Self.quietLogger()))
        let task = Task { try await group.run() }
        await group.triggerGracefulShutdown()
        try await task.value
        #expect(retention.statistics.passes == 0)
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "2")
        await db.close()
    }
}
