import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import NIOCore
import Testing

@Suite("OpenAI Responses API over real sockets")
struct ResponsesServerTests {
    /// A server whose `oai/` prefix routes to an upstream that serves the Responses API (passthrough) and
    /// `ant/` to an Anthropic-format upstream (translation).
    func server(responses upstream: MockUpstream? = nil, anthropic: MockUpstream? = nil,
                retry: RetryOptions = RetryOptions(maxTries: 1), aliases: [AliasConfig] = []) async throws -> RunningServer {
        var providers: [CustomProviderConfig] = []
        if let upstream {
            providers.append(CustomProviderConfig(
                name: "oai", url: upstream.url(), apiKey: "sk-oai-up",
                format: .openAI(OpenAIFormatTransforms(responsesAPI: true)), prefix: "oai/"))
        }
        if let anthropic {
            providers.append(CustomProviderConfig(name: "ant", url: anthropic.url("/v1/messages"), apiKey: "sk-ant-up",
                                                  format: .anthropic, prefix: "ant/"))
        }
        return try await RunningServer.start(
            configuration: GatewayConfiguration(providers: providers, aliases: aliases, retry: retry))
    }

    static func row(_ record: CallLogRecord) throws -> EventRow {
        guard case .event(let row) = StoredRecord(.call(record)) else { throw CancellationError() }
        return row
    }

    /// The bytes `MockUpstream.sse` writes for `text`.
    static func sseBytes(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n").filter { !$0.isEmpty }
            .map { $0 + "\n\n" }.joined()
    }

    /// Stateful members, built-in tools and members the gateway does not model, escapes and odd spacing:
    /// all must reach a Responses upstream as sent.
    static let clientBody = #"{ "model" : "oai/gpt-4.1", "input":"Tell me a story\u00e9", "store":true, "previous_response_id":"resp_0", "tools":[{"type":"web_search"}], "include":["reasoning.encrypted_content"], "x_future": [1, 2.50] }"#

    /// Passthrough, not streamed: the upstream's `/responses` gets the client's bytes with only `model`
    /// replaced; the client gets the upstream's body byte for byte, with the call's id; the record has
    /// the usage, the client's body and `meta.api`.
    @Test func passthroughNonStreaming() async throws {
        let answer = try Fixtures.text("openai_responses_text_response_nonstreaming.json")
        let upstream = try await MockUpstream.start(.json(answer))
        let server = try await server(responses: upstream)
        let response = try await server.send("/v1/responses", body: Self.clientBody, headers: [
            ("x-chronicle-application", "story-app"), ("x-chronicle-extra-meta", #"{"team":"kids"}"#),
        ])
        #expect(response.status == 200)
        #expect(response.body == answer)
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/v1/responses")
        #expect(String(decoding: sent.body, as: UTF8.self) == Self.clientBody.replacingOccurrences(of: "oai/gpt-4.1", with: "gpt-4.1"))
        #expect(sent.headers["authorization"] == "Bearer sk-oai-up")

        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.provider == "oai")
        #expect(record.options.metadata.application == "story-app")
        #expect(record.options.metadata.extra["team"] == "kids")
        #expect(record.responseModel == "gpt-4.1-2025-04-14")
        #expect(record.usage?.promptTokens == 36)
        #expect(record.usage?.completionTokens == 87)
        #expect(record.response?.choices.first?.message.text?.hasPrefix("In a peaceful grove") == true)
        let row = try Self.row(record)
        #expect(row.chatRequest == Self.clientBody)
        #expect(row.meta.contains(#""api":"openai_responses""#))
        #expect(row.inputTokens == 36)
        await server.stop()
        await upstream.stop()
    }

    /// Passthrough, streamed: every event the upstream sent, in order, byte for byte, nothing added; the
    /// record holds the usage of `response.completed` and the function call.
    @Test func passthroughStreaming() async throws {
        let fixture = try Fixtures.text("openai_responses_tools_response_streaming.txt")
        let upstream = try await MockUpstream.start(.sse(fixture))
        let server = try await server(responses: upstream)
        let body = #"{"model":"oai/gpt-4.1","stream":true,"input":"Weather in Boston?","tools":[{"type":"function","name":"get_current_weather","parameters":{"type":"object"}}]}"#
        let response = try await server.send("/v1/responses", body: body)
        #expect(response.status == 200)
        #expect(response.headers.first(name: "content-type") == "text/event-stream")
        #expect(response.body == Self.sseBytes(fixture))
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.streamed)
        #expect(record.error == nil)
        #expect(record.usage?.totalTokens == 314)
        #expect(record.response?.choices.first?.message.toolCalls?.first?.id == "call_unLAR8MvFNptuiZK6K6HCy5k")
        await server.stop()
        await upstream.stop()
    }

    /// Translation to an Anthropic-format upstream, not streamed: the upstream gets a Messages request
    /// with the instructions as its system and the function tool; the client gets a `response` whose
    /// function_call item carries the tool use's id as its `call_id`.
    @Test func translatedNonStreaming() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("anthropic_tools_response_nonstreaming.json")))
        let server = try await server(anthropic: upstream)
        let body = #"{"model":"ant/claude-3-haiku-20240307","instructions":"Be brief","max_output_tokens":300,"input":[{"role":"user","content":[{"type":"input_text","text":"Weather in Boston?"}]}],"tools":[{"type":"function","name":"get_weather","description":"w","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}],"tool_choice":"required"}"#
        let response = try await server.json("/v1/responses", body: body)
        #expect(response.status == 200)
        #expect(response.json["object"] == "response")
        #expect(response.json["status"] == "completed")
        #expect(response.json["id"]?.stringValue?.hasPrefix("resp_") == true)
        #expect(response.json["instructions"] == "Be brief")
        let call = try #require(response.json["output"]?.arrayValue?.first { $0["type"] == "function_call" })
        #expect(call["call_id"]?.stringValue?.hasPrefix("toolu_") == true)
        #expect((try? JSONCoding.decode(JSONValue.self, from: Array((call["arguments"]?.stringValue ?? "").utf8)))?.objectValue != nil)
        #expect(response.json["usage"]?["input_tokens"]?.intValue ?? 0 > 0)
        let sent = try #require(upstream.requests.first?.json)
        #expect(sent["model"] == "claude-3-haiku-20240307")
        #expect(sent["max_tokens"] == 300)
        #expect(sent["tools"]?.arrayValue?.first?["name"] == "get_weather")
        #expect(sent["tool_choice"]?["type"] == "any")
        #expect(sent["system"] != nil)
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.provider == "ant")
        let row = try Self.row(record)
        #expect(row.chatRequest == body)
        #expect(row.meta.contains(#""api":"openai_responses""#))
        await server.stop()
        await upstream.stop()
    }

    /// Translation, streamed: the documented event sequence with increasing sequence numbers, the text
    /// Anthropic streamed, and `response.completed` with the usage.
    @Test func translatedStreaming() async throws {
        let upstream = try await MockUpstream.start(.sse(try Fixtures.text("anthropic_text_response_streaming.txt")))
        let server = try await server(anthropic: upstream)
        let body = #"{"model":"ant/claude-3-haiku-20240307","stream":true,"input":"Who was Lassie?"}"#
        let response = try await server.send("/v1/responses", body: body)
        #expect(response.status == 200)
        let events = sseEvents(response.body)
        let payloads = try events.map { try JSONCoding.decode(JSONValue.self, from: Array($0.data.utf8)) }
        #expect(zip(events, payloads).allSatisfy { $0.0.event == $0.1["type"]?.stringValue })
        let names = events.map { $0.event ?? "" }
        #expect(Array(names.prefix(4)) == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"])
        #expect(Array(names.suffix(4)) == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"])
        let sequence = payloads.compactMap { $0["sequence_number"]?.intValue }
        #expect(sequence == Array(0..<payloads.count))
        let text = payloads.compactMap { $0["type"] == "response.output_text.delta" ? $0["delta"]?.stringValue : nil }.joined()
        #expect(text.hasPrefix("Lassie"))
        let completed = try #require(payloads.last?["response"])
        #expect(completed["output"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"]?.stringValue == text)
        #expect(completed["usage"]?["output_tokens"]?.intValue ?? 0 > 0)
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.usage?.completionTokens == completed["usage"]?["output_tokens"]?.intValue)
        await server.stop()
        await upstream.stop()
    }

    /// What a provider without state or built-in tools cannot do is refused with a 400 in OpenAI's shape
    /// naming the member; nothing goes upstream; the call is recorded with the error. No `store` at all
    /// is served.
    @Test(arguments: [
        (#""previous_response_id":"resp_1""#, "previous_response_id"), (#""store":true"#, "store"),
        (#""tools":[{"type":"web_search"}]"#, "tools[0].type"), (#""tools":[{"type":"file_search"}]"#, "tools[0].type"),
        (#""tools":[{"type":"computer_use_preview"}]"#, "tools[0].type"),
    ])
    func refusedTowardsATranslatingProvider(member: String, param: String) async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("anthropic_text_response_nonstreaming.json")))
        let server = try await server(anthropic: upstream)
        let response = try await server.json("/v1/responses", body: #"{"model":"ant/claude","input":"hi",\#(member)}"#)
        #expect(response.status == 400)
        #expect(response.json["error"]?["type"] == "invalid_request_error")
        #expect(response.json["error"]?["param"] == .string(param))
        #expect(response.json["error"]?["message"]?.stringValue?.isEmpty == false)
        #expect(upstream.requests.isEmpty)
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.status == 400)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())

        let served = try await server.json("/v1/responses", body: #"{"model":"ant/claude","input":"hi"}"#)
        #expect(served.status == 200)
        #expect(served.json["status"] == "completed")
        await server.stop()
        await upstream.stop()
    }

    /// A body that is not a Responses request is refused before routing, in OpenAI's shape naming the member.
    @Test(arguments: [
        (#"{"model":"oai/gpt-4.1","input":7}"#, "input"), (#"{"input":"x"}"#, "model"), (#"{"model":"m","input":"x","stream":"yes"}"#, "stream"),
    ])
    func malformedBodies(body: String, param: String) async throws {
        let server = try await server()
        let response = try await server.json("/v1/responses", body: body)
        #expect(response.status == 400)
        #expect(response.json["error"]?["param"] == .string(param))
        #expect(response.json["error"]?["type"] == "invalid_request_error")
        let broken = try await server.json("/v1/responses", body: "{not json")
        #expect(broken.status == 400)
        #expect(broken.json["error"]?["message"]?.stringValue?.isEmpty == false)
        await server.stop()
    }

    /// Routing is the chat route's: an alias falls back from a failing Responses upstream to an
    /// Anthropic-format one, which gets the request translated; the record counts the retry.
    @Test func fallbackFromPassthroughToTranslation() async throws {
        let openAI = try await MockUpstream.start(.json(#"{"error":{"message":"busy","type":"server_error","param":null,"code":null}}"#, status: 503))
        let anthropic = try await MockUpstream.start(.json(try Fixtures.text("anthropic_text_response_nonstreaming.json")))
        let server = try await server(
            responses: openAI, anthropic: anthropic, retry: RetryOptions(initialBackoff: .zero, maxTries: 2, jitter: .zero),
            aliases: [AliasConfig(name: "both", models: [AliasModel(model: "oai/gpt-4.1", provider: "oai"),
                                                         AliasModel(model: "ant/claude", provider: "ant")])])
        let response = try await server.json("/v1/responses", body: #"{"model":"both","input":"hi"}"#)
        #expect(response.status == 200)
        #expect(response.json["output"]?.arrayValue?.first?["content"]?.arrayValue?.first?["text"]?.stringValue?.hasPrefix("Lassie") == true)
        #expect(openAI.requests.count == 1)
        #expect(anthropic.requests.count == 1)
        let record = try #require(try await server.records(1).first)
        #expect(record.provider == "ant")
        #expect(record.numRetries == 1)
        await server.stop()
        await openAI.stop()
        await anthropic.stop()
    }

    /// An upstream's OpenAI error reaches the client with its status, message and `param`.
    @Test func upstreamErrorKeepsItsParam() async throws {
        let upstream = try await MockUpstream.start(.json(
            #"{"error":{"message":"Unknown parameter: 'x_future'.","type":"invalid_request_error","param":"x_future","code":"unknown_parameter"}}"#,
            status: 400))
        let server = try await server(responses: upstream)
        let response = try await server.json("/v1/responses", body: #"{"model":"oai/gpt-4.1","input":"hi","x_future":1}"#)
        #expect(response.status == 400)
        #expect(response.json["error"]?["param"] == "x_future")
        #expect(response.json["error"]?["message"]?.stringValue?.contains("Unknown parameter") == true)
        await server.stop()
        await upstream.stop()
    }

    /// Gateway keys and per-key token limits as on the chat route: the key's name is recorded, the
    /// relayed answer's usage is charged to it, and a key in debt gets a 429 in OpenAI's shape.
    @Test func gatewayKeysAndTokenLimits() async throws {
        let answer = try Fixtures.text("openai_responses_text_response_nonstreaming.json")
        let upstream = try await MockUpstream.start(.json(answer))
        let clock = TestInstant()
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "tokens", key: "tok-key-0123456789", tokensPerMinute: 60)]
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "oai", url: upstream.url(), apiKey: "sk-oai-up",
                                                 format: .openAI(OpenAIFormatTransforms(responsesAPI: true)), prefix: "oai/")],
                retry: RetryOptions(maxTries: 1)),
            security: security, now: clock.now)
        let body = #"{"model":"oai/gpt-4.1","input":"hi"}"#
        #expect(try await server.json("/v1/responses", body: body).status == 401)
        let auth = [("authorization", "Bearer tok-key-0123456789")]
        #expect(try await server.send("/v1/responses", body: body, headers: auth).status == 200)
        let record = try #require(try await server.records(1).first)
        #expect(record.options.internalMetadata.gatewayKey == "tokens")
        // The answer used 123 tokens: 63 in debt at 1 token a second.
        let limited = try await server.json("/v1/responses", body: body, headers: auth)
        #expect(limited.status == 429)
        #expect(limited.json["error"]?["type"] == "rate_limit_error")
        clock.advance(.seconds(64))
        #expect(try await server.send("/v1/responses", body: body, headers: auth).status == 200)
        #expect(upstream.requests.count == 2)
        await server.stop()
        await upstream.stop()
    }
}
