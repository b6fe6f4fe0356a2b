import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import Testing

/// A server recording into a real SQLite file (or PostgreSQL), with the read API on.
struct StoredServer {
    let server: RunningServer
    let writer: LogWriter
    let store: SQLiteLogStore
    let reader: SQLiteLogStore
    let directory: URL

    static func start(postgres: Bool = false, upstream: MockUpstream? = nil) async throws -> StoredServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-server-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await store.migrate()
        let reader = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        var configuration = LogWriter.Configuration()
        configuration.flushInterval = .milliseconds(20)
        var logger = Logger(label: "writer")
        // Warnings show why a record did not reach the database (a failed or spilled batch).
        logger.logLevel = .warning
        let writer = LogWriter(store: store, configuration: configuration, logger: logger)
        var providers: [CustomProviderConfig] = []
        if let upstream { providers.append(CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")) }
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(providers: providers), sink: writer, reader: reader, services: [writer])
        return StoredServer(server: server, writer: writer, store: store, reader: reader, directory: directory)
    }

    func stop() async {
        await server.stop()
        try? await store.close()
        try? await reader.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

let runStartJSON = """
    {"type":"run:start","id":"01906a5e-0000-7000-8000-000000000001","name":"test run","description":"d",
     "application":"body-app","input":{"query":"abc"},"tags":["tag1","tag2"],"info":{"info1":"value1"},
     "time":"2024-06-01T00:00:01Z"}
    """

@Suite("Events and the read API over real sockets")
struct EventAndReadAPITests {
    /// Rust Chronicle's API test: one generic event, then a 7-event batch; all stored; 202 each time.
    @Test func referenceEventFlow() async throws {
        let stored = try await StoredServer.start()
        let server = stored.server
        let run = "01906a5e-0000-7000-8000-000000000001"
        let step1 = "01906a5e-0000-7000-8000-000000000002"
        let step2 = "01906a5e-0000-7000-8000-000000000003"
        let single = try await server.send("/event", body: """
            {"type":"an_event","run_id":"\(run)","step_id":"\(step1)","data":{"k":"v"},"time":"2024-06-01T00:00:02Z"}
            """)
        #expect(single.status == 202)
        let batch = try await server.send("/v1/events", body: """
            {"events":[\(runStartJSON),
             {"type":"step:start","run_id":"\(run)","step_id":"\(step1)","time":"2024-06-01T00:00:02Z","data":{"type":"task","name":"s1","tags":["dag"]}},
             {"type":"step:start","run_id":"\(run)","step_id":"\(step2)","time":"2024-06-01T00:00:03Z","data":{"type":"llm","parent_step":"\(step1)"}},
             {"type":"step:error","run_id":"\(run)","step_id":"\(step2)","time":"2024-06-01T00:00:05Z","data":{"error":"boom"}},
             {"type":"step:end","run_id":"\(run)","step_id":"\(step1)","time":"2024-06-01T00:00:05Z","data":{"output":{"ok":true},"info":{"info3":"v3"}}},
             {"type":"another_event","run_id":"\(run)","step_id":"\(step1)","data":[1,2,3]},
             {"type":"run:update","id":"\(run)","status":"finished","output":{"result":"done"},"time":"2024-06-01T00:00:05Z"}]}
            """, headers: [("x-chronicle-environment", "staging"), ("x-chronicle-user-id", "u-1"),
                           ("x-chronicle-extra-meta", #"{"team":"research"}"#)])
        #expect(batch.status == 202)
        await stored.writer.flush()

        let detail = try await server.json("/v1/runs/\(run)", method: .GET)
        #expect(detail.status == 200)
        let json = detail.json
        #expect(json["name"] == "test run")
        #expect(json["status"] == "finished")
        #expect(json["application"] == "body-app")
        #expect(json["environment"] == "staging")
        #expect(json["info"] == ["info1": "value1", "user_id": "u-1", "team": "research"])
        #expect(json["output"] == ["result": "done"])
        #expect(json["tags"] == ["tag1", "tag2"])
        #expect(json["created_at"] == "2024-06-01T00:00:01.000Z")
        let steps = try #require(json["steps"]?.arrayValue)
        #expect(steps.count == 1)
        #expect(steps[0]["status"] == "finished")
        #expect(steps[0]["info"] == ["info3": "v3"])
        let children = try #require(steps[0]["children"]?.arrayValue)
        #expect(children.first?["status"] == "error")
        #expect(children.first?["error"] == "boom")
        #expect(json["events"]?.arrayValue?.count == 2)
        #expect(json["events"]?.arrayValue?.contains { $0["meta"] == [1, 2, 3] } == true)

        let list = try await server.json("/v1/runs?status=finished&environment=staging", method: .GET)
        #expect(list.json["data"]?.arrayValue?.count == 1)
        let none = try await server.json("/v1/runs?status=started", method: .GET)
        #expect(none.json["data"]?.arrayValue?.isEmpty == true)
        await stored.stop()
    }

    /// A run started from a traced request joins its trace (W3C `traceparent`), unless it names its own.
    @Test func runStartJoinsTheCallersTrace() async throws {
        let stored = try await StoredServer.start()
        let traced = "01906a5e-0000-7000-8000-0000000000a1"
        let explicit = "01906a5e-0000-7000-8000-0000000000a2"
        let header = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        #expect(try await stored.server.send("/v1/event", body: #"{"type":"run:start","id":"\#(traced)","name":"r"}"#,
                                             headers: header).status == 202)
        #expect(try await stored.server.send(
            "/v1/event", body: #"{"type":"run:start","id":"\#(explicit)","name":"r","trace_id":"t","span_id":"s"}"#,
            headers: header).status == 202)
        #expect(try await stored.server.send("/v1/event", body: #"{"type":"run:start","id":"01906a5e-0000-7000-8000-0000000000a3","name":"r"}"#,
                                             headers: [("traceparent", "garbage")]).status == 202)
        await stored.writer.flush()
        let joined = try await stored.server.json("/v1/runs/\(traced)", method: .GET).json
        #expect(joined["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(joined["span_id"] == "00f067aa0ba902b7")
        let own = try await stored.server.json("/v1/runs/\(explicit)", method: .GET).json
        #expect(own["trace_id"] == "t")
        #expect(own["span_id"] == "s")
        await stored.stop()
    }

    /// Malformed typed events are 422s naming the field, on /event and in a batch (with the index);
    /// nothing of a bad batch is stored.
    @Test func malformedEvents() async throws {
        let stored = try await StoredServer.start()
        let server = stored.server
        let cases: [(String, String, String)] = [
            ("/event", #"{"type":"step:start","run_id":"01906a5e-0000-7000-8000-000000000001","step_id":"01906a5e-0000-7000-8000-000000000002","data":{}}"#, "data.type"),
            ("/event", #"{"type":"run:start","id":"01906a5e-0000-7000-8000-000000000001","name":"x","info":"not an object"}"#, "info"),
            ("/event", #"{"type":"run:start","id":"not-a-uuid","name":"x"}"#, "id"),
            ("/event", #"{"type":"step:end","run_id":"01906a5e-0000-7000-8000-000000000001","step_id":"01906a5e-0000-7000-8000-000000000002","data":{}}"#, "output"),
            ("/event", #"{"type":"run:update","id":"01906a5e-0000-7000-8000-000000000001","time":"yesterday"}"#, "time"),
            ("/event", #"{"data":{}}"#, "type"),
            ("/events", "{\"events\":[\(runStartJSON),{\"type\":\"step:state\",\"run_id\":\"01906a5e-0000-7000-8000-000000000001\",\"step_id\":\"01906a5e-0000-7000-8000-000000000002\",\"data\":{\"state\":5}}]}", "events[1].data.state"),
        ]
        for (path, body, field) in cases {
            let response = try await server.json(path, body: body)
            #expect(response.status == 422, "\(body)")
            #expect(response.json["error"]?["kind"] == "invalid_event_payload")
            #expect(response.json["error"]?["message"]?.stringValue?.contains(field) == true, "\(response.json)")
        }
        let notJSON = try await server.json("/events", body: "{nope")
        #expect(notJSON.status == 400)
        await stored.writer.flush()
        let runs = try await server.json("/v1/runs", method: .GET)
        #expect(runs.json["data"]?.arrayValue?.isEmpty == true)
        await stored.stop()
    }

    /// Calls made through the gateway are listed and fetched with usage, latency and errors; run ids link them.
    @Test func callsReadAPI() async throws {
        let upstream = try await MockUpstream.start(
            .json(try Fixtures.text("groq_text_response_nonstreaming.json")),
            .json(#"{"error":{"message":"nope"}}"#, status: 400))
        let stored = try await StoredServer.start(upstream: upstream)
        let server = stored.server
        let run = "01906a5e-0000-7000-8000-0000000000ff"
        for index in 0..<3 {
            let response = try await server.send("/v1/chat/completions", body: #"{"model":"up/m","messages":[{"role":"user","content":"hi"}]}"#,
                                                 headers: [("x-chronicle-run-id", run), ("x-chronicle-user-id", "user-\(index % 2)")])
            #expect(response.status == (index == 0 ? 200 : 400))
        }
        await stored.writer.flush()
        let all = try await server.json("/v1/calls?limit=2", method: .GET)
        let page1 = try #require(all.json["data"]?.arrayValue)
        #expect(page1.count == 2)
        let cursor = try #require(all.json["next_cursor"]?.stringValue)
        let rest = try await server.json("/v1/calls?limit=2&cursor=\(cursor)", method: .GET)
        let page2 = try #require(rest.json["data"]?.arrayValue)
        #expect(page2.count == 1)
        #expect(rest.json["next_cursor"] == .null)
        // Newest first, and the oldest is the successful call with its usage.
        let first = page2[0]
        #expect(first["http_status"] == 200)
        #expect(first["input_tokens"] == 18)
        #expect(first["total_tokens"] == 273)
        #expect(first["provider"] == "up")
        let errors = try await server.json("/v1/calls?status=error&user_id=user-1", method: .GET)
        #expect(errors.json["data"]?.arrayValue?.count == 1)
        #expect(errors.json["data"]?.arrayValue?.first?["error"]?["kind"] == "provider_rejected_input")

        let id = try #require(first["id"]?.stringValue)
        let detail = try await server.json("/v1/calls/\(id)", method: .GET)
        #expect(detail.json["chat_request"]?["model"] == "up/m")
        #expect(detail.json["chat_response"]?["usage"]?["total_tokens"] == 273)
        let byRun = try await server.json("/v1/calls?run_id=\(run)", method: .GET)
        #expect(byRun.json["data"]?.arrayValue?.count == 3)
        let missing = try await server.json("/v1/calls/01906a5e-0000-7000-8000-000000000000", method: .GET)
        #expect(missing.status == 404)
        let badLimit = try await server.json("/v1/calls?limit=0", method: .GET)
        #expect(badLimit.status == 400)
        let badCursor = try await server.json("/v1/calls?cursor=zzz", method: .GET)
        #expect(badCursor.status == 400)
        let badID = try await server.json("/v1/runs/not-a-uuid", method: .GET)
        #expect(badID.status == 400)
        #expect(badID.json["error"]?["kind"] == "invalid_id")
        let badSince = try await server.json("/v1/runs?since=yesterday", method: .GET)
        #expect(badSince.status == 400)
        #expect(badSince.json["error"]?["message"]?.stringValue?.contains("since") == true)
        let badStatus = try await server.json("/v1/calls?status=maybe", method: .GET)
        #expect(badStatus.status == 400)
        await stored.stop()
        await upstream.stop()
    }

    /// `name` filters calls by their run's name or their workflow's name; it used to be ignored.
    @Test func callsByName() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("groq_text_response_nonstreaming.json")))
        let stored = try await StoredServer.start(upstream: upstream)
        let server = stored.server
        let run = "01906a5e-0000-7000-8000-000000000001"
        #expect(try await server.send("/v1/events", body: #"{"events":[\#(runStartJSON)]}"#).status == 202)
        let body = #"{"model":"up/m","messages":[{"role":"user","content":"hi"}]}"#
        for headers in [[("x-chronicle-run-id", run)], [("x-chronicle-workflow-name", "nightly etl")], []] {
            #expect(try await server.send("/v1/chat/completions", body: body, headers: headers).status == 200)
        }
        await stored.writer.flush()
        func calls(_ query: String) async throws -> [JSONValue] {
            try #require(try await server.json("/v1/calls?\(query)", method: .GET).json["data"]?.arrayValue)
        }
        #expect(try await calls("").count == 3)
        let byRun = try await calls("name=test%20run")
        #expect(byRun.map { $0["run_id"] } == [.string(run)])
        let byWorkflow = try await calls("name=nightly%20etl")
        #expect(byWorkflow.map { $0["workflow_name"] } == ["nightly etl"])
        #expect(try await calls("name=unknown").isEmpty)
        #expect(try await calls("name=test%20run&user_id=nobody").isEmpty)
        await stored.stop()
        await upstream.stop()
    }
}
