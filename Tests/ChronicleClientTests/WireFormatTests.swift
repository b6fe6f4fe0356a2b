@testable import ChronicleClient
import Foundation
import NIOConcurrencyHelpers
import Testing

@Suite("Client wire format")
struct WireFormatTests {
    func body(_ request: TransportRequest) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(request.body))
    }

    /// Chronicle's options go in the body as the gateways read them (milliseconds, flattened metadata), the
    /// client's metadata fills what the call leaves out, and a stream asks for the usage.
    @Test func optionsInTheBody() throws {
        var configuration = ChronicleClient.Configuration.testing()
        configuration.metadata = CallMetadata(application: "app", environment: "prod", userID: "default-user")
        let client = ChronicleClient(transport: HTTPTransport(baseURL: "http://127.0.0.1:1/v1/"),
                                     configuration: configuration)
        let request = ChatRequest(
            model: "up/gpt", messages: [.user("hi")], extraFields: ["parallel_tool_calls": false],
            options: ChronicleOptions(
                provider: "up", models: [ModelChoice(model: "gpt", provider: "up", apiKeyName: "main")],
                randomChoice: true,
                retry: RetryPolicy(maxTries: 3, initialBackoff: .milliseconds(150), increase: .exponential(multiplier: 2)),
                timeout: .seconds(20),
                metadata: CallMetadata(userID: "u1", promptVersion: 4, extra: ["ticket": "T-1"])))
        let json = try body(try client.prepare(request, streaming: true))
        #expect(json["provider"] == "up")
        #expect(json["models"] == [["model": "gpt", "provider": "up", "api_key_name": "main"]])
        #expect(json["random_choice"] == true)
        #expect(json["retry"] == ["max_tries": 3, "initial_backoff": 150,
                                  "increase": ["type": "exponential", "multiplier": 2]])
        #expect(json["timeout"] == 20000)
        #expect(json["metadata"] == ["application": "app", "environment": "prod", "user_id": "u1",
                                     "prompt_version": 4, "ticket": "T-1"])
        #expect(json["parallel_tool_calls"] == false)
        #expect(json["stream"] == true)
        #expect(json["stream_options"] == ["include_usage": true])
    }

    /// Inside a scope the run and step ids travel as `x-chronicle-*` headers; outside, none.
    @Test func scopeHeaders() async throws {
        let client = ChronicleClient(transport: HTTPTransport(baseURL: "http://127.0.0.1:1"),
                                     configuration: .testing())
        let request = ChatRequest(model: "m", messages: [.user("hi")])
        #expect(try client.prepare(request, streaming: false).headers.isEmpty)
        let run = UUID()
        let step = UUID()
        try RunScope.$current.withValue(RunScope(runID: run, stepID: step)) {
            let headers = try client.prepare(request, streaming: false)
            #expect(headers.header("x-chronicle-run-id") == run.uuidString.lowercased())
            #expect(headers.header("x-chronicle-step-id") == step.uuidString.lowercased())
        }
    }

    /// Server-sent events split across reads and line endings; `[DONE]` and named events come through.
    @Test func serverSentEvents() {
        var reader = ServerSentEventReader()
        let text = "data: {\"a\":1}\r\n\r\n: comment\ndata: {\"b\"\ndata: :2}\n\nevent: error\ndata: {}\n\ndata: [DONE]"
        var events: [ServerSentEventReader.Event] = []
        for byte in Array(text.utf8) { events += reader.feed([byte]) }
        if let last = reader.finish() { events.append(last) }
        #expect(events.map { String(decoding: $0.data, as: UTF8.self) } == [#"{"a":1}"#, "{\"b\"\n:2}", "{}", "[DONE]"])
        #expect(events.map(\.name) == [nil, nil, "error", nil])
    }

    /// Events are the JSON the gateways read: ids lowercase, times RFC 3339, the generic event's step the
    /// nil UUID when it has none.
    @Test func eventJSON() throws {
        let run = UUID()
        let event = WorkflowEventJSON.generic(type: "note", runID: run, stepID: nil, data: ["x": 1], error: nil,
                                              time: Date(timeIntervalSince1970: 0))
        #expect(event["run_id"] == .string(run.uuidString.lowercased()))
        #expect(event["step_id"] == "00000000-0000-0000-0000-000000000000")
        #expect(event["time"] == "1970-01-01T00:00:00.000Z")
        let batch = WorkflowEventJSON.batch([Array(#"{"a":1}"#.utf8), Array(#"{"b":2}"#.utf8)])
        #expect(String(decoding: batch, as: UTF8.self) == #"{"events":[{"a":1},{"b":2}]}"#)
    }
}

/// Answers every call with an empty completion and keeps the headers it was sent.
final class CapturingTransport: ChronicleTransport {
    private let captured = NIOLockedValueBox<[[(name: String, value: String)]]>([])
    var headers: [[(name: String, value: String)]] { captured.withLockedValue { $0 } }

    func chat(_ request: TransportRequest) async throws -> TransportReply {
        captured.withLockedValue { $0.append(request.headers) }
        return TransportReply(body: Array(#"{"choices":[]}"#.utf8), callID: nil)
    }

    func streamChat(_ request: TransportRequest) async throws -> TransportStream {
        captured.withLockedValue { $0.append(request.headers) }
        return TransportStream(callID: nil, events: AsyncThrowingStream { $0.finish() })
    }

    func sendEvents(_ body: [UInt8]) async -> EventDeliveryOutcome { .delivered }
}

@Suite("Scopes on an actor")
struct ActorScopeTests {
    /// Scopes opened on the main actor (an app's or a command-line tool's top level) tag their calls too.
    @MainActor @Test func callsOnTheMainActorAreTagged() async throws {
        let transport = CapturingTransport()
        let client = ChronicleClient(transport: transport, configuration: .testing())
        var ids: (run: UUID?, step: UUID?) = (nil, nil)
        try await client.run("main") { run in
            ids.run = run.id
            try await run.step("plan", type: "llm") { step in
                ids.step = step.id
                _ = try await client.chat(ChatRequest(model: "m", messages: [.user("hi")]))
            }
        }
        let sent = try #require(transport.headers.first)
        #expect(sent.first { $0.name == "x-chronicle-run-id" }?.value == ids.run?.uuidString.lowercased())
        #expect(sent.first { $0.name == "x-chronicle-step-id" }?.value == ids.step?.uuidString.lowercased())
    }
}

@Suite("Steps from the client")
struct ClientStepTests {
    /// `client.step` joins the current run under the current step; outside a run it gets a run of its own.
    @Test func stepJoinsTheScopeOrStartsARun() async throws {
        let transport = CapturingTransport()
        let client = ChronicleClient(transport: transport, configuration: .testing())
        var outer: UUID?
        var parent: UUID?
        try await client.run("main") { run in
            try await run.step("outer") { step in
                outer = step.id
                try await client.step("helper") { helper in parent = helper.parentID }
            }
        }
        #expect(parent == outer)
        var ownRun: UUID?
        let value = try await client.step("alone") { step in
            ownRun = step.runID
            #expect(ChronicleClient.currentRunID == step.runID)
            return 7
        }
        #expect(value == 7)
        #expect(ownRun != nil)
    }
}
