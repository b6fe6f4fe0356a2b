import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

@Suite("Anthropic provider")
struct AnthropicProviderTests {
    func gateway(_ upstream: MockUpstream, kind: UpstreamHTTPClientKind = .nio) throws -> Gateway {
        var config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "anthropic", url: upstream.url("/v1/messages"), apiKey: "sk-ant-test", format: .anthropic,
            prefix: "anthropic/")])
        config.upstreamHTTPClient = kind
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withClock(ManualClock(autoAdvance: true)).build()
    }

    func openAIRequest(_ fixture: String, stream: Bool) throws -> ChatRequest {
        // The Anthropic fixtures are native requests; build the OpenAI-format equivalent.
        let native = try Fixtures.json(fixture)
        var request = ChatRequest(
            model: "anthropic/" + (native["model"]?.stringValue ?? ""),
            messages: [ChatMessage(role: "user", content: .text(native["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""))],
            stream: stream, maxTokens: 1024)
        if let tools = native["tools"]?.arrayValue {
            request.tools = tools.map { Tool(function: FunctionDefinition(
                name: $0["name"]?.stringValue ?? "", description: $0["description"]?.stringValue,
                parameters: $0["input_schema"])) }
            request.toolChoice = ["type": "function", "function": ["name": "get_characteristics"]]
        }
        return request
    }

    /// Non-streamed text and tools convert back exactly; the upstream gets the native request.
    @Test(arguments: [("anthropic_text.json", "anthropic_text_response_nonstreaming.json"),
                      ("anthropic_tools.json", "anthropic_tools_response_nonstreaming.json")],
          UpstreamHTTPClientKind.allCases)
    func nonStreaming(_ fixtures: (requestFixture: String, responseFixture: String), _ kind: UpstreamHTTPClientKind)
        async throws
    {
        let (requestFixture, responseFixture) = fixtures
        let upstream = try await MockUpstream.start(.json(try Fixtures.text(responseFixture)))
        defer { Task { await upstream.stop() } }
        let result = try await gateway(upstream, kind: kind).send(try openAIRequest(requestFixture, stream: false)).collect()
        let native = try Fixtures.json(responseFixture)
        let message = try #require(result.response.choices.first?.message)
        #expect(result.response.id == native["id"]?.stringValue)
        #expect(result.response.model == "claude-3-haiku-20240307")
        #expect(result.response.usage?.promptTokens == native["usage"]?["input_tokens"]?.intValue)
        #expect(result.response.usage?.completionTokens == native["usage"]?["output_tokens"]?.intValue)
        if requestFixture == "anthropic_tools.json" {
            #expect(message.content == nil)
            #expect(message.toolCalls?.first?.id == "toolu_018FXg1i7nbT3stUdoysiffi")
            #expect(message.toolCalls?.first?.function.name == "get_characteristics")
            let arguments = try JSONCoding.decode(JSONValue.self, from: Array((message.toolCalls?.first?.function.arguments ?? "").utf8))
            #expect(arguments == ["name": "Daniel", "hair_color": "brown"])
            #expect(result.response.choices.first?.finishReason == .toolCalls)
        } else {
            #expect(message.text == native["content"]?.arrayValue?.first?["text"]?.stringValue)
            #expect(result.response.choices.first?.finishReason == .stop)
        }
        // The request the upstream saw is the native fixture (model, max_tokens, messages, tools, tool_choice).
        let sent = try #require(upstream.requests.first)
        #expect(sent.headers["x-api-key"] == "sk-ant-test")
        #expect(sent.headers["anthropic-version"] == "2023-06-01")
        let expected = try Fixtures.json(requestFixture)
        #expect(sent.json?["model"] == expected["model"])
        #expect(sent.json?["max_tokens"] == expected["max_tokens"])
        #expect(sent.json?["messages"] == [["role": "user", "content": [["type": "text", "text": expected["messages"]?.arrayValue?.first?["content"] ?? .null]]]])
        #expect(sent.json?["tools"] == expected["tools"])
        #expect(sent.json?["tool_choice"] == expected["tool_choice"])
    }

    /// Streams: text, tool input pieces, and the text-then-tool stream Rust Chronicle never tested.
    @Test(arguments: [
        ("anthropic_text_response_streaming.txt", FinishReason.stop),
        ("anthropic_tools_response_streaming.txt", FinishReason.toolCalls),
        ("anthropic_text_and_tools_response_streaming.txt", FinishReason.toolCalls),
    ], UpstreamHTTPClientKind.allCases)
    func streaming(_ fixtures: (fixture: String, finish: FinishReason), _ kind: UpstreamHTTPClientKind) async throws {
        let (fixture, finish) = fixtures
        let upstream = try await MockUpstream.start(.sse(try Fixtures.text(fixture)))
        defer { Task { await upstream.stop() } }
        let stream = try await gateway(upstream, kind: kind).send(try openAIRequest("anthropic_text.json", stream: true))
        var chunks: [ChatChunk] = []
        var collector = ResponseCollector()
        for try await event in stream {
            if case .chunk(let chunk) = event {
                chunks.append(chunk)
                collector.add(chunk)
            }
        }
        let response = collector.collected
        // Independently: the text and tool JSON the recording adds up to.
        var text = ""
        var json = ""
        var usage = (input: 0, output: 0)
        var toolName: String?
        for line in try Fixtures.text(fixture).split(separator: "\n") where line.hasPrefix("data: ") {
            let event = try JSONCoding.decode(JSONValue.self, from: Array(line.dropFirst(6).utf8))
            text += event["delta"]?["text"]?.stringValue ?? ""
            json += event["delta"]?["partial_json"]?.stringValue ?? ""
            toolName = toolName ?? event["content_block"]?["name"]?.stringValue
            if let input = event["message"]?["usage"]?["input_tokens"]?.intValue { usage.input = input }
            if let output = event["usage"]?["output_tokens"]?.intValue { usage.output = output }
        }
        let message = try #require(response.choices.first?.message)
        #expect((message.text ?? "") == text)
        #expect(message.role == "assistant")
        #expect(response.choices.first?.finishReason == finish)
        #expect(response.usage?.promptTokens == usage.input)
        #expect(response.usage?.completionTokens == usage.output)
        #expect(response.id?.hasPrefix("msg_") == true)
        #expect(chunks.allSatisfy { $0.id == response.id && $0.model == "claude-3-haiku-20240307" && $0.created > 0 })
        if let toolName {
            let call = try #require(message.toolCalls?.first)
            #expect(call.function.name == toolName)
            #expect(call.id?.hasPrefix("toolu_") == true)
            #expect(try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "").utf8))
                == JSONCoding.decode(JSONValue.self, from: Array(json.utf8)))
        }
    }

    /// The exact upstream JSON for system prompts, multi-turn tool use, images, stop, and tool_choice.
    @Test func requestConversion() throws {
        var request = ChatRequest(model: "claude-3-5-sonnet", messages: [
            ChatMessage(role: "system", content: .text("Be brief.")),
            ChatMessage(role: "user", content: .parts([.text("What is this?"), .imageURL("data:image/png;base64,iVBOR"),
                                                        .imageURL("https://example.com/cat.jpg")]), name: "ana"),
            ChatMessage(role: "assistant", content: .text(""), toolCalls: [
                ToolCall(id: "toolu_1", function: FunctionCall(name: "lookup", arguments: #"{"q":"cat"}"#)),
            ]),
            ChatMessage(role: "tool", content: .text("a cat"), toolCallID: "toolu_1", unknownFields: ["is_error": false]),
            ChatMessage(role: "system", content: .text("Answer in French.")),
            ChatMessage(role: "user", content: .text("Thanks")),
        ], stop: ["END"], tools: [Tool(function: FunctionDefinition(name: "noargs"))])
        request.temperature = 0.5
        request.user = "user-7"
        request.messages[5].cacheControl = ["type": "ephemeral"]
        let choices: [(JSONValue, JSONValue)] = [
            ("none", ["type": "none"]), ("auto", ["type": "auto"]), ("required", ["type": "any"]),
            (["type": "function", "function": ["name": "noargs"]], ["type": "tool", "name": "noargs"]),
        ]
        for (choice, expected) in choices {
            request.toolChoice = choice
            let body = try AnthropicTestAccess.convert(request)
            #expect(body["tool_choice"] == expected)
        }
        let body = try AnthropicTestAccess.convert(request)
        #expect(body["system"] == "Be brief.\n\nAnswer in French.")
        #expect(body["stop_sequences"] == ["END"])
        #expect(body["stop"] == nil)
        #expect(body["metadata"] == ["user_id": "user-7"])
        #expect(body["max_tokens"] == 4096)
        #expect(body["temperature"] == 0.5)
        #expect(body["tools"] == [["name": "noargs", "input_schema": ["type": "object", "properties": [:]]]])
        #expect(body["messages"] == [
            ["role": "user", "content": [
                ["type": "text", "text": "ana: What is this?"],
                ["type": "image", "source": ["type": "base64", "media_type": "image/png", "data": "iVBOR"]],
                ["type": "image", "source": ["type": "url", "url": "https://example.com/cat.jpg"]],
            ]],
            ["role": "assistant", "content": [["type": "tool_use", "id": "toolu_1", "name": "lookup", "input": ["q": "cat"]]]],
            ["role": "user", "content": [
                ["type": "tool_result", "tool_use_id": "toolu_1", "content": [["type": "text", "text": "a cat"]]],
                ["type": "text", "text": "Thanks", "cache_control": ["type": "ephemeral"]],
            ]],
        ])
    }

    /// Tool arguments that are not JSON are a clear 400-class error, not a crash.
    @Test func badToolArguments() {
        let request = ChatRequest(model: "claude", messages: [
            ChatMessage(role: "assistant", toolCalls: [ToolCall(id: "t", function: FunctionCall(name: "f", arguments: "{oops"))]),
        ])
        #expect(throws: ProviderError.self) { try AnthropicTestAccess.convert(request) }
    }

    /// Upstream errors keep Anthropic's error type: overloaded is retryable, invalid requests are not.
    @Test func errors() async throws {
        let upstream = try await MockUpstream.start(
            .json(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, status: 529),
            .json(#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens too large"}}"#, status: 400))
        defer { Task { await upstream.stop() } }
        do {
            _ = try await gateway(upstream).send(try openAIRequest("anthropic_text.json", stream: false)).collect()
            Issue.record("expected failure")
        } catch let GatewayError.provider(error, retries, _, _) {
            #expect(error.kind == .badInput)
            #expect(error.httpStatus == 400)
            #expect(error.message.contains("max_tokens too large"))
            #expect(retries == 1)
        }
    }
}
