import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

@Suite("Routing prefixes are stripped before sending")
struct ModelPrefixTests {
    func modelSent(format: ProviderFormat, prefix: String?, model: String, path: String = "/v1/chat/completions",
                   reply: MockUpstream.Reply) async throws -> String? {
        let upstream = try await MockUpstream.start(reply)
        defer { Task { await upstream.stop() } }
        let config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "local-vllm", url: upstream.url(path), apiKey: "k", format: format, prefix: prefix)])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withoutDefaultProviders().withClock(ManualClock(autoAdvance: true)).build()
        _ = try await gateway.send(request(model)).collect()
        return try #require(upstream.requests.first?.json)["model"]?.stringValue
    }

    var openAIReply: MockUpstream.Reply {
        get throws { .json(try Fixtures.text("openai_text_response_nonstreaming.json")) }
    }

    /// The README's example: `format = "openai"`, `prefix = "vllm/"` sends the bare model name.
    @Test func openAIFormatStripsItsPrefix() async throws {
        let sent = try await modelSent(format: .openAI(OpenAIFormatTransforms()), prefix: "vllm/",
                                       model: "vllm/llama-3.1-8b", reply: openAIReply)
        #expect(sent == "llama-3.1-8b")
    }

    /// `strip_model_prefix` says otherwise: another prefix, or `""` for none.
    @Test(arguments: [("vllm/org/", "llama"), ("", "vllm/org/llama")])
    func explicitStripModelPrefixWins(strip: String, expected: String) async throws {
        let sent = try await modelSent(format: .openAI(OpenAIFormatTransforms(stripModelPrefix: strip)),
                                       prefix: "vllm/", model: "vllm/org/llama", reply: openAIReply)
        #expect(sent == expected)
    }

    /// A prefix that does not end in `/` is part of the model name and stays.
    @Test func prefixWithoutSlashStays() async throws {
        let sent = try await modelSent(format: .openAI(OpenAIFormatTransforms()), prefix: "llama",
                                       model: "llama-3.1-8b", reply: openAIReply)
        #expect(sent == "llama-3.1-8b")
    }

    /// The same rule for the other formats.
    @Test func otherFormatsStripTheirPrefix() async throws {
        let anthropic = try await modelSent(
            format: .anthropic, prefix: "corp-claude/", model: "corp-claude/claude-3-haiku", path: "/v1/messages",
            reply: .json(try Fixtures.text("anthropic_text_response_nonstreaming.json")))
        #expect(anthropic == "claude-3-haiku")
        let ollama = try await modelSent(
            format: .ollama, prefix: "gpu/", model: "gpu/llama3", path: "/api/chat",
            reply: .json(try Fixtures.text("ollama_text_response_nonstreaming.json")))
        #expect(ollama == "llama3")
    }
}
