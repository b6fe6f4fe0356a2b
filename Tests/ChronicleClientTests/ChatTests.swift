import ChronicleClient
import ChronicleEmbedded
import Foundation
import Testing

@Suite("Typed chat calls")
struct ChatTests {
    static let question = [ChatMessage.user("Who was Lassie?")]

    /// A typed answer with the call id (from `x-chronicle-call-id`) and Chronicle's `meta`; tools, images,
    /// the response format and every option reach the gateway in its body.
    @Test func typedCallWithToolsAndOptions() async throws {
        let gateway = try await TestGateway.toolThenText()
        try await gateway.start()
        let client = ChronicleClient(baseURL: gateway.baseURL, configuration: .testing())
        let tool = Tool.function(
            "get_characteristics", description: "Characteristics of a person",
            parameters: ["type": "object", "properties": ["name": ["type": "string"]]])
        let request = ChatRequest(
            messages: [.system("Be brief."),
                       .user("Describe Daniel", images: [.url("https://example.com/daniel.png", detail: "low")])],
            maxTokens: 100, tools: [tool], toolChoice: .auto,
            responseFormat: .jsonObject,
            options: ChronicleOptions(
                models: [ModelChoice(model: "up/gpt-3.5-turbo", provider: "up")],
                retry: RetryPolicy(maxTries: 2, initialBackoff: .milliseconds(10)), timeout: .seconds(20),
                metadata: CallMetadata(userID: "user-7", extra: ["ticket": "T-1"])))
        let response = try await client.chat(request)
        let call = try #require(response.toolCalls.first)
        #expect(call.function.name == "get_characteristics")
        struct Arguments: Decodable {
            var name: String
            var hair_color: String
        }
        #expect(try call.arguments(as: Arguments.self).hair_color == "brown")
        #expect(response.meta?.provider == "up")
        #expect(response.meta?.numRetries == 0)
        #expect(response.callID != nil)
        #expect(response.callID == response.meta?.id)
        #expect(response.usage?.totalTokens != nil)
        let sent = try #require(try decodeJSON(gateway.upstreamBodies.first))
        #expect(sent["tools"]?.arrayValue.first?["function"]?["name"] == "get_characteristics")
        #expect(sent["tool_choice"] == "auto")
        #expect(sent["response_format"] == ["type": "json_object"])
        #expect(sent["max_tokens"] == 100)
        let parts = sent["messages"]?.arrayValue.last?["content"]?.arrayValue ?? []
        #expect(parts.last == ["type": "image_url", "image_url": ["url": "https://example.com/daniel.png", "detail": "low"]])
        // Chronicle's options are the gateway's, not the provider's.
        #expect(sent["metadata"] == nil)
        #expect(sent["models"] == nil)

        // The conversation goes on with the tool's answer.
        let followUp = try await client.chat(ChatRequest(
            model: "up/gpt-3.5-turbo",
            messages: request.messages + [.assistant(nil, toolCalls: [call]),
                                          .tool(callID: call.id, content: #"{"age": 30}"#)]))
        #expect(followUp.text?.contains("Lassie") == true)
        await gateway.close()
    }

    /// Stream chunks are typed; the first carries `meta`, the last the usage (the client asks for it).
    @Test func streamingWithUsage() async throws {
        let gateway = try await TestGateway.streaming()
        try await gateway.start()
        let client = ChronicleClient(baseURL: gateway.baseURL, configuration: .testing())
        var text = ""
        var usage: Usage?
        var first: ChatChunk?
        for try await chunk in client.streamChat(ChatRequest(model: "up/gpt", messages: Self.question)) {
            if first == nil { first = chunk }
            text += chunk.text ?? ""
            if let chunkUsage = chunk.usage { usage = chunkUsage }
        }
        #expect(text.hasPrefix("Lassie was a fictional Collie dog"))
        #expect(first?.meta?.provider == "up")
        #expect(usage == Usage(promptTokens: 15, completionTokens: 62, totalTokens: 77))
        await gateway.close()
    }

    /// The same stream in embedded mode, with no HTTP.
    @Test func streamingEmbedded() async throws {
        let gateway = try await TestGateway.streaming()
        let client = ChronicleClient(gateway: gateway.gateway, configuration: .testing())
        var usage: Usage?
        var chunks = 0
        for try await chunk in client.streamChat(ChatRequest(model: "up/gpt", messages: Self.question)) {
            chunks += 1
            if let chunkUsage = chunk.usage { usage = chunkUsage }
        }
        #expect(chunks > 3)
        #expect(usage?.totalTokens == 77)
        await gateway.close()
    }

    /// A gateway error is a ChronicleError with the gateway's status, kind and message, in both modes.
    @Test func errorsAreTyped() async throws {
        let gateway = try await TestGateway.text()
        try await gateway.start()
        let request = ChatRequest(model: "nowhere/model", messages: Self.question)
        for client in [ChronicleClient(baseURL: gateway.baseURL, configuration: .testing()),
                       ChronicleClient(gateway: gateway.gateway, configuration: .testing())] {
            let error = await #expect(throws: ChronicleError.self) { try await client.chat(request) }
            #expect((400..<500).contains(error?.status ?? 0))
            #expect(error?.message.isEmpty == false)
        }
        let down = ChronicleClient(baseURL: "http://127.0.0.1:\(try await closedPort())", configuration: .testing())
        let refused = await #expect(throws: ChronicleError.self) { try await down.chat(request) }
        #expect(refused?.kind == "transport")
        await gateway.close()
    }
}
