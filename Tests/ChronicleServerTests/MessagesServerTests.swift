import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import NIOCore
import Testing

@Suite("Anthropic Messages API over real sockets")
struct MessagesServerTests {
    /// A server whose `ant/` prefix routes to an Anthropic-format `upstream` and `oai/` to an OpenAI-format
    /// `openAI` upstream.
    func server(anthropic upstream: MockUpstream? = nil, openAI: MockUpstream? = nil,
                security: SecuritySettings = SecuritySettings(), maxBodySize: Int = 20 * 1024 * 1024,
                retry: RetryOptions = RetryOptions(maxTries: 1)) async throws -> RunningServer {
        var providers: [CustomProviderConfig] = []
        if let upstream {
            providers.append(CustomProviderConfig(name: "ant", url: upstream.url("/v1/messages"), apiKey: "sk-ant-up",
                                                  format: .anthropic, prefix: "ant/"))
        }
        if let openAI {
            providers.append(CustomProviderConfig(name: "oai", url: openAI.url(), apiKey: "sk-oai-up", prefix: "oai/"))
        }
        return try await RunningServer.start(
            configuration: GatewayConfiguration(providers: providers, retry: retry), maxBodySize: maxBodySize,
            security: security)
    }

    /// The `chronicle_events` row the record becomes.
    static func row(_ record: CallLogRecord) throws -> EventRow {
        guard case .event(let row) = StoredRecord(.call(record)) else { throw CancellationError() }
        return row
    }

    /// The bytes `MockUpstream.sse` writes for `text`.
    static func sseBytes(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n").filter { !$0.isEmpty }
            .map { $0 + "\n\n" }.joined()
    }

    /// A body with members the gateway does not model, escapes and odd spacing: all must reach the upstream.
    static let clientBody = #"{ "model" : "ant/claude-3-haiku-20240307", "max_tokens":1024, "system":[{"type":"text","text":"Be brief\u00e9","cache_control":{"type":"ephemeral"}}], "messages":[{"role":"user","content":"Who was Lassie the dog?"}], "thinking":{"type":"enabled","budget_tokens":2048}, "top_k": 5, "metadata":{"user_id":"user-42"}, "x_future": [1, 2.50] }"#

    /// Passthrough, not streamed: the upstream gets the client's bytes with only `model` replaced and the
    /// Anthropic headers; the client gets the upstream's body byte for byte, with the call's id; the call
    /// is recorded with the Anthropic answer's usage, the client's body and the API it spoke.
    @Test(arguments: ["/v1/messages", "/anthropic/v1/messages"])
    func passthroughNonStreaming(path: String) async throws {
        let answer = try Fixtures.text("anthropic_text_response_nonstreaming.json")
        let upstream = try await MockUpstream.start(.json(answer))
        let server = try await server(anthropic: upstream)
        let response = try await server.send(path, body: Self.clientBody, headers: [
            ("anthropic-version", "2023-06-01"), ("anthropic-beta", "prompt-caching-2024-07-31"),
        ])
        #expect(response.status == 200)
        #expect(response.body == answer)
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/v1/messages")
        #expect(String(decoding: sent.body, as: UTF8.self)
            == Self.clientBody.replacingOccurrences(of: "ant/claude-3-haiku-20240307", with: "claude-3-haiku-20240307"))
        #expect(sent.headers["x-api-key"] == "sk-ant-up")
        #expect(sent.headers["anthropic-version"] == "2023-06-01")
        #expect(sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31")

        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.provider == "ant")
        #expect(record.model == "ant/claude-3-haiku-20240307")
        #expect(record.responseModel == "claude-3-haiku-20240307")
        #expect(record.usage?.promptTokens == 16)
        #expect(record.usage?.completionTokens == 217)
        #expect(record.options.metadata.userID == "user-42")
        #expect(record.response?.choices.first?.message.text?.hasPrefix("Lassie was a fictional dog") == true)
        let row = try Self.row(record)
        #expect(row.chatRequest == Self.clientBody)
        #expect(row.meta.contains(#""api":"anthropic_messages""#))
        #expect(row.requestUserID == "user-42")
        #expect(row.inputTokens == 16)
        await server.stop()
        await upstream.stop()
    }

    /// Passthrough, streamed: every event the upstream sent, in order, byte for byte, nothing added; the
    /// record holds the stream's usage (input from `message_start`, output from `message_delta`).
    @Test func passthroughStreaming() async throws {
        let fixture = try Fixtures.text("anthropic_text_and_tools_response_streaming.txt")
        let upstream = try await MockUpstream.start(.sse(fixture))
        let server = try await server(anthropic: upstream)
        let body = #"{"model":"ant/claude-3-haiku-20240307","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Weather?"}]}"#
        let response = try await server.send("/v1/messages", body: body)
        #expect(response.status == 200)
        #expect(response.headers.first(name: "content-type") == "text/event-stream")
        #expect(response.body == Self.sseBytes(fixture))
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.streamed)
        #expect(record.error == nil)
        let events = sseEvents(fixture)
        let start = try JSONCoding.decode(JSONValue.self, from: Array(try #require(events.first).data.utf8))
        let delta = try JSONCoding.decode(JSONValue.self, from: Array(
            try #require(events.last(where: { $0.event == "message_delta" })).data.utf8))
        #expect(record.usage?.promptTokens == start["message"]?["usage"]?["input_tokens"]?.intValue)
        #expect(record.usage?.completionTokens == delta["usage"]?["output_tokens"]?.intValue)
        #expect(record.response?.choices.first?.message.toolCalls?.isEmpty == false)
        await server.stop()
        await upstream.stop()
    }

    /// An `error` event the upstream streams is relayed as sent, like every other event, and the call is
    /// recorded as failed with it.
    @Test func upstreamErrorEventIsRelayedAndRecorded() async throws {
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}

            event: error
            data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}


            """
        let upstream = try await MockUpstream.start(.sse(stream))
        let server = try await server(anthropic: upstream)
        let body = #"{"model":"ant/claude","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let response = try await server.send("/v1/messages", body: body)
        #expect(response.status == 200)
        #expect(response.body == Self.sseBytes(stream))
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.status == 529)
        #expect(record.error?.message == "Overloaded")
        #expect(record.usage?.promptTokens == 5)
        await server.stop()
        await upstream.stop()
    }

    /// Translation to an OpenAI-format upstream, not streamed: the upstream gets an OpenAI request, the
    /// client an Anthropic message.
    @Test func translatedNonStreaming() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_tools_response_nonstreaming.json")))
        let server = try await server(openAI: upstream)
        let body = #"{"model":"oai/gpt-4o","max_tokens":100,"system":"Be brief","tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"Weather in Boston?"}]}"#
        let response = try await server.json("/v1/messages", body: body)
        #expect(response.status == 200)
        #expect(response.json["type"] == "message")
        #expect(response.json["role"] == "assistant")
        #expect(response.json["id"]?.stringValue?.hasPrefix("msg_") == true)
        #expect(response.json["stop_reason"] == "tool_use")
        #expect(response.json["meta"] == nil)
        let toolUse = try #require(response.json["content"]?.arrayValue?.first { $0["type"] == "tool_use" })
        #expect(toolUse["id"]?.stringValue?.hasPrefix("toolu_") == true)
        #expect(toolUse["input"]?.objectValue != nil)
        #expect(response.json["usage"]?["input_tokens"]?.intValue != nil)
        let sent = try #require(upstream.requests.first?.json)
        #expect(sent["model"] == "gpt-4o")
        #expect(sent["messages"]?.arrayValue?.first?["role"] == "system")
        #expect(sent["tool_choice"] == "required")
        #expect(sent["max_tokens"] == 100 || sent["max_completion_tokens"] == 100)
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.provider == "oai")
        #expect(try Self.row(record).chatRequest == body)
        await server.stop()
        await upstream.stop()
    }

    /// Translation to an OpenAI-format upstream, streamed: a valid Anthropic event sequence whose text is
    /// the upstream's, with usage (asked of the upstream on the client's behalf) in `message_delta`.
    @Test func translatedStreaming() async throws {
        let upstream = try await MockUpstream.start(.sse(try Fixtures.text("openai_text_response_streaming.txt")))
        let server = try await server(openAI: upstream)
        let body = #"{"model":"oai/gpt-4o","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Who was Lassie?"}]}"#
        let response = try await server.send("/v1/messages", body: body)
        #expect(response.status == 200)
        let events = sseEvents(response.body)
        let names = events.map { $0.event ?? "" }
        #expect(names.first == "message_start")
        #expect(Array(names.suffix(3)) == ["content_block_stop", "message_delta", "message_stop"])
        #expect(names.contains("content_block_start"))
        let payloads = try events.map { try JSONCoding.decode(JSONValue.self, from: Array($0.data.utf8)) }
        #expect(zip(names, payloads).allSatisfy { $0.0 == $0.1["type"]?.stringValue })
        let text = payloads.compactMap { $0["delta"]?["text"]?.stringValue }.joined()
        #expect(text.hasPrefix("Lassie was a fictional Collie"))
        let delta = try #require(payloads.first { $0["type"] == "message_delta" })
        #expect(delta["delta"]?["stop_reason"] == "end_turn")
        #expect(delta["usage"]?["output_tokens"]?.intValue ?? 0 > 0)
        #expect(upstream.requests.first?.json?["stream_options"]?["include_usage"] == true)
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.usage?.totalTokens == 77)
        await server.stop()
        await upstream.stop()
    }

    /// Routing is the chat route's: an alias falls back from a failing Anthropic-format provider to an
    /// OpenAI-format one, which gets the request translated; the record counts the retry.
    @Test func fallbackToATranslatingProvider() async throws {
        let anthropic = try await MockUpstream.start(.json(#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#, status: 529))
        let openAI = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [
                CustomProviderConfig(name: "ant", url: anthropic.url("/v1/messages"), apiKey: "k", format: .anthropic, prefix: "ant/"),
                CustomProviderConfig(name: "oai", url: openAI.url(), apiKey: "k", prefix: "oai/"),
            ],
            aliases: [AliasConfig(name: "both", models: [AliasModel(model: "ant/claude", provider: "ant"),
                                                         AliasModel(model: "oai/gpt-4o", provider: "oai")])],
            retry: RetryOptions(initialBackoff: .zero, maxTries: 2, jitter: .zero)))
        let body = #"{"model":"both","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"top_k":3}"#
        let response = try await server.json("/v1/messages", body: body)
        #expect(response.status == 200)
        #expect(response.json["type"] == "message")
        #expect(response.json["content"]?.arrayValue?.first?["text"]?.stringValue?.hasPrefix("Lassie") == true)
        #expect(anthropic.requests.count == 1)
        let sent = try #require(openAI.requests.first?.json)
        #expect(sent["model"] == "gpt-4o")
        #expect(sent["top_k"] == nil, "Anthropic-only members do not reach an OpenAI-format upstream")
        let record = try #require(try await server.records(1).first)
        #expect(record.provider == "oai")
        #expect(record.numRetries == 1)
        await server.stop()
        await anthropic.stop()
        await openAI.stop()
    }

    /// Upstream failures reach the client with Anthropic's shape, type and status, `retry-after` on 429,
    /// and the call's id; the call is recorded with its error.
    @Test(arguments: [
        (400, "invalid_request_error", 400), (401, "authentication_error", 401), (403, "permission_error", 403),
        (404, "not_found_error", 404), (413, "request_too_large", 413), (429, "rate_limit_error", 429),
        (500, "api_error", 500), (529, "overloaded_error", 529),
    ])
    func upstreamErrors(upstreamStatus: Int, type: String, status: Int) async throws {
        let errorBody = #"{"type":"error","error":{"type":"\#(type)","message":"upstream says no"}}"#
        let upstream = try await MockUpstream.start(.json(errorBody, status: upstreamStatus, headers: [("retry-after", "7")]))
        let server = try await server(anthropic: upstream)
        let body = #"{"model":"ant/claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#
        let response = try await server.json("/v1/messages", body: body)
        #expect(response.status == status)
        #expect(response.json["type"] == "error")
        #expect(response.json["error"]?["type"]?.stringValue == type)
        #expect(response.json["error"]?["message"] == "upstream says no")
        #expect(response.headers.first(name: "retry-after") == (status == 429 ? "7" : nil))
        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(record.error?.status == upstreamStatus)
        await server.stop()
        await upstream.stop()
    }

    /// The same errors from an OpenAI-format upstream are mapped to Anthropic's types too.
    @Test func translatedUpstreamErrorIsAnthropicShaped() async throws {
        let upstream = try await MockUpstream.start(.json(#"{"error":{"message":"slow down","type":"requests"}}"#,
                                                          status: 429, headers: [("retry-after", "3")]))
        let server = try await server(openAI: upstream)
        let body = #"{"model":"oai/gpt-4o","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let response = try await server.json("/v1/messages", body: body)
        #expect(response.status == 429)
        #expect(response.json["error"]?["type"] == "rate_limit_error")
        #expect(response.json["error"]?["message"] == "slow down")
        #expect(response.headers.first(name: "retry-after") == "3")
        await server.stop()
        await upstream.stop()
    }

    /// A passthrough stream the upstream breaks off after it started ends with an Anthropic `error` event
    /// after the events that arrived.
    @Test func failureAfterStreamStartIsAnErrorEvent() async throws {
        let fixture = try Fixtures.text("anthropic_text_response_streaming.txt")
        let parts = Self.sseBytes(fixture).components(separatedBy: "\n\n").filter { !$0.isEmpty }.prefix(3)
            .map { Array(($0 + "\n\n").utf8) }
        let upstream = try await MockUpstream.start(MockUpstream.Reply(
            headers: [("content-type", "text/event-stream")], body: .partsThenHang(Array(parts))))
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "ant", url: upstream.url("/v1/messages"), apiKey: "k",
                                                 format: .anthropic, prefix: "ant/")],
                streamIdleTimeout: .milliseconds(300), retry: RetryOptions(maxTries: 1)))
        let body = #"{"model":"ant/claude","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let response = try await server.send("/v1/messages", body: body)
        #expect(response.status == 200)
        let events = sseEvents(response.body)
        #expect(events.count == 4)
        #expect(events.prefix(3).map { $0.event ?? "" } == ["message_start", "content_block_start", "ping"])
        #expect(events.last?.event == "error")
        let error = try JSONCoding.decode(JSONValue.self, from: Array(try #require(events.last).data.utf8))
        #expect(error["type"] == "error")
        #expect(error["error"]?["type"] == "timeout_error")
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.kind == "timeout")
        await server.stop()
        await upstream.stop()
    }

    /// A passthrough stream that fails in the middle of an event ends with the events that arrived whole and
    /// an `error` event of its own: the half event is never sent, so the error is not glued onto it.
    @Test func failureInTheMiddleOfAnEventSendsOnlyWholeEvents() async throws {
        let fixture = try Fixtures.text("anthropic_text_response_streaming.txt")
        let events = Self.sseBytes(fixture).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        let fourth = Array((events[3] + "\n\n").utf8)
        let parts = events.prefix(3).map { Array(($0 + "\n\n").utf8) } + [Array(fourth.prefix(fourth.count / 2))]
        let upstream = try await MockUpstream.start(MockUpstream.Reply(
            headers: [("content-type", "text/event-stream")], body: .partsThenHang(parts)))
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "ant", url: upstream.url("/v1/messages"), apiKey: "k",
                                                 format: .anthropic, prefix: "ant/")],
                streamIdleTimeout: .milliseconds(300), retry: RetryOptions(maxTries: 1)))
        let body = #"{"model":"ant/claude","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let response = try await server.send("/v1/messages", body: body)
        #expect(response.status == 200)
        let whole = events.prefix(3).map { $0 + "\n\n" }.joined()
        #expect(response.body.hasPrefix(whole))
        let received = sseEvents(response.body)
        #expect(received.map { $0.event ?? "" } == ["message_start", "content_block_start", "ping", "error"])
        let error = try JSONCoding.decode(JSONValue.self, from: Array(try #require(received.last).data.utf8))
        #expect(error["error"]?["type"] == "timeout_error")
        await server.stop()
        await upstream.stop()
    }

    /// An upstream connection that fails after `message_stop` adds nothing to the answer the client has
    /// whole: no error event follows the upstream's last event. The idle timeout leaves a loaded test run
    /// room to deliver the events before the upstream falls silent.
    @Test func failureAfterTheEndAddsNoErrorEvent() async throws {
        let fixture = try Fixtures.text("anthropic_text_response_streaming.txt")
        let parts = Self.sseBytes(fixture).components(separatedBy: "\n\n").filter { !$0.isEmpty }
            .map { Array(($0 + "\n\n").utf8) }
        let upstream = try await MockUpstream.start(MockUpstream.Reply(
            headers: [("content-type", "text/event-stream")], body: .partsThenHang(parts)))
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "ant", url: upstream.url("/v1/messages"), apiKey: "k",
                                                 format: .anthropic, prefix: "ant/")],
                streamIdleTimeout: .seconds(2), retry: RetryOptions(maxTries: 1)))
        let body = #"{"model":"ant/claude","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let response = try await server.send("/v1/messages", body: body)
        #expect(response.status == 200)
        #expect(response.body == Self.sseBytes(fixture))
        await server.stop()
        await upstream.stop()
    }

    /// Bad requests never reach a provider: malformed JSON and invalid members are 400s naming the
    /// problem, an oversized body a 413, all in Anthropic's shape.
    @Test func badRequests() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(anthropic: upstream, maxBodySize: 4096)
        let notJSON = try await server.json("/v1/messages", body: "{nope")
        #expect(notJSON.status == 400)
        #expect(notJSON.json["type"] == "error")
        #expect(notJSON.json["error"]?["type"] == "invalid_request_error")
        #expect(notJSON.json["error"]?["message"]?.stringValue?.contains("not valid JSON") == true)
        let noMaxTokens = try await server.json("/v1/messages", body: #"{"model":"ant/c","messages":[]}"#)
        #expect(noMaxTokens.status == 400)
        #expect(noMaxTokens.json["error"]?["type"] == "invalid_request_error")
        #expect(noMaxTokens.json["error"]?["message"]?.stringValue?.contains("max_tokens") == true)
        let badRole = try await server.json(
            "/v1/messages", body: #"{"model":"ant/c","max_tokens":5,"messages":[{"role":"system","content":"x"}]}"#)
        #expect(badRole.status == 400)
        #expect(badRole.json["error"]?["message"]?.stringValue?.contains("messages[0].role") == true)
        let large = try await server.json(
            "/v1/messages", body: #"{"model":"ant/c","max_tokens":5,"messages":[{"role":"user","content":"\#(String(repeating: "x", count: 5000))"}]}"#)
        #expect(large.status == 413)
        #expect(large.json["error"]?["type"] == "request_too_large")
        let unknownModel = try await server.json(
            "/v1/messages", body: #"{"model":"nobody/c","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#)
        #expect(unknownModel.json["type"] == "error")
        #expect(upstream.requests.isEmpty)
        await server.stop()
        await upstream.stop()
    }

    /// Gateway keys arrive as `x-api-key` (the Anthropic SDK) or a bearer token; a missing or wrong key is
    /// Anthropic's 401 `authentication_error`.
    @Test func gatewayKeyAsXAPIKey() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("anthropic_text_response_nonstreaming.json")))
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "claude-code", key: "gw-key-0123456789")]
        let server = try await server(anthropic: upstream, security: security)
        let body = #"{"model":"ant/claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#
        let missing = try await server.json("/v1/messages", body: body)
        #expect(missing.status == 401)
        #expect(missing.json["type"] == "error")
        #expect(missing.json["error"]?["type"] == "authentication_error")
        let wrong = try await server.json("/v1/messages", body: body, headers: [("x-api-key", "gw-key-wrong")])
        #expect(wrong.status == 401)
        #expect(wrong.json["error"]?["type"] == "authentication_error")
        #expect(upstream.requests.isEmpty)
        let apiKey = try await server.send("/v1/messages", body: body, headers: [("x-api-key", "gw-key-0123456789")])
        #expect(apiKey.status == 200)
        let bearer = try await server.send("/v1/messages", body: body,
                                           headers: [("authorization", "Bearer gw-key-0123456789")])
        #expect(bearer.status == 200)
        // The client's gateway key is never the upstream's.
        #expect(upstream.requests.allSatisfy { $0.headers["x-api-key"] == "sk-ant-up" })
        let records = try await server.records(2)
        #expect(records.map(\.options.internalMetadata.gatewayKey) == ["claude-code", "claude-code"])
        await server.stop()
        await upstream.stop()
    }

    /// `count_tokens` goes to the Anthropic-format provider's own endpoint beside its messages URL; a
    /// provider that cannot count answers a 404 `not_found_error` naming it.
    @Test(arguments: ["/v1/messages/count_tokens", "/anthropic/v1/messages/count_tokens"])
    func countTokens(path: String) async throws {
        let anthropic = try await MockUpstream.start(.json(#"{"input_tokens":14}"#))
        let openAI = try await MockUpstream.start(.json("{}"))
        let server = try await server(anthropic: anthropic, openAI: openAI)
        let body = #"{"model":"ant/claude-3-haiku","messages":[{"role":"user","content":"Hello"}],"x_more":1}"#
        let counted = try await server.send(path, body: body, headers: [("anthropic-beta", "token-counting-2024-11-01")])
        #expect(counted.status == 200)
        #expect(counted.body == #"{"input_tokens":14}"#)
        let sent = try #require(anthropic.requests.first)
        #expect(sent.path == "/v1/messages/count_tokens")
        #expect(String(decoding: sent.body, as: UTF8.self)
            == #"{"model":"claude-3-haiku","messages":[{"role":"user","content":"Hello"}],"x_more":1}"#)
        #expect(sent.headers["anthropic-beta"] == "token-counting-2024-11-01")

        let unsupported = try await server.json(
            path, body: #"{"model":"oai/gpt-4o","messages":[{"role":"user","content":"Hello"}]}"#)
        #expect(unsupported.status == 404)
        #expect(unsupported.json["type"] == "error")
        #expect(unsupported.json["error"]?["type"] == "not_found_error")
        #expect(unsupported.json["error"]?["message"]?.stringValue?.contains("'oai'") == true)
        #expect(openAI.requests.isEmpty)
        // The request policy applies: no override URL outside the allow-list.
        let overridden = try await server.json(path, body: body, headers: [("x-chronicle-override-url", openAI.url())])
        #expect(overridden.status == 403)
        #expect(overridden.json["error"]?["type"] == "permission_error")
        #expect(openAI.requests.isEmpty)
        // Counting calls no model: nothing is recorded.
        #expect(server.log.records.isEmpty)
        await server.stop()
        await anthropic.stop()
        await openAI.stop()
    }

    /// `/v1/chat/completions` answers carry the call's id too: streamed, not streamed, and failed.
    @Test func callIDOnChatCompletions() async throws {
        let upstream = try await MockUpstream.start(replies: [
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .sse(try Fixtures.text("openai_text_response_streaming.txt")),
            .json(#"{"error":{"message":"bad"}}"#, status: 400),
        ])
        let server = try await server(openAI: upstream)
        let plain = try await server.send(
            "/v1/chat/completions", body: #"{"model":"oai/gpt","messages":[{"role":"user","content":"hi"}]}"#)
        let streamed = try await server.send(
            "/v1/chat/completions", body: #"{"model":"oai/gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        let failed = try await server.send(
            "/v1/chat/completions", body: #"{"model":"oai/gpt","messages":[{"role":"user","content":"hi"}]}"#)
        let statuses: [Int] = [plain.status, streamed.status, failed.status]
        #expect(statuses == [200, 200, 400])
        let records = try await server.records(3)
        let ids: [String?] = [plain, streamed, failed].map { $0.headers.first(name: "x-chronicle-call-id") }
        let recorded: [String?] = records.map { $0.id.uuidString.lowercased() }
        #expect(ids == recorded)
        // A request refused before the gateway took it has no call to name.
        let refused = try await server.send("/v1/chat/completions", body: "{nope")
        #expect(refused.headers.first(name: "x-chronicle-call-id") == nil)
        await server.stop()
        await upstream.stop()
    }
}
