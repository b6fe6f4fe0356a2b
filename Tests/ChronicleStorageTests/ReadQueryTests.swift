@testable import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

@Suite("Read queries: plans and what a call's detail shows")
struct ReadQueryTests {
    /// SQLite's plan for a query: one line per step.
    static func plan(_ store: SQLiteLogStore, _ query: (sql: String, values: [SQLValue])) async throws -> [String] {
        try await store.fetchText("EXPLAIN QUERY PLAN " + query.sql, query.values).compactMap { $0["detail"] }
    }

    /// The calls list walks the time index for its newest rows, unfiltered, by time and after a cursor, instead
    /// of sorting the whole table (the select list's text aliases must not stand in for the columns).
    @Test func callsPagesWalkTheTimeIndex() async throws {
        let database = try await TestDatabase.make(.sqlite)
        let store = try #require(database.store as? SQLiteLogStore)
        var queries: [ListQuery] = [ListQuery()]
        var since = ListQuery()
        since.since = Date(timeIntervalSinceNow: -3600)
        queries.append(since)
        var after = ListQuery()
        after.cursor = Cursor(milliseconds: 1_700_000_000_000, id: UUID().uuidString.lowercased()).encoded
        queries.append(after)
        var failed = ListQuery()
        failed.status = "error"
        queries.append(failed)
        for query in queries {
            let steps = try await Self.plan(store, try store.callsQuery(query))
            #expect(steps.contains { $0.contains("USING INDEX chronicle_events_created_at_idx") }, "\(steps)")
            #expect(!steps.contains("USE TEMP B-TREE FOR ORDER BY"), "\(steps)")
        }
        // Filtered by application alone: its own index, newest first, no sort.
        var application = ListQuery()
        application.application = "agent"
        let steps = try await Self.plan(store, try store.callsQuery(application))
        #expect(steps.contains { $0.contains("USING INDEX chronicle_events_app_created_at_idx") }, "\(steps)")
        #expect(!steps.contains("USE TEMP B-TREE FOR ORDER BY"), "\(steps)")
        await database.close()
    }

    /// A call that succeeded after a fallback keeps what was tried, in its response metadata.
    @Test func fallbackAttemptsAreStored() throws {
        var call = sampleCall()
        call.attempts = [
            AttemptRecord(provider: "openai", model: "gpt-flaky", errorKind: .server, status: 500,
                          message: "overloaded", latencyMs: 12),
            AttemptRecord(provider: "openai", model: "gpt-4o-mini", errorKind: nil, status: 200, message: nil, latencyMs: 80),
        ]
        let row = EventRow(call)
        let meta = try JSONCoding.decode(JSONValue.self, from: Array((row.responseMeta ?? "null").utf8))
        #expect(meta["load_duration"] == 5)
        let attempts = try #require(meta["attempts"]?.arrayValue)
        #expect(attempts.count == 2)
        #expect(attempts[0]["model"] == "gpt-flaky")
        #expect(attempts[0]["status"] == 500)
        #expect(attempts[1]["latency_ms"] == 80)
        // A first-try success adds nothing.
        call.attempts = [call.attempts[1]]
        #expect(EventRow(call).responseMeta == #"{"load_duration":5}"#)
    }

    /// What the live tail pushes for a stored call is what `GET /v1/calls` lists for it, member for member (a
    /// column added to the list must be added to the tail too).
    @Test(arguments: Backend.available)
    func tailSummaryMatchesTheListedCall(backend: Backend) async throws {
        let database = try await TestDatabase.make(backend)
        var call = sampleCall()
        call.timestamp = Date(timeIntervalSince1970: 1_764_600_000.123)
        call.options.metadata.runID = UUID()
        call.options.metadata.extra = ["team": "research"]
        let row = EventRow(call)
        try await database.store.write([.event(row)])
        let reader = try #require(database.store as? any LogReader)
        let listed = try await reader.listCalls(ListQuery()).items
        #expect(listed.count == 1)
        #expect(listed.first == row.summaryJSON)
        #expect(Set(row.summaryJSON.objectValue?.keys ?? [:].keys) == Set(ReadColumns.callSummary.map(\.0)))
        await database.close()
    }
}
