import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

/// Recordings in Gemini's documented `GenerateContentResponse` format.
enum GeminiRecordings {
    static let text = """
        {"candidates":[{"content":{"parts":[{"text":"Lassie was a fictional Rough Collie."}],"role":"model"},
          "finishReason":"STOP","index":0}],
         "usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":9,"totalTokenCount":16},
         "modelVersion":"gemini-2.0-flash","responseId":"abc123"}
        """
    static let toolCall = """
        {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}],"role":"model"},
          "finishReason":"STOP","index":0}],
         "usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"totalTokenCount":25},"modelVersion":"gemini-2.0-flash"}
        """
    static let stream = """
        data: {"candidates":[{"content":{"parts":[{"text":"Lassie"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7},"modelVersion":"gemini-2.0-flash","responseId":"r1"}

        data: {"candidates":[{"content":{"parts":[{"text":" was a"}],"role":"model"},"index":0}],"modelVersion":"gemini-2.0-flash","responseId":"r1"}

        data: {"candidates":[{"content":{"parts":[{"text":" collie."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":5,"totalTokenCount":12},"modelVersion":"gemini-2.0-flash","responseId":"r1"}


        """
}

@Suite("Gemini provider")
struct GeminiProviderTests {
    func gateway(_ upstream: MockUpstream, kind: UpstreamHTTPClientKind = .nio) throws -> Gateway {
        var config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "gemini", url: "http://127.0.0.1:\(upstream.port)/v1beta", apiKey: "g-key", format: .gemini, prefix: "gemini/")])
        config.upstreamHTTPClient = kind
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config).build()
    }

    /// Text: content, usage, finish reason; the request goes to :generateContent with the key header.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func text(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(.json(GeminiRecordings.text))
        defer { Task { await upstream.stop() } }
        let result = try await gateway(upstream, kind: kind).send(request("gemini/gemini-2.0-flash")).collect()
        #expect(result.response.choices.first?.message.text == "Lassie was a fictional Rough Collie.")
        #expect(result.response.choices.first?.finishReason == .stop)
        #expect(result.response.usage == Usage(promptTokens: 7, completionTokens: 9, totalTokens: 16))
        #expect(result.response.model == "gemini-2.0-flash")
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/v1beta/models/gemini-2.0-flash:generateContent")
        #expect(sent.headers["x-goog-api-key"] == "g-key")
        #expect(sent.json?["contents"] == [["role": "user", "parts": [["text": "hi"]]]])
    }

    /// A function call becomes an OpenAI tool call with JSON-text arguments and finish_reason tool_calls.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func toolCall(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(.json(GeminiRecordings.toolCall))
        defer { Task { await upstream.stop() } }
        let result = try await gateway(upstream, kind: kind).send(request("gemini/gemini-2.0-flash")).collect()
        let call = try #require(result.response.choices.first?.message.toolCalls?.first)
        #expect(call.function.name == "get_weather")
        #expect(call.function.arguments == #"{"city":"Paris"}"#)
        #expect(result.response.choices.first?.finishReason == .toolCalls)
    }

    /// The SSE stream folds into the whole text with the final usage.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func streaming(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(.sse(GeminiRecordings.stream))
        defer { Task { await upstream.stop() } }
        var body = request("gemini/gemini-2.0-flash")
        body.stream = true
        let result = try await gateway(upstream, kind: kind).send(body).collect()
        #expect(result.chunkCount == 3)
        #expect(result.response.choices.first?.message.text == "Lassie was a collie.")
        #expect(result.response.usage?.totalTokens == 12)
        #expect(result.response.choices.first?.finishReason == .stop)
        #expect(upstream.requests.first?.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent")
    }

    /// The exact upstream JSON: system instruction, multi-turn tools, images, stop, tool choice.
    @Test func requestConversion() throws {
        var body = ChatRequest(model: "gemini-2.0-flash", messages: [
            ChatMessage(role: "system", content: .text("Be brief.")),
            ChatMessage(role: "user", content: .parts([.text("What is this?"), .imageURL("data:image/png;base64,AAAA")])),
            ChatMessage(role: "assistant", toolCalls: [ToolCall(id: "c1", function: FunctionCall(name: "lookup", arguments: #"{"q":"x"}"#))]),
            ChatMessage(role: "tool", content: .text(#"{"answer":42}"#), toolCallID: "c1"),
        ], maxTokens: 100, stop: ["END"], tools: [Tool(function: FunctionDefinition(
            name: "lookup", description: "Look up", parameters: ["type": "object", "additionalProperties": false, "properties": ["q": ["type": "string"]]]))],
        toolChoice: ["type": "function", "function": ["name": "lookup"]])
        body.temperature = 0.2
        let converted = try GeminiTestAccess.convert(body)
        #expect(converted["systemInstruction"] == ["parts": [["text": "Be brief."]]])
        #expect(converted["contents"] == [
            ["role": "user", "parts": [["text": "What is this?"], ["inlineData": ["mimeType": "image/png", "data": "AAAA"]]]],
            ["role": "model", "parts": [["functionCall": ["name": "lookup", "args": ["q": "x"]]]]],
            ["role": "user", "parts": [["functionResponse": ["name": "lookup", "response": ["answer": 42]]]]],
        ])
        #expect(converted["generationConfig"] == ["maxOutputTokens": 100, "stopSequences": ["END"], "temperature": 0.2])
        #expect(converted["tools"] == [["functionDeclarations": [["name": "lookup", "description": "Look up",
                                                                   "parameters": ["type": "object", "properties": ["q": ["type": "string"]]]]]]])
        #expect(converted["toolConfig"] == ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": ["lookup"]]])
    }
}
