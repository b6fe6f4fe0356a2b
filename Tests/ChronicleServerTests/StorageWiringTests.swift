import ChronicleCore
@testable import ChronicleServer
import ChronicleStorage
import Foundation
import Logging
import Testing

@Suite("Storage wiring")
struct StorageWiringTests {
    /// The server runs retention as a service of its own, so it does not wait for records to arrive, on a
    /// SQLite connection of its own, so that its deletes never land inside a writer transaction.
    @Test func retentionIsAServiceOfItsOwn() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-wiring-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "wiring")
        logger.logLevel = .critical
        var settings = ServerSettings()
        settings.database = directory.appendingPathComponent("chronicle.db").path
        settings.storage.retentionDays = 30

        let storage = try await OpenedStorage.open(settings: settings, metricsFactory: nil, logger: logger)
        let retention = try #require(storage.retention)
        let store = try #require(storage.store as? SQLiteLogStore)
        let retentionStore = try #require(retention.store as? SQLiteLogStore)
        #expect(retention.configuration.retentionDays == 30)
        let sameConnection = retentionStore === store
        #expect(!sameConnection)
        let old = GenericEvent(type: "old", time: Date().addingTimeInterval(-40 * 86400))
        try await store.write([StoredRecord(.workflow(.event(old)))])
        #expect(try await retention.runPass() == 1)
        await storage.close()

        settings.storage.retentionDays = 0
        let keeping = try await OpenedStorage.open(settings: settings, metricsFactory: nil, logger: logger)
        let noRetention = keeping.retention == nil
        #expect(noRetention)
        await keeping.close()
    }

    /// The journal sits next to the database and spill file by default, under `log_journal_path` when set,
    /// and is absent with `log_journal = false`; an earlier version's spill file is taken over.
    @Test func journalLocation() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-wiring-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "wiring")
        logger.logLevel = .critical
        var settings = ServerSettings()
        settings.database = directory.appendingPathComponent("calls.db").path
        settings.storage.retentionDays = 0

        let opened = try await OpenedStorage.open(settings: settings, metricsFactory: nil, logger: logger)
        #expect(opened.writer?.configuration.journalPath == directory.appendingPathComponent("calls.journal").path)
        await opened.close()

        settings.storage.journalPath = directory.appendingPathComponent("elsewhere").path
        let moved = try await OpenedStorage.open(settings: settings, metricsFactory: nil, logger: logger)
        #expect(moved.writer?.configuration.journalPath == directory.appendingPathComponent("elsewhere").path)
        await moved.close()

        // A spill file of JSON lines left by an earlier version is taken over under the new name.
        let earlier = directory.appendingPathComponent("calls.spill.jsonl")
        var line = try JSONCoding.encode(StoredRecord(.workflow(.event(GenericEvent(type: "left", time: Date())))))
        line.append(UInt8(ascii: "\n"))
        try line.write(to: earlier)
        let takingOver = try await OpenedStorage.open(settings: settings, metricsFactory: nil, logger: logger)
        #expect(takingOver.writer?.configuration.spillPath == directory.appendingPathComponent("calls.spill").path)
        #expect(takingOver.writer?.statistics.spillPending == 1)
        #expect(!FileManager.default.fileExists(atPath: earlier.path))
        await takingOver.close()

        settings.storage.journal = false
        let off = try await OpenedStorage.open(settings: settings, metricsFactory: nil, logger: logger)
        #expect(off.writer != nil)
        #expect(off.writer?.configuration.journalPath == nil)
        await off.close()
    }
}
