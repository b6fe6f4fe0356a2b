import ChronicleCore
@testable import ChronicleStorage
import Foundation
import PostgresNIO
import SQLiteNIO
import Testing

/// Event rows are stored in bulk (one multi-row insert per chunk in SQLite, one `unnest` of column arrays in
/// PostgreSQL); each column must hold exactly what a one-row insert with a placeholder per value stores.
@Suite("Bulk event inserts")
struct BulkInsertTests {
    /// A row with every column set, awkward values included.
    static func fullRow() -> EventRow {
        var call = sampleCall()
        call.options.metadata.runID = .v7()
        call.options.metadata.stepID = .v7()
        call.options.metadata.stepIndex = 3
        call.options.metadata.promptID = "prompt \"quoted\" \\ back"
        call.options.metadata.promptVersion = 7
        call.options.metadata.workflowID = "wf"
        call.options.metadata.workflowName = "Wörkflow ✓"
        call.options.metadata.organizationID = "org"
        call.options.metadata.projectID = "proj"
        call.options.metadata.extra = ["k": ["nested": [1, 2.5, "x"]]]
        call.options.internalMetadata.gatewayKey = "team-a"
        call.options.internalMetadata.userID = "internal-user"
        call.overhead = .nanoseconds(300_000_001)  // a double with no short decimal form
        call.error = CallError(kind: "upstream", message: "boom {\"a\": 1}", status: 502)
        return EventRow(call)
    }

    /// A generic event: most columns NULL.
    static func sparseRow() -> EventRow {
        EventRow(GenericEvent(type: "an_event", data: ["x": 1]), now: Date(timeIntervalSince1970: 1_700_000_000.123))
    }

    static let columnsAsText = EventColumns.names.filter { $0 != "id" }

    func storedColumns(_ db: TestDatabase, id: UUID) async throws -> [String: String?] {
        let select = Self.columnsAsText.map { name in
            name == "created_at" ? db.ms(name) : "CAST(\(name) AS text) AS \(name)"
        }.joined(separator: ", ")
        let idText = id.uuidString.lowercased()
        return try #require(try await db.rows("SELECT \(select) FROM chronicle_events WHERE CAST(id AS text) = '\(idText)'").first)
    }

    /// Inserts one row the way every row was inserted before bulk inserts: a placeholder per value.
    func insertOneByPlaceholders(_ db: TestDatabase, _ row: EventRow) async throws {
        switch db.store {
        case let sqlite as SQLiteLogStore:
            let statement = SQLiteDialect().insertEvents([row])
            _ = try await sqlite.query(statement.sql, statement.values.map(SQLiteLogStore.bind))
        case let postgres as PostgresLogStore:
            _ = try await postgres.client.query(try PostgresLogStore.query(PostgresDialect().insertEvents([row])))
        default:
            Issue.record("unknown store")
        }
    }

    @Test(arguments: Backend.available)
    func bulkInsertStoresWhatOneRowInsertsStore(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        for original in [Self.fullRow(), Self.sparseRow()] {
            var reference = original
            reference.id = .v7()
            try await insertOneByPlaceholders(db, reference)
            // Two rows in the batch, so that the bulk path (not a one-row special case) stores it.
            var other = original
            other.id = .v7()
            try await db.store.write([.event(original), .event(other)])
            let expected = try await storedColumns(db, id: reference.id)
            let stored = try await storedColumns(db, id: original.id)
            for name in Self.columnsAsText {
                #expect(stored[name] == expected[name], "\(backend) column \(name)")
            }
        }
        await db.close()
    }

    /// More rows than one SQLite statement takes, a row twice in one batch, and a row already stored: each
    /// is stored once, and workflow events in the same batch still apply.
    @Test(arguments: Backend.available)
    func largeBatchesAndDuplicates(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let rows = (0..<1_234).map { _ in StoredRecord.event(EventRow(sampleCall())) }
        try await db.store.write(Array(rows.prefix(10)))
        let runID = UUID.v7()
        try await db.store.write(rows + [rows[5], .workflow(.runStart(RunStartEvent(id: runID, name: "r", time: Date())))])
        let count = try await db.rows("SELECT CAST(COUNT(*) AS text) AS n FROM chronicle_events").first?["n"] ?? nil
        #expect(count == "1234")
        let runs = try await db.rows("SELECT name FROM chronicle_runs")
        #expect(runs.map { $0["name"] ?? nil } == ["r"])
        await db.close()
    }

    /// A batch of event rows alone is one statement without a transaction around it; a row PostgreSQL
    /// refuses still fails the write, and nothing of the batch is stored.
    @Test func postgresRefusedRowFailsTheWrite() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let db = try await TestDatabase.make(.postgres)
        var refused = EventRow(sampleCall())
        refused.chatRequest = "{not json"
        await #expect(throws: (any Error).self) {
            try await db.store.write([.event(EventRow(sampleCall())), .event(refused)])
        }
        let count = try await db.rows("SELECT CAST(COUNT(*) AS text) AS n FROM chronicle_events").first?["n"] ?? nil
        #expect(count == "0")
        await db.close()
    }

    /// SQLite binds each row straight from its fields, as the per-value mapping would.
    @Test func sqliteBindsMatchPerValueMapping() {
        for row in [Self.fullRow(), Self.sparseRow()] {
            var binds: [SQLiteData] = []
            SQLiteEventInsert.append(row, to: &binds)
            #expect(binds == EventColumns.values(row).map(SQLiteLogStore.bind))
        }
    }

    /// Every value of a row is of its column's declared kind.
    @Test func valuesMatchColumnKinds() {
        for row in [Self.fullRow(), Self.sparseRow()] {
            for (value, column) in zip(EventColumns.values(row), EventColumns.columns) {
                switch (value, column.kind) {
                case (.null, _), (.text, .text), (.json, .json), (.uuid, .uuid), (.int, .int), (.bool, .bool),
                     (.double, .double), (.time, .time):
                    break
                default:
                    Issue.record("column \(column.name) has a value of another kind: \(value)")
                }
            }
        }
    }
}
