import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleTesting
import Foundation
import NIOCore
import Testing

@Suite("Chat server over real sockets")
struct ChatServerTests {
    /// A server whose `up/` prefix routes to `upstream`.
    func server(_ upstream: MockUpstream, maxBodySize: Int = 20 * 1024 * 1024,
                aliases: [AliasConfig] = []) async throws -> RunningServer {
        try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream",
                                                 prefix: "up/")],
                aliases: aliases, retry: RetryOptions(maxTries: 1)),
            maxBodySize: maxBodySize)
    }

    let textRequest = #"{"model":"up/gpt","messages":[{"role":"user","content":"Who was Lassie?"}]}"#

    /// Liveness and health answer JSON.
    @Test func health() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(upstream)
        for path in ["/", "/healthz"] {
            let response = try await server.json(path, method: .GET)
            #expect(response.status == 200)
            #expect(response.json == ["status": "ok"])
        }
        await server.stop()
        await upstream.stop()
    }

    /// A non-streamed answer has OpenAI's shape plus `meta`.
    @Test(arguments: ["/v1/chat/completions", "/chat", "/chat/completions"])
    func nonStreaming(path: String) async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await server(upstream)
        let response = try await server.json(path, body: textRequest)
        #expect(response.status == 200)
        #expect(response.json["id"] == "chatcmpl-9VE2R0BxEW9IIrOIcV0sXD8U2YwQg")
        #expect(response.json["object"] == "chat.completion")
        #expect(response.json["model"] == "gpt-3.5-turbo-0125")
        #expect(response.json["usage"]?["total_tokens"] == 112)
        #expect(response.json["choices"]?.arrayValue?.first?["finish_reason"] == "stop")
        #expect(response.json["meta"]?["provider"] == "up")
        #expect(response.json["meta"]?["model"] == "up/gpt")
        #expect(response.json["meta"]?["num_retries"] == 0)
        #expect(response.json["meta"]?["was_rate_limited"] == false)
        let record = try #require(try await server.records(1).first)
        #expect(record.id.uuidString.lowercased() == response.json["meta"]?["id"]?.stringValue)
        #expect(upstream.requests.first?.headers["authorization"] == "Bearer sk-upstream")
        await server.stop()
        await upstream.stop()
    }

    /// The upstream receives the client's bytes as they were sent, with only the model's routing prefix and
    /// Chronicle's own members left out (no decoding and encoding on the way; only the white space between
    /// top-level members is not kept),
    /// and the call records that request, and the answer as the upstream sent it.
    @Test func requestForwardedAsSent() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await server(upstream)
        let body = #"{ "model" : "up/gpt","metadata":{"application":"app"}, "messages":[{"role":"user","content":"Who was Lassie?\u00e9", "x_extra": [1, 2.50]}],"temperature":0.70,"service_tier":"flex"}"#
        let response = try await server.json("/v1/chat/completions", body: body)
        #expect(response.status == 200)
        let sent = try #require(upstream.requests.first)
        #expect(String(decoding: sent.body, as: UTF8.self)
            == #"{"model" : "gpt","messages":[{"role":"user","content":"Who was Lassie?\u00e9", "x_extra": [1, 2.50]}],"temperature":0.70,"service_tier":"flex"}"#)
        let record = try #require(try await server.records(1).first)
        #expect(record.options.metadata.application == "app")
        guard case .wire(let recorded) = record.request else {
            Issue.record("the call should hold the client's bytes")
            return
        }
        // Recorded with the model as the client named it.
        #expect(recorded.recordedJSON
            == #"{"model" : "up/gpt","messages":[{"role":"user","content":"Who was Lassie?\u00e9", "x_extra": [1, 2.50]}],"temperature":0.70,"service_tier":"flex"}"#)
        // The answer is kept as the upstream's bytes, and reads back whole.
        let answer = try Fixtures.text("openai_text_response_nonstreaming.json")
        #expect(record.relayedResponse == .response(Array(answer.utf8)))
        #expect(record.response == (try JSONCoding.decode(ChatResponse.self, from: Array(answer.utf8))))
        #expect(record.usage?.totalTokens == 112)
        await server.stop()
        await upstream.stop()
    }

    /// A stream: `meta` on the first chunk only, chunks as they came, `[DONE]` last; the gateway's own usage
    /// request is not forwarded unless the client asked.
    @Test(arguments: [false, true])
    func streaming(clientAsksForUsage: Bool) async throws {
        let upstream = try await MockUpstream.start(.sse(try Fixtures.text("openai_text_response_streaming.txt")))
        var security = SecuritySettings()
        security.overrideURLAllowList = [upstream.url()]
        let server = try await RunningServer.start(configuration: GatewayConfiguration(retry: RetryOptions(maxTries: 1)),
                                                   security: security)
        let usage = clientAsksForUsage ? #","stream_options":{"include_usage":true}"# : ""
        let body = #"{"model":"gpt-4o","stream":true,"override_url":"\#(upstream.url())","api_key":"k","messages":[{"role":"user","content":"hi"}]\#(usage)}"#
        let response = try await server.send("/v1/chat/completions", body: body)
        #expect(response.status == 200)
        #expect(response.headers.first(name: "content-type") == "text/event-stream")
        let events = sseEvents(response.body)
        #expect(events.last?.data == "[DONE]")
        let chunks = try events.dropLast().map { try JSONCoding.decode(JSONValue.self, from: Array($0.data.utf8)) }
        #expect(chunks.first?["meta"]?["provider"] == "openai")
        #expect(chunks.dropFirst().allSatisfy { $0["meta"] == nil })
        #expect(chunks.allSatisfy { $0["object"] == "chat.completion.chunk" })
        let text = chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
        #expect(text.hasPrefix("Lassie was a fictional Collie"))
        let usageChunks = chunks.filter { $0["choices"]?.arrayValue?.isEmpty == true }
        #expect(usageChunks.count == (clientAsksForUsage ? 1 : 0))
        let record = try #require(try await server.records(1).first)
        #expect(record.response?.usage?.totalTokens == 77)
        #expect(record.streamed)
        await server.stop()
        await upstream.stop()
    }

    /// OpenAI-format chunks are relayed as the upstream sent them (not decoded and re-encoded): byte for
    /// byte after the first, which only gains `meta`; a chunk spread over several `data:` lines, which
    /// cannot be relayed as is, is encoded onto one line.
    @Test func streamRelaysUpstreamBytes() async throws {
        let fixture = try Fixtures.text("openai_tools_response_streaming.txt")
        let upstreamPayloads = sseEvents(fixture).map(\.data)
        let multiLine = #"data: {"id":"c2","object":"chat.completion.chunk","created":5,"model":"m","#
            + "\ndata: " + #""choices":[{"index":0,"delta":{"content":"tail"}}]}"# + "\n\n"
        let text = fixture.replacingOccurrences(of: "data: [DONE]", with: multiLine + "data: [DONE]")
        let upstream = try await MockUpstream.start(.sse(text))
        let server = try await server(upstream)
        let response = try await server.send(
            "/v1/chat/completions", body: #"{"model":"up/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(response.status == 200)
        let relayed = sseEvents(response.body).map(\.data)
        let expected = upstreamPayloads.filter { $0 != "[DONE]" }
        // The fixture ends with a usage-only chunk the client did not ask for: it is recorded, not relayed.
        let forwarded = expected.filter { !$0.contains(#""choices":[]"#) }
        #expect(relayed.count == forwarded.count + 2)
        #expect(Array(relayed.dropFirst().prefix(forwarded.count - 1)) == Array(forwarded.dropFirst()))
        var first = try JSONCoding.decode(JSONValue.self, from: Array(relayed[0].utf8))
        #expect(first["meta"]?["provider"] == "up")
        if case .object(var members) = first { members["meta"] = nil; first = .object(members) }
        #expect(first == (try JSONCoding.decode(JSONValue.self, from: Array(forwarded[0].utf8))))
        let tail = try JSONCoding.decode(JSONValue.self, from: Array(relayed[forwarded.count].utf8))
        #expect(tail["choices"]?.arrayValue?.first?["delta"]?["content"] == "tail")
        #expect(relayed.last == "[DONE]")
        await server.stop()
        await upstream.stop()
    }

    /// A complete OpenAI-format response is relayed as it came with `meta` appended; one that carries its
    /// own `meta` (a gateway behind the gateway) is encoded again, so the client sees one `meta`, ours.
    @Test func responseRelaysUpstreamBytes() async throws {
        let fixture = try Fixtures.text("openai_text_response_nonstreaming.json")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let nested = #"{"id":"n","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"meta":{"provider":"inner"}}"#
        let upstream = try await MockUpstream.start(.json(fixture), .json(nested))
        let server = try await server(upstream)
        let request = #"{"model":"up/m","messages":[{"role":"user","content":"hi"}]}"#
        let plain = try await server.send("/v1/chat/completions", body: request)
        #expect(plain.status == 200)
        #expect(plain.body.hasPrefix(String(fixture.dropLast())), "the upstream's bytes, then meta")
        var decoded = try JSONCoding.decode(JSONValue.self, from: Array(plain.body.utf8))
        #expect(decoded["meta"]?["provider"] == "up")
        if case .object(var members) = decoded { members["meta"] = nil; decoded = .object(members) }
        #expect(decoded == (try JSONCoding.decode(JSONValue.self, from: Array(fixture.utf8))))
        let wrapped = try await server.send("/v1/chat/completions", body: request)
        let wrappedJSON = try JSONCoding.decode(JSONValue.self, from: Array(wrapped.body.utf8))
        #expect(wrappedJSON["meta"]?["provider"] == "up")
        #expect(wrapped.body.components(separatedBy: #""meta""#).count == 2, "one meta member")
        await server.stop()
        await upstream.stop()
    }

    /// Bad bodies get JSON errors that say what is wrong.
    @Test func badBodies() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(upstream)
        let cases: [(String, Int, String, String)] = [
            ("{not json", 400, "invalid_json", "not valid JSON"),
            (#"{"model":"up/x"}"#, 400, "invalid_request", "messages"),
            (#"{"model":"up/x","messages":[{"role":"user","content":5}]}"#, 400, "invalid_request", "messages[0].content"),
            (#"{"model":"up/x","messages":[],"temperature":"hot"}"#, 400, "invalid_request", "temperature"),
            (#"{"messages":[]}"#, 400, "missing_model", "model"),
            (#"{"model":"nobody/x","messages":[]}"#, 404, "model_not_found", "nobody/x"),
            (#"{"model":"x","provider":"ghost","messages":[]}"#, 400, "unknown_provider", "ghost"),
        ]
        for (body, status, kind, fragment) in cases {
            let response = try await server.json("/v1/chat/completions", body: body)
            #expect(response.status == status, "\(body)")
            #expect(response.json["error"]?["kind"] == .string(kind), "\(body)")
            #expect(response.json["error"]?["message"]?.stringValue?.contains(fragment) == true, "\(body): \(response.json)")
        }
        #expect(upstream.requests.isEmpty)
        await server.stop()
        await upstream.stop()
    }

    /// A body over the limit is refused with 413.
    @Test func bodyTooLarge() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(upstream, maxBodySize: 1024)
        let big = #"{"model":"up/x","messages":[{"role":"user","content":"\#(String(repeating: "a", count: 4096))"}]}"#
        let response = try await server.json("/v1/chat/completions", body: big)
        #expect(response.status == 413)
        #expect(response.json["error"]?["kind"] == "body_too_large")
        await server.stop()
        await upstream.stop()
    }

    /// Bad x-chronicle header values are 422s naming the header.
    @Test(arguments: [("x-chronicle-timeout", "soon"), ("x-chronicle-run-id", "not-a-uuid"),
                      ("x-chronicle-step-index", "-1"), ("x-chronicle-models", "[{]"), ("x-chronicle-retry", "5"),
                      ("x-chronicle-random-choice", "maybe"), ("x-chronicle-extra-meta", "[1]")])
    func badHeaders(name: String, value: String) async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(upstream)
        let response = try await server.json("/v1/chat/completions", body: textRequest, headers: [(name, value)])
        #expect(response.status == 422)
        #expect(response.json["error"]?["kind"] == "invalid_proxy_headers")
        #expect(response.json["error"]?["message"]?.stringValue?.contains(name) == true)
        await server.stop()
        await upstream.stop()
    }

    /// Header options and metadata merge with the body's: body wins, extra-meta keys merge.
    @Test func headersMergeWithBody() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await server(upstream)
        let body = #"{"model":"ignored","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":false,"metadata":{"application":"from-body","k1":"body"}}"#
        let runID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        let response = try await server.json("/v1/chat/completions", body: body, headers: [
            ("x-chronicle-model", "up/model-from-header"), ("x-chronicle-application", "from-header"),
            ("x-chronicle-environment", "staging"), ("x-chronicle-run-id", runID), ("x-chronicle-step-index", "3"),
            ("x-chronicle-extra-meta", #"{"k1":"header","k2":"header"}"#),
        ])
        #expect(response.status == 200)
        #expect(response.json["meta"]?["model"] == "up/model-from-header")
        let sent = try #require(upstream.requests.first?.json)
        #expect(sent["model"] == "model-from-header")
        #expect(sent["parallel_tool_calls"] == false)
        #expect(sent["metadata"] == nil)
        let record = try #require(try await server.records(1).first)
        let metadata = record.options.metadata
        #expect(metadata.application == "from-body")
        #expect(metadata.environment == "staging")
        #expect(metadata.runID?.uuidString.lowercased() == runID)
        #expect(metadata.stepIndex == 3)
        #expect(metadata.extra == ["k1": "body", "k2": "header"])
        await server.stop()
        await upstream.stop()
    }

    /// `x-chronicle-api-key` names a configured key, like `api_key_name`; an unknown name is a 400.
    @Test func namedKeyHeader() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream", prefix: "up/")],
            apiKeys: [APIKeyConfig(name: "team", source: "literal", value: "sk-team")]))
        let ok = try await server.json("/v1/chat/completions", body: textRequest, headers: [("x-chronicle-api-key", "team")])
        #expect(ok.status == 200)
        #expect(upstream.requests.first?.headers["authorization"] == "Bearer sk-team")
        let unknown = try await server.json("/v1/chat/completions", body: textRequest,
                                            headers: [("x-chronicle-api-key", "nope")])
        #expect(unknown.status == 400)
        #expect(unknown.json["error"]?["kind"] == "unknown_api_key")
        #expect(unknown.json["error"]?["message"]?.stringValue?.contains("nope") == true)
        await server.stop()
        await upstream.stop()
    }

    /// Provider failures keep the provider's status, kind and body; 429 carries Retry-After.
    @Test func providerFailures() async throws {
        let upstream = try await MockUpstream.start(
            .json(#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#, status: 401),
            .json(#"{"error":{"message":"Rate limit reached"}}"#, status: 429, headers: [("retry-after", "60")]))
        let server = try await server(upstream)
        let auth = try await server.json("/v1/chat/completions", body: textRequest)
        #expect(auth.status == 401)
        #expect(auth.json["error"]?["kind"] == "provider_rejected_token")
        #expect(auth.json["error"]?["details"]?["body"]?["error"]?["message"] == "Incorrect API key")
        #expect(auth.json["error"]?["message"]?.stringValue?.contains("Incorrect API key") == true)
        let limited = try await server.json("/v1/chat/completions", body: textRequest)
        #expect(limited.status == 429)
        #expect(limited.json["error"]?["kind"] == "rate_limit")
        #expect(limited.headers.first(name: "retry-after") == "60")
        let records = try await server.records(2)
        #expect(records.map(\.httpStatus) == [401, 429])
        #expect(records.first?.error?.kind == "provider_rejected_token")
        await server.stop()
        await upstream.stop()
    }

    /// An unreachable provider is a 502 connection error.
    @Test func unreachableProvider() async throws {
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [CustomProviderConfig(name: "dead", url: "http://127.0.0.1:1/v1/chat/completions", prefix: "dead/")],
            retry: RetryOptions(maxTries: 1)))
        let response = try await server.json("/v1/chat/completions", body: #"{"model":"dead/m","messages":[]}"#)
        #expect(response.status == 502)
        #expect(response.json["error"]?["kind"] == "provider_connection_error")
        await server.stop()
    }

    /// A failure mid-stream becomes `event: error`, then `[DONE]`.
    @Test func midStreamError() async throws {
        let text = """
            data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}

            event: error
            data: {"error":{"type":"server_error"},"message":"upstream broke"}


            """
        let upstream = try await MockUpstream.start(.sse(text))
        let server = try await server(upstream)
        let response = try await server.send("/v1/chat/completions",
                                             body: #"{"model":"up/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        let events = sseEvents(response.body)
        #expect(events.count == 3)
        #expect(events[1].event == "error")
        let payload = try JSONCoding.decode(JSONValue.self, from: Array(events[1].data.utf8))
        #expect(payload["message"] == "upstream broke")
        #expect(events[2].data == "[DONE]")
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.kind == "generic")
        #expect(record.response?.choices.first?.message.text == "Hi")
        await server.stop()
        await upstream.stop()
    }

    /// A non-streamed request whose upstream stream fails part-way gets the provider's error as JSON.
    @Test func brokenStreamForNonStreamingClient() async throws {
        let text = "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\nevent: error\ndata: {\"message\":\"upstream broke\"}\n\n"
        let upstream = try await MockUpstream.start(.sse(text))
        let server = try await server(upstream)
        let response = try await server.json("/v1/chat/completions", body: textRequest)
        #expect(response.status == 500)
        #expect(response.json["error"]?["kind"] == "generic")
        #expect(response.json["error"]?["message"]?.stringValue?.contains("upstream broke") == true)
        await server.stop()
        await upstream.stop()
    }

    /// A client that disconnects mid-stream cancels the upstream request; the call is logged as cancelled.
    @Test func clientDisconnectCancelsUpstream() async throws {
        let events = (0..<100).map {
            Array("data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\($0) \"}}]}\n\n".utf8)
        }
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "text/event-stream")],
                                                          body: .parts(events, delay: .milliseconds(20))))
        let server = try await server(upstream)
        var request = HTTPClientRequest(url: server.base + "/v1/chat/completions")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: #"{"model":"up/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#))
        // A dedicated client so that closing it drops the connection.
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        // A client dropped without shutting it down stops the process: shut it down however this ends.
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            var received = 0
            for try await part in response.body {
                received += part.readableBytes
                if received > 200 { break }
            }
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
        for _ in 0..<300 where upstream.streamOutcomes.cancelled == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(upstream.streamOutcomes.cancelled == 1)
        #expect(upstream.streamOutcomes.finished == 0)
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.kind == "cancelled")
        await server.stop()
        await upstream.stop()
    }

    /// Unknown routes and methods answer JSON errors.
    @Test func unknownRoute() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(upstream)
        let response = try await server.json("/nope", method: .GET)
        #expect(response.status == 404)
        #expect(response.json["error"]?["kind"] == "not_found")
        let wrongMethod = try await server.json("/v1/chat/completions", method: .GET)
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.headers.first(name: "allow") == "POST")
        #expect(wrongMethod.json["error"]?["kind"] == "method_not_allowed")
        // A negative number is a shape error naming the field, not "malformed JSON".
        let negative = try await server.json("/v1/chat/completions", body: #"{"model":"up/x","messages":[],"timeout":-5}"#)
        #expect(negative.status == 400)
        #expect(negative.json["error"]?["kind"] == "invalid_request")
        #expect(negative.json["error"]?["message"]?.stringValue?.contains("timeout") == true)
        await server.stop()
        await upstream.stop()
    }

    /// /v1/models lists aliases and their models, then the providers' models, in OpenAI's list format.
    @Test func models() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await server(upstream, aliases: [
            AliasConfig(name: "smart", models: [AliasModel(model: "gpt-4o", provider: "up")]),
        ])
        let response = try await server.json("/v1/models", method: .GET)
        #expect(response.json["object"] == "list")
        let data = try #require(response.json["data"]?.arrayValue)
        #expect(Array(data.prefix(3)) == [
            ["id": "smart", "object": "model", "created": 0, "owned_by": "chronicle"],
            ["id": "gpt-4o", "object": "model", "created": 0, "owned_by": "up"],
            ["id": "up/", "object": "model", "created": 0, "owned_by": "up"],
        ])
        await server.stop()
        await upstream.stop()
    }
}

typealias Reply = MockUpstream.Reply
