import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing
import NIOConcurrencyHelpers

/// The text content and usage a recorded SSE stream adds up to, read independently of the gateway.
func expectedStream(_ fixture: String) throws -> (content: String, arguments: String, dataEvents: Int) {
    var content = ""
    var arguments = ""
    var count = 0
    for line in try Fixtures.text(fixture).split(separator: "\n") where line.hasPrefix("data: ") && line != "data: [DONE]" {
        count += 1
        let chunk = try JSONCoding.decode(JSONValue.self, from: Array(line.dropFirst(6).utf8))
        for choice in chunk["choices"]?.arrayValue ?? [] {
            content += choice["delta"]?["content"]?.stringValue ?? ""
            for call in choice["delta"]?["tool_calls"]?.arrayValue ?? [] {
                arguments += call["function"]?["arguments"]?.stringValue ?? ""
            }
        }
    }
    return (content, arguments, count)
}

@Suite("OpenAI-format providers against recorded traffic")
struct OpenAIProviderTests {
    func gateway(upstream: MockUpstream, provider: String, sink: InMemoryLog? = nil,
                 configuration: GatewayConfiguration = GatewayConfiguration(),
                 clock: any GatewayClock = SystemClock(), kind: UpstreamHTTPClientKind = .nio) throws -> Gateway {
        var config = configuration
        config.upstreamHTTPClient = kind
        config.providers.insert(CustomProviderConfig(name: provider, url: upstream.url()), at: 0)
        // Point the built-in at the mock while keeping its transforms: override_url does that.
        var builder = Gateway.Builder().withHTTPClient(HTTPClient.shared).withClock(clock)
        if provider == "openai" || provider == "groq" {
            config.providers.removeFirst()
        }
        builder = builder.withConfiguration(config)
        if let sink { builder = builder.withLogSink(sink) }
        return try builder.build()
    }

    func send(_ gateway: Gateway, _ fixture: String, model: String, stream: Bool, upstream: MockUpstream,
              key: String = "sk-test") async throws -> CollectedResponse {
        var body = try Fixtures.request(fixture)
        body.model = model
        body.stream = stream
        let options = RequestOptions(overrideURL: upstream.url(), apiKey: key)
        return try await gateway.send(body, options: options).collect()
    }

    /// Non-streaming text and tools: the collected response is the recording, id and extras included.
    @Test(arguments: [
        ("openai", "openai_text.json", "openai_text_response_nonstreaming.json"),
        ("openai", "openai_tools.json", "openai_tools_response_nonstreaming.json"),
        ("groq", "groq_text.json", "groq_text_response_nonstreaming.json"),
        ("groq", "groq_tools.json", "groq_tools_response_nonstreaming.json"),
    ], UpstreamHTTPClientKind.allCases)
    func nonStreaming(_ fixture: (provider: String, requestFixture: String, responseFixture: String),
                      _ kind: UpstreamHTTPClientKind) async throws {
        let (provider, requestFixture, responseFixture) = fixture
        let upstream = try await MockUpstream.start(.json(try Fixtures.text(responseFixture)))
        defer { Task { await upstream.stop() } }
        let gateway = try gateway(upstream: upstream, provider: provider, kind: kind)
        let result = try await send(gateway, requestFixture, model: "\(provider)/some-model", stream: false, upstream: upstream)
        let expected = try JSONCoding.decode(ChatResponse.self, from: Array(try Fixtures.text(responseFixture).utf8))
        #expect(result.response == expected)
        #expect(result.wasStreaming == false)
        #expect(result.chunkCount == 1)
        #expect(result.requestInfo.provider == provider)
        #expect(result.requestInfo.model == "\(provider)/some-model")
        #expect(result.responseInfo?.model == expected.model)

        // The upstream saw the stripped model, the key, and the request's tools.
        let sent = try #require(upstream.requests.first)
        #expect(sent.json?["model"] == "some-model")
        #expect(sent.headers["authorization"] == "Bearer sk-test")
        #expect(sent.json?["tools"] == (try Fixtures.json(requestFixture))["tools"])
        #expect(sent.json?["stream"] == false)
    }

    /// Streaming text and tools: chunks fold into the content, tool arguments, usage and finish reason recorded.
    @Test(arguments: [
        ("openai", "openai_text.json", "openai_text_response_streaming.txt", FinishReason.stop, 77),
        ("openai", "openai_tools.json", "openai_tools_response_streaming.txt", FinishReason.stop, 90),
        ("groq", "groq_text.json", "groq_text_response_streaming.txt", FinishReason.stop, 367),
        ("groq", "groq_tools.json", "groq_tools_response_streaming.txt", FinishReason.toolCalls, 902),
    ], UpstreamHTTPClientKind.allCases)
    func streaming(_ fixture: (provider: String, requestFixture: String, responseFixture: String, finish: FinishReason,
                               totalTokens: Int), _ kind: UpstreamHTTPClientKind) async throws {
        let (provider, requestFixture, responseFixture, finish, totalTokens) = fixture
        let upstream = try await MockUpstream.start(.sse(try Fixtures.text(responseFixture)))
        defer { Task { await upstream.stop() } }
        let gateway = try gateway(upstream: upstream, provider: provider, kind: kind)
        let result = try await send(gateway, requestFixture, model: "\(provider)/m", stream: true, upstream: upstream)
        let expected = try expectedStream(responseFixture)
        let message = try #require(result.response.choices.first?.message)
        #expect(result.wasStreaming)
        #expect(result.chunkCount == expected.dataEvents)
        #expect((message.text ?? "") == expected.content)
        #expect((message.toolCalls?.first?.function.arguments ?? "") == expected.arguments)
        #expect(message.role == "assistant")
        #expect(result.response.choices.first?.finishReason == finish)
        #expect(result.response.usage?.totalTokens == totalTokens)
        #expect(result.response.id?.hasPrefix("chatcmpl-") == true)

        let sent = try #require(upstream.requests.first?.json)
        #expect(sent["stream"] == true)
        // Only OpenAI is asked for streamed usage; Groq reports it in x_groq.
        #expect(sent["stream_options"] == (provider == "openai" ? ["include_usage": true] : nil))
        #expect(upstream.requests.first?.headers["accept"] == "text/event-stream")
    }

    /// Rust Chronicle's chunk counts: OpenAI text streaming 65 chunks, Groq text 351.
    @Test func referenceChunkCounts() async throws {
        for (provider, fixture, count) in [("openai", "openai_text_response_streaming.txt", 65),
                                           ("groq", "groq_text_response_streaming.txt", 351)] {
            let upstream = try await MockUpstream.start(.sse(try Fixtures.text(fixture)))
            let gateway = try gateway(upstream: upstream, provider: provider)
            let result = try await send(gateway, "openai_text.json", model: "\(provider)/m", stream: true, upstream: upstream)
            #expect(result.chunkCount == count)
            await upstream.stop()
        }
    }

    /// Upstream errors map to kinds and statuses; 5xx is retried, 400 is not; the body is kept.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func upstreamErrors(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(
            .json(#"{"error":{"message":"overloaded","type":"server_error"}}"#, status: 503),
            .json(#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#, status: 400))
        defer { Task { await upstream.stop() } }
        let gateway = try gateway(upstream: upstream, provider: "openai", clock: ManualClock(autoAdvance: true), kind: kind)
        do {
            _ = try await send(gateway, "openai_text.json", model: "gpt-4o", stream: false, upstream: upstream)
            Issue.record("expected a failure")
        } catch let GatewayError.provider(error, retries, _, attempts) {
            #expect(error.kind == .badInput)
            #expect(error.httpStatus == 400)
            #expect(error.body?["error"]?["message"] == "bad model")
            #expect(retries == 1)
            #expect(attempts.map(\.status) == [503, 400])
        }
    }

    /// A 429's Retry-After header is read and waited for before the retry.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func rateLimitRetryAfterHeader(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(
            .json(#"{"error":{"message":"slow down"}}"#, status: 429, headers: [("retry-after", "2")]),
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        defer { Task { await upstream.stop() } }
        let clock = ManualClock(autoAdvance: true)
        let gateway = try gateway(upstream: upstream, provider: "openai", clock: clock, kind: kind)
        let result = try await send(gateway, "openai_text.json", model: "gpt-4o", stream: false, upstream: upstream)
        #expect(result.requestInfo.wasRateLimited)
        #expect(clock.sleeps == [.seconds(2)])
    }

    /// A missing key variable is a clear error naming it; the variable's name is never sent as a key.
    @Test func missingKeyVariable() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        defer { Task { await upstream.stop() } }
        let config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "custom", url: upstream.url(), apiKey: "CHRONICLE_TEST_UNSET_KEY_VARIABLE", apiKeySource: "env",
            prefix: "custom/")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config).build()
        do {
            _ = try await gateway.send(request("custom/model")).collect()
            Issue.record("expected a failure")
        } catch let GatewayError.provider(error, _, _, _) {
            #expect(error.kind == .authMissing)
            #expect(error.message.contains("CHRONICLE_TEST_UNSET_KEY_VARIABLE"))
        }
        #expect(upstream.requests.isEmpty)
    }

    /// A timed-out attempt falls back to the next choice.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func timeoutFallsBack(_ kind: UpstreamHTTPClientKind) async throws {
        let slow = try await MockUpstream.start(Reply(body: .hang))
        let fast = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        defer { Task { await slow.stop(); await fast.stop() } }
        let clock = ManualClock()
        var config = GatewayConfiguration(
            providers: [CustomProviderConfig(name: "slow", url: slow.url()), CustomProviderConfig(name: "fast", url: fast.url())],
            aliases: [AliasConfig(name: "both", models: [AliasModel(model: "m", provider: "slow"), AliasModel(model: "m", provider: "fast")])])
        config.upstreamHTTPClient = kind
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withClock(clock).withConfiguration(config)
            .withoutDefaultProviders().build()
        let sending = Task { try await gateway.send(request("both"), options: RequestOptions(timeout: .seconds(5))).collect() }
        await clock.waitForPendingSleeps(1)
        while slow.requests.isEmpty { await Task.yield() }
        clock.advance(by: .seconds(5))
        let result = try await sending.value
        #expect(result.requestInfo.provider == "fast")
        #expect(result.requestInfo.numRetries == 1)
    }

    /// A stream that stalls past the idle timeout ends with a timeout error; the partial response is recorded.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func stalledStreamTimesOut(_ kind: UpstreamHTTPClientKind) async throws {
        let first = Array("data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n".utf8)
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "text/event-stream")], body: .partsThenHang([first])))
        defer { Task { await upstream.stop() } }
        let clock = ManualClock()
        let sink = InMemoryLog()
        var config = GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")],
                                          streamIdleTimeout: .seconds(30))
        config.upstreamHTTPClient = kind
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withClock(clock).withConfiguration(config)
            .withLogSink(sink).build()
        let received = NIOLockedValueBox(0)
        let reading = Task {
            var chunks = 0
            do {
                for try await event in try await gateway.send(request("p/m").streaming()) {
                    if case .chunk = event {
                        chunks += 1
                        received.withLockedValue { $0 += 1 }
                    }
                }
                return (chunks, ProviderErrorKind?.none)
            } catch let error as ProviderError {
                return (chunks, error.kind)
            }
        }
        // Once the first chunk is in, the only pending sleep is the idle wait for the next one.
        while received.withLockedValue({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(5)) }
        await clock.waitForPendingSleeps(1)
        clock.advance(by: .seconds(31))
        let (chunks, kind) = try await reading.value
        #expect(chunks == 1)
        #expect(kind == .timeout)
        let record = try #require(sink.records.first)
        #expect(record.error?.kind == "timeout")
        #expect(record.response?.choices.first?.message.text == "Hel")
    }

    /// Dropping a stream part-way cancels the upstream request and records the call as cancelled.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func droppedStreamCancelsUpstream(_ kind: UpstreamHTTPClientKind) async throws {
        let events = (0..<50).map { "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\($0) \"}}]}\n\n" }
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "text/event-stream")],
                                                          body: .parts(events.map { Array($0.utf8) }, delay: .milliseconds(20))))
        defer { Task { await upstream.stop() } }
        let sink = InMemoryLog()
        var config = GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")])
        config.upstreamHTTPClient = kind
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config).withLogSink(sink).build()
        do {
            var count = 0
            for try await event in try await gateway.send(request("p/m").streaming()) {
                if case .chunk = event { count += 1 }
                if count == 3 { break }
            }
        }
        for _ in 0..<200 where upstream.streamOutcomes.cancelled == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(upstream.streamOutcomes.cancelled == 1)
        #expect(upstream.streamOutcomes.finished == 0)
        let record = try #require(sink.records.first)
        #expect(record.error?.kind == "cancelled")
        #expect(record.response?.choices.first?.message.text == "0 1 2 ")
    }
}

extension ChatRequest {
    func streaming() -> ChatRequest {
        var copy = self
        copy.stream = true
        return copy
    }
}

typealias Reply = MockUpstream.Reply
