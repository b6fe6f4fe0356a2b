import ChronicleClient
import ChronicleEmbedded
import ChronicleTesting
import Foundation
import Testing

@Suite("Runs and steps by scope")
struct RunScopeTests {
    static func question(_ text: String = "Who was Lassie?") -> ChatRequest {
        ChatRequest(model: "up/gpt", messages: [.user(text)])
    }

    struct Summary: Codable, Equatable {
        var words: Int
    }

    /// Calls carry the run and step of their scope: in the run body, in a step, in a nested step, and in
    /// its child tasks (`async let`, a task group); a detached task carries none. The nested step's parent
    /// is the outer step, and each scope's return value is its output.
    @Test func callsTaggedInNestedScopesAndChildTasks() async throws {
        let gateway = try await TestGateway.text()
        try await gateway.start()
        let client = ChronicleClient(baseURL: gateway.baseURL, configuration: .testing())
        var outerID: UUID?
        var innerID: UUID?
        var runID: UUID?
        let output = try await client.run("summarize", input: ["url": "https://example.com"]) { run in
            runID = run.id
            #expect(ChronicleClient.currentRunID == run.id)
            _ = try await client.chat(Self.question("in the run"))
            return try await run.step("outer", type: "llm", input: "page") { outer in
                outerID = outer.id
                _ = try await client.chat(Self.question("in the outer step"))
                return try await run.step("inner", type: "tool") { inner in
                    innerID = inner.id
                    #expect(inner.parentID == outer.id)
                    async let fromChild = client.chat(Self.question("async let"))
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { _ = try await client.chat(Self.question("task group")) }
                        try await group.waitForAll()
                    }
                    _ = try await fromChild
                    try await Task.detached { _ = try await client.chat(Self.question("detached")) }.value
                    run.event("page_fetched", data: ["bytes": 1234])
                    return Summary(words: 3)
                }
            }
        }
        #expect(output == Summary(words: 3))
        #expect(await client.flush(timeout: .seconds(10)))

        let run = try #require(runID)
        let outer = try #require(outerID)
        let inner = try #require(innerID)
        let tags = gateway.callTags
        #expect(tags.count == 5)
        #expect(tags.filter { $0.runID == run && $0.stepID == nil }.count == 1)
        #expect(tags.filter { $0.runID == run && $0.stepID == outer }.count == 1)
        #expect(tags.filter { $0.runID == run && $0.stepID == inner }.count == 2)
        #expect(tags.filter { $0.runID == nil && $0.stepID == nil }.count == 1)

        let stored = try #require(try decodeJSON(await gateway.storedRun(run)))
        #expect(stored["name"] == "summarize")
        #expect(stored["status"] == "finished")
        #expect(stored["application"] == "tests")
        #expect(stored["input"] == ["url": "https://example.com"])
        #expect(stored["output"] == ["words": 3])
        let outerRow = try #require(stored["steps"]?.arrayValue.first)
        #expect(outerRow["id"]?.stringValue == outer.uuidString.lowercased())
        #expect(outerRow["status"] == "finished")
        #expect(outerRow["input"] == "page")
        let innerRow = try #require(outerRow["children"]?.arrayValue.first)
        #expect(innerRow["parent_step"]?.stringValue == outer.uuidString.lowercased())
        #expect(innerRow["output"] == ["words": 3])
        #expect(stored["calls"]?.arrayValue.count == 4)
        let event = try #require(stored["events"]?.arrayValue.first)
        #expect(event["step_id"]?.stringValue == inner.uuidString.lowercased())
        await gateway.close()
    }

    /// A step that throws records `step:error` with the error, and the run ends with status `error`; the
    /// error reaches the caller unchanged.
    @Test func stepErrorIsRecordedAndRethrown() async throws {
        let gateway = try await TestGateway.text()
        try await gateway.start()
        let client = ChronicleClient(baseURL: gateway.baseURL, configuration: .testing())
        var runID: UUID?
        await #expect(throws: TestFailure.self) {
            try await client.run("failing") { run in
                runID = run.id
                try await run.step("fetch", type: "tool") { _ in throw TestFailure() }
            }
        }
        #expect(await client.flush(timeout: .seconds(10)))
        let failedRun = try #require(runID)
        let stored = try #require(try decodeJSON(await gateway.storedRun(failedRun)))
        #expect(stored["status"] == "error")
        #expect(stored["output"]?["message"] == "the tool broke")
        let step = try #require(stored["steps"]?.arrayValue.first)
        #expect(step["status"] == "error")
        #expect(step["error"]?["message"] == "the tool broke")
        await gateway.close()
    }

    /// Events recorded while the gateway restarts are retried (on the injected clock) and all arrive.
    @Test func eventsSurviveAServerRestart() async throws {
        let gateway = try await TestGateway.text()
        try await gateway.start()
        let clock = ManualClock()
        let client = ChronicleClient(baseURL: gateway.baseURL, configuration: .testing(clock: clock))
        let first = try await client.run("before") { run in
            try await run.step("one") { _ in "a" }
            return run.id
        }
        #expect(try await deliverAll(client, clock: clock))
        #expect(gateway.eventCount == 4)

        await gateway.stop()
        let second = try await client.run("during") { run in
            for index in 0..<3 { _ = try await run.step("step \(index)") { _ in index } }
            run.event("note", data: ["text": "written while the gateway was down"])
            return run.id
        }
        // Delivery failed and waits to retry; the user's code went on.
        await clock.waitForPendingSleeps(1)
        #expect(client.eventStatistics.failedAttempts >= 1)
        #expect(client.eventStatistics.pending == 9)

        try await gateway.start()
        #expect(try await deliverAll(client, clock: clock))
        #expect(gateway.eventCount == 4 + 9)
        #expect(client.eventStatistics.dropped == 0)
        #expect(clock.sleeps.first == .seconds(1))
        let stored = try #require(try decodeJSON(await gateway.storedRun(second)))
        #expect(stored["status"] == "finished")
        #expect(stored["steps"]?.arrayValue.count == 3)
        #expect(stored["events"]?.arrayValue.count == 1)
        #expect(try await gateway.storedRun(first) != nil)
        await gateway.close()
    }

    /// With the gateway down, the user's code runs to its end as usual; events wait, a full buffer drops the
    /// oldest and counts them, and shutdown reports what was left.
    @Test func gatewayDownLeavesUserCodeUnaffected() async throws {
        let clock = ManualClock()
        let client = ChronicleClient(baseURL: "http://127.0.0.1:\(try await closedPort())",
                                     configuration: .testing(clock: clock, capacity: 8, batchSize: 2))
        let result = try await client.run("offline") { run in
            for index in 0..<5 { _ = try await run.step("step \(index)") { _ in index } }
            return "done"
        }
        #expect(result == "done")
        await clock.waitForPendingSleeps(1)
        let statistics = client.eventStatistics
        // run:start, five steps' start and end, run:update: 12 events, 8 kept.
        #expect(statistics.pending == 8)
        #expect(statistics.dropped == 4)
        #expect(client.droppedEventCount == 4)
        #expect(statistics.delivered == 0)
        #expect(statistics.failedAttempts >= 1)
        // A flush gives up at its deadline (on the injected clock) and says so.
        let flushing = Task { await client.flush(timeout: .seconds(5)) }
        await clock.waitForPendingSleeps(2)
        clock.advance(by: .seconds(5))
        #expect(await flushing.value == false)
        #expect(await client.shutdown(timeout: .zero) == 8)
        try await client.run("after shutdown") { _ in }
        #expect(client.droppedEventCount == 6)
    }

    /// The embedded mode records the same rows as the HTTP mode for the same work.
    @Test func embeddedRecordsTheSameRowsAsHTTP() async throws {
        func work(_ client: ChronicleClient) async throws -> (main: UUID, plain: UUID) {
            // A run with no info, tags or input: the HTTP route stores its info as `{}`.
            var plain: UUID?
            try await client.run("plain") { run in plain = run.id }
            var id: UUID?
            try await client.run("agent", input: "task", tags: ["a"], info: ["version": 2]) { run in
                id = run.id
                let answer = try await run.step("think", type: "llm") { _ in
                    try await client.chat(Self.question()).text ?? ""
                }
                try await run.step("act", type: "tool", input: answer) { step in
                    step.event("tool_called", data: ["tool": "search"])
                    _ = try? await step.step("retry", type: "tool") { _ in throw TestFailure() }
                    return ["ok": true] as JSONValue
                }
                return "done"
            }
            #expect(await client.flush(timeout: .seconds(10)))
            return (try #require(id), try #require(plain))
        }
        let overHTTP = try await TestGateway.text()
        try await overHTTP.start()
        let httpRun = try await work(ChronicleClient(baseURL: overHTTP.baseURL, configuration: .testing()))
        let inProcess = try await TestGateway.text()
        let embeddedRun = try await work(ChronicleClient(gateway: inProcess.gateway, configuration: .testing()))

        let httpRows = try #require(try decodeJSON(await overHTTP.storedRun(httpRun.main)))
        let embeddedRows = try #require(try decodeJSON(await inProcess.storedRun(embeddedRun.main)))
        let httpPlain = try #require(try decodeJSON(await overHTTP.storedRun(httpRun.plain)))
        let embeddedPlain = try #require(try decodeJSON(await inProcess.storedRun(embeddedRun.plain)))
        #expect(httpPlain["info"] == [:])
        #expect(withoutVaryingMembers(embeddedPlain) == withoutVaryingMembers(httpPlain))
        #expect(httpRows["steps"]?.arrayValue.count == 2)
        #expect(httpRows["calls"]?.arrayValue.count == 1)
        #expect(withoutVaryingMembers(embeddedRows) == withoutVaryingMembers(httpRows))
        await overHTTP.close()
        await inProcess.close()
    }
}
