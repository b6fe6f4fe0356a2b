import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

let runID = UUID(uuidString: "01906a5e-0000-7000-8000-000000000001")!
let step1 = UUID(uuidString: "01906a5e-0000-7000-8000-000000000002")!
let step2 = UUID(uuidString: "01906a5e-0000-7000-8000-000000000003")!

/// Rust Chronicle's `database/testing.rs` event list.
func referenceScenario() -> [LogEntry] {
    var call = sampleCall(id: UUID(uuidString: "01906a5e-0000-7000-8000-0000000000aa")!)
    call.timestamp = time(4)
    call.options.metadata.runID = runID
    call.options.metadata.stepID = step2
    call.options.metadata.extra = ["some_key": "some_value"]
    return [
        .workflow(.runStart(RunStartEvent(id: runID, name: "test run", description: "test description",
                                          application: "test app", environment: "test env", input: ["query": "abc"],
                                          traceID: "0123456789abcdef", spanID: "12345678", tags: ["tag1", "tag2"],
                                          info: ["info1": "value1", "info2": "value2"], time: time(1)))),
        .workflow(.stepStart(StepStartEvent(stepID: step1, runID: runID, time: time(2), type: "step_type",
                                            name: "source_node1", tags: ["dag", "node"], info: ["model": "a_model"],
                                            input: ["task_param": "value"]))),
        .workflow(.stepStart(StepStartEvent(stepID: step2, runID: runID, time: time(3), type: "llm", name: "source_node2",
                                            parentStep: step1, input: ["task_param2": "value"]))),
        .call(call),
        .workflow(.event(GenericEvent(type: "an_event", runID: runID, stepID: step2, data: ["some_data": true],
                                      error: ["message": "an error"], time: time(5)))),
        .workflow(.stepError(StepErrorEvent(stepID: step2, runID: runID, time: time(5), error: ["message": "an error"]))),
        .workflow(.stepEnd(StepEndEvent(stepID: step1, runID: runID, time: time(5), output: ["result": "success"],
                                        info: ["info3": "value3"]))),
        .workflow(.runUpdate(RunUpdateEvent(id: runID, status: "finished", output: ["result": "success"],
                                            info: ["info2": "new_value", "info3": "value3"], time: time(5)))),
    ]
}

func sampleCall(id: UUID = .v7(), streamed: Bool = false) -> CallLogRecord {
    let request = ChatRequest(model: "groq/llama3", messages: [ChatMessage(role: "user", content: .text("hi"))])
    let response = ChatResponse(
        id: "chatcmpl-1", created: 1, model: "llama3-8b-8192",
        choices: [ChatChoice(message: ChatMessage(role: "assistant", content: .text("hello")))],
        usage: Usage(promptTokens: 10, completionTokens: 5, totalTokens: 15,
                     unknownFields: ["prompt_tokens_details": ["cached_tokens": 4],
                                     "completion_tokens_details": ["reasoning_tokens": 2]]))
    return CallLogRecord(
        id: id, timestamp: Date(), request: .typed(request),
        options: RequestOptions(apiKey: "sk-secret-never-stored", metadata: RequestMetadata(application: "app", environment: "dev", userID: "u1")),
        provider: "groq", model: "groq/llama3", response: response, responseMeta: ["load_duration": 5], error: nil,
        upstreamLatency: .milliseconds(120), totalLatency: .milliseconds(125), overhead: .microseconds(250),
        numRetries: 1, wasRateLimited: true, streamed: streamed, httpStatus: 200, chunkCount: 3, attempts: [])
}

@Suite("Log stores")
struct StoreTests {
    /// Rust Chronicle's test scenario: runs, steps and events end up as its tests expect, on both backends.
    @Test(arguments: Backend.available)
    func referenceScenarioWrites(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        try await db.store.write(referenceScenario().map { StoredRecord($0) })

        let run = try #require(try await db.rows("""
            SELECT name, status, CAST(info AS text) AS info, CAST(output AS text) AS output, \(db.tags("tags")),
              \(db.ms("created_at")), \(db.ms("updated_at")) FROM chronicle_runs
            """).first)
        #expect(run["name"] == "test run")
        #expect(run["status"] == "finished")
        #expect(json(run["info"] ?? nil) == ["info1": "value1", "info2": "new_value", "info3": "value3"])
        #expect(json(run["output"] ?? nil) == ["result": "success"])
        #expect(run["tags"] == "tag1|tag2")
        #expect(run["created_at"] == "1000")
        #expect(run["updated_at"] == "5000")

        let steps = try await db.rows("""
            SELECT CAST(id AS text) AS id, status, CAST(info AS text) AS info, CAST(output AS text) AS output,
              CAST(error AS text) AS error, \(db.ms("start_time")), \(db.ms("end_time")) FROM chronicle_steps ORDER BY start_time
            """)
        #expect(steps.count == 2)
        #expect(steps[0]["status"] == "finished")
        #expect(json(steps[0]["info"] ?? nil) == ["model": "a_model", "info3": "value3"])
        #expect(steps[0]["start_time"] == "2000")
        #expect(steps[0]["end_time"] == "5000")
        #expect(steps[1]["status"] == "error")
        // The error has its own column; the output is untouched.
        #expect(json(steps[1]["error"] ?? nil) == ["message": "an error"])
        #expect(steps[1]["output"] ?? nil == nil)

        let events = try await db.rows("""
            SELECT event_type, model, CAST(meta AS text) AS meta, CAST(error AS text) AS error, \(db.ms("created_at"))
            FROM chronicle_events ORDER BY created_at
            """)
        #expect(events.count == 2)
        #expect(events[0]["event_type"] == "chronicle_llm_request")
        #expect(json(events[0]["meta"] ?? nil) == ["some_key": "some_value"])
        #expect(json(events[0]["error"] ?? nil) == .null)
        #expect(events[0]["created_at"] == "4000")
        #expect(events[1]["event_type"] == "an_event")
        #expect(events[1]["model"] ?? nil == nil)
        #expect(json(events[1]["meta"] ?? nil) == ["some_data": true])
        #expect(json(events[1]["error"] ?? nil) == ["message": "an error"])
        await db.close()
    }

    /// An LLM call row has usage, status, streaming, latency and overhead columns, and never the API key.
    @Test(arguments: Backend.available)
    func callColumns(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let call = sampleCall(streamed: true)
        try await db.store.write([StoredRecord(.call(call))])
        let row = try #require(try await db.rows("""
            SELECT provider, model, application, environment, request_user_id, CAST(input_tokens AS text) AS input_tokens,
              CAST(output_tokens AS text) AS output_tokens, CAST(total_tokens AS text) AS total_tokens,
              CAST(cached_tokens AS text) AS cached_tokens, CAST(reasoning_tokens AS text) AS reasoning_tokens,
              CAST(http_status AS text) AS http_status, CAST(streamed AS text) AS streamed,
              CAST(request_latency_ms AS text) AS request_latency_ms, CAST(total_latency_ms AS text) AS total_latency_ms,
              CAST(overhead_ms AS text) AS overhead_ms, CAST(retries AS text) AS retries,
              CAST(rate_limited AS text) AS rate_limited, CAST(chat_request AS text) AS chat_request,
              CAST(chat_response AS text) AS chat_response, CAST(response_meta AS text) AS response_meta
            FROM chronicle_events
            """).first)
        #expect(row["provider"] == "groq")
        #expect(row["model"] == "llama3-8b-8192")
        #expect(row["application"] == "app")
        #expect(row["request_user_id"] == "u1")
        #expect(row["input_tokens"] == "10")
        #expect(row["output_tokens"] == "5")
        #expect(row["total_tokens"] == "15")
        #expect(row["cached_tokens"] == "4")
        #expect(row["reasoning_tokens"] == "2")
        #expect(row["http_status"] == "200")
        #expect(["1", "true"].contains(row["streamed"] ?? nil))
        #expect(row["request_latency_ms"] == "120")
        #expect(row["total_latency_ms"] == "125")
        #expect(Double((row["overhead_ms"] ?? nil) ?? "") == 0.25)
        #expect(row["retries"] == "1")
        #expect(json(row["chat_request"] ?? nil)?["model"] == "groq/llama3")
        #expect(json(row["chat_response"] ?? nil)?["choices"]?.arrayValue?.first?["message"]?["content"] == "hello")
        #expect(json(row["response_meta"] ?? nil) == ["load_duration": 5])
        let everything = try await db.rows("SELECT CAST(chat_request AS text) AS a, CAST(meta AS text) AS b FROM chronicle_events")
        #expect(!everything.description.contains("sk-secret"))
        await db.close()
    }

    /// Events arriving out of order are never lost and end the same as in order.
    @Test(arguments: Backend.available)
    func outOfOrderEvents(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let scenario = referenceScenario()
        // Reverse: the update and the ends come before their starts; each in its own batch.
        for entry in scenario.reversed() {
            try await db.store.write([StoredRecord(entry)])
        }
        let run = try #require(try await db.rows("""
            SELECT name, status, description, CAST(info AS text) AS info, CAST(output AS text) AS output,
              \(db.ms("created_at")), \(db.ms("updated_at")) FROM chronicle_runs
            """).first)
        #expect(run["name"] == "test run")
        #expect(run["description"] == "test description")
        #expect(run["status"] == "finished")
        #expect(json(run["info"] ?? nil) == ["info1": "value1", "info2": "new_value", "info3": "value3"])
        #expect(json(run["output"] ?? nil) == ["result": "success"])
        #expect(run["created_at"] == "1000")
        #expect(run["updated_at"] == "5000")
        let steps = try await db.rows("""
            SELECT type, name, status, CAST(info AS text) AS info, \(db.ms("start_time")), \(db.ms("end_time"))
            FROM chronicle_steps ORDER BY start_time
            """)
        #expect(steps.map { $0["type"] ?? nil } == ["step_type", "llm"])
        #expect(steps.map { $0["status"] ?? nil } == ["finished", "error"])
        #expect(json(steps[0]["info"] ?? nil) == ["model": "a_model", "info3": "value3"])
        #expect(steps[0]["start_time"] == "2000")
        #expect(steps[0]["end_time"] == "5000")
        await db.close()
    }

    /// run:update without output keeps the stored output; info merges the same on both backends.
    @Test(arguments: Backend.available)
    func updateSemantics(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let id = UUID.v7()
        try await db.store.write([
            StoredRecord(.workflow(.runStart(RunStartEvent(id: id, name: "r", info: ["a": 1, "nested": ["x": 1, "y": 2], "gone": true], time: time(1))))),
            StoredRecord(.workflow(.runUpdate(RunUpdateEvent(id: id, status: "running", output: ["partial": true], time: time(2))))),
            StoredRecord(.workflow(.runUpdate(RunUpdateEvent(id: id, info: ["b": 2, "nested": ["y": 3], "gone": nil], time: time(3))))),
        ])
        let run = try #require(try await db.rows("SELECT status, CAST(info AS text) AS info, CAST(output AS text) AS output FROM chronicle_runs").first)
        #expect(run["status"] == "finished")
        #expect(json(run["output"] ?? nil) == ["partial": true])
        // JSON Merge Patch (RFC 7396): nested objects merge, null removes.
        #expect(json(run["info"] ?? nil) == ["a": 1, "b": 2, "nested": ["x": 1, "y": 3]])
        await db.close()
    }

    /// A step's updates are ordered by event time, not arrival: a `step:state` or `step:error` older than
    /// the step's end, arriving after it, leaves the step finished; a newer one still applies.
    @Test(arguments: Backend.available)
    func lateStepEventKeepsNewerStatus(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let step = UUID.v7()
        func apply(_ event: WorkflowEvent) async throws { try await db.store.write([StoredRecord(.workflow(event))]) }
        func stored() async throws -> [String: String?] {
            try #require(try await db.rows("""
                SELECT status, CAST(error AS text) AS error, \(db.ms("end_time")) FROM chronicle_steps
                """).first)
        }
        try await apply(.stepStart(StepStartEvent(stepID: step, runID: runID, time: time(1), type: "llm")))
        try await apply(.stepEnd(StepEndEvent(stepID: step, runID: runID, time: time(5), output: ["done": true])))
        try await apply(.stepState(StepStateEvent(stepID: step, runID: runID, time: time(3), state: "running")))
        #expect(try await stored()["status"] == "finished")
        try await apply(.stepError(StepErrorEvent(stepID: step, runID: runID, time: time(4), error: ["late": true])))
        var row = try await stored()
        #expect(row["status"] == "finished")
        #expect(row["end_time"] == "5000")
        // A newer state applies, as it did before.
        try await apply(.stepState(StepStateEvent(stepID: step, runID: runID, time: time(6), state: "retrying")))
        row = try await stored()
        #expect(row["status"] == "retrying")
        await db.close()
    }

    /// Writing the same records twice stores them once (replays after an ambiguous failure are safe).
    @Test(arguments: Backend.available)
    func idempotentWrites(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let records = referenceScenario().map { StoredRecord($0) }
        try await db.store.write(records)
        try await db.store.write(records)
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "2")
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_steps") == "2")
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_runs") == "1")
        await db.close()
    }

    /// Retention deletes rows older than the cutoff and keeps newer ones.
    @Test(arguments: Backend.available)
    func retention(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        var old = sampleCall()
        old.timestamp = Date().addingTimeInterval(-40 * 86400)
        let recent = sampleCall()
        try await db.store.write([StoredRecord(.call(old)), StoredRecord(.call(recent))] + referenceScenario().map { StoredRecord($0) })
        var deleted = 0
        while true {
            let batch = try await db.store.deleteExpired(before: Date().addingTimeInterval(-30 * 86400), limit: 1)
            deleted += batch
            if batch == 0 { break }
        }
        // The old call, plus the 1970 scenario: 2 events, 2 steps, 1 run.
        #expect(deleted == 6)
        let ids = try await db.rows("SELECT CAST(id AS text) AS id FROM chronicle_events").map { $0["id"] ?? nil }
        #expect(ids == [recent.id.uuidString.lowercased()])
        await db.close()
    }
}

@Suite("Log readers")
struct ReaderTests {
    func reader(_ db: TestDatabase) -> any LogReader {
        db.store as! any LogReader
    }

    /// The read API's queries give the same answers on both backends.
    @Test(arguments: Backend.available)
    func runsAndCalls(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        try await db.store.write(referenceScenario().map { StoredRecord($0) })
        let reader = reader(db)
        let runs = try await reader.listRuns(ListQuery())
        #expect(runs.items.count == 1)
        #expect(runs.items.first?["info"] == ["info1": "value1", "info2": "new_value", "info3": "value3"])
        #expect(runs.items.first?["created_at"] == "1970-01-01T00:00:01.000Z")
        let run = try #require(try await reader.run(id: runID))
        let steps = try #require(run["steps"]?.arrayValue)
        #expect(steps.count == 1)
        #expect(steps[0]["children"]?.arrayValue?.first?["id"] == .string(step2.uuidString.lowercased()))
        #expect(run["calls"]?.arrayValue?.count == 1)
        #expect(run["events"]?.arrayValue?.first?["event_type"] == "an_event")
        var query = ListQuery()
        query.provider = "groq"
        let calls = try await reader.listCalls(query)
        #expect(calls.items.first?["total_tokens"] == 15)
        #expect(calls.items.first?["rate_limited"] == true)
        let id = try #require(calls.items.first?["id"]?.stringValue.flatMap(UUID.init(uuidString:)))
        let call = try #require(try await reader.call(id: id))
        #expect(call["chat_request"]?["model"] == "groq/llama3")
        #expect(call["overhead_ms"] == 0.25)
        query.until = time(1)
        #expect(try await reader.listCalls(query).items.isEmpty)
        await db.close()
    }

    /// Paging walks every row once, newest first, with ties on time broken by id.
    @Test(arguments: Backend.available)
    func paging(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let when = Date()
        let calls = (0..<7).map { index -> CallLogRecord in
            var call = sampleCall()
            call.timestamp = when.addingTimeInterval(Double(index / 2))
            return call
        }
        try await db.store.write(calls.map { StoredRecord(.call($0)) })
        var query = ListQuery()
        query.limit = 3
        var seen: [String] = []
        while true {
            let page = try await reader(db).listCalls(query)
            seen += page.items.compactMap { $0["id"]?.stringValue }
            guard let next = page.nextCursor else { break }
            query.cursor = next
        }
        #expect(seen.count == 7)
        #expect(Set(seen).count == 7)
        await db.close()
    }
}

@Suite("PostgreSQL notifications")
struct NotificationTests {
    /// A batch touching a run notifies `chronicle_run:<id>` (empty payload) and `chronicle_runs` (the id).
    @Test func notifiesRunChannels() async throws {
        guard Backend.available.contains(.postgres) else { return }
        let db = try await TestDatabase.make(.postgres)
        let postgres = try #require(db.store as? PostgresLogStore)
        let id = runID.uuidString.lowercased()
        let payloads = try await postgres.client.withConnection { connection in
            try await connection.listen(on: "chronicle_runs") { allRuns in
                try await connection.listen(on: "chronicle_run:\(id)") { oneRun in
                    try await db.store.write(referenceScenario().map { StoredRecord($0) })
                    var all = allRuns.makeAsyncIterator()
                    var one = oneRun.makeAsyncIterator()
                    return (try await all.next()?.payload, try await one.next()?.payload)
                }
            }
        }
        #expect(payloads.0 == id)
        #expect(payloads.1 == "")
        await db.close()
    }
}
