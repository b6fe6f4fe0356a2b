import AsyncHTTPClient
@testable import ChronicleCore
import ChronicleTesting
import Foundation
import NIOCore
import Testing

/// Which providers take a Responses request as the client's bytes, and where they send it.
@Suite struct ResponsesPassthroughTests {
    static let transport = UpstreamHTTPClient(httpClient: HTTPClient.shared)

    static func call(_ body: String = #"{"model":"azure/my-deployment","input":"hi","store":true}"#) throws -> ResponsesCall {
        ResponsesCall(wire: try #require(WireResponsesRequest.scan(ByteBuffer(string: body))))
    }

    /// OpenAI and Azure pass through; the chat-only OpenAI-compatible built-ins and the other formats
    /// translate.
    @Test func whoPassesThrough() throws {
        let call = try Self.call()
        let providers = BuiltInProviders.all(transport: Self.transport)
        let passing = Set(providers.filter { $0.forwardsResponses(call) }.map(\.name))
        #expect(passing == ["openai", "azure"])
        #expect(providers.first { $0.name == "anthropic" }?.supportsResponseFormat == false)
        #expect(providers.first { $0.name == "groq" }?.supportsResponseFormat == true)
    }

    /// The Responses endpoint sits next to the chat endpoint; a URL without `/chat/completions` is taken
    /// as the Responses endpoint itself.
    @Test(arguments: [
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/responses"),
        ("http://proxy:8080/openai/v1/chat/completions?tenant=a", "http://proxy:8080/openai/v1/responses?tenant=a"),
        ("http://proxy:8080/v1/responses", "http://proxy:8080/v1/responses"),
    ])
    func responsesURL(chat: String, responses: String) {
        #expect(OpenAICompatibleProvider.responsesURL(chat) == responses)
    }

    /// Azure: the v1 Responses endpoint under the resource, the key as `api-key`, the deployment as the
    /// body's model (prefix stripped), every other byte as the client sent it.
    @Test func azureRelay() async throws {
        let answer = try Fixtures.text("openai_responses_text_response_nonstreaming.json")
        let upstream = try await MockUpstream.start(.json(answer))
        let provider = OpenAICompatibleProvider(
            name: "azure", endpoint: .azure(endpoint: .literal(upstream.url("/")), apiVersion: "2024-10-21"),
            key: .literal("az-key"), transforms: OpenAIRequestTransforms(stripModelPrefix: "azure/"), transport: Self.transport)
        let call = try Self.call()
        var request = ProviderRequest(body: ChatRequest(model: "azure/my-deployment", messages: []))
        request.responses = call
        var events: [ChatStreamEvent] = []
        for try await event in try await provider.send(request) { events.append(event) }
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/openai/v1/responses")
        #expect(sent.headers["api-key"] == "az-key")
        #expect(String(decoding: sent.body, as: UTF8.self) == #"{"model":"my-deployment","input":"hi","store":true}"#)
        guard case .relayedResponses(let part)? = events.first else { Issue.record("not relayed"); return }
        #expect(String(buffer: part.bytes) == answer)
        #expect(part.endsAnswer)
        #expect(part.summary?.usage?.totalTokens == 123)
        await upstream.stop()
    }
}
