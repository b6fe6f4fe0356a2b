import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

@Suite("Provider keys: keyless upstreams and named keys")
struct ProviderKeyTests {
    var reply: MockUpstream.Reply {
        get throws { .json(try Fixtures.text("openai_text_response_nonstreaming.json")) }
    }

    /// The built-in `openai` without `OPENAI_API_KEY`, sent to an `override_url`, goes without
    /// `Authorization`; sent to OpenAI itself it still fails with `auth_missing`, before any network call.
    @Test(.enabled(if: getenv("OPENAI_API_KEY") == nil, "needs OPENAI_API_KEY unset"))
    func builtInOpenAIWithoutKeyAtOverrideURL() async throws {
        let upstream = try await MockUpstream.start(try reply)
        defer { Task { await upstream.stop() } }
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withClock(ManualClock(autoAdvance: true))
            .build()
        let result = try await gateway.send(request("gpt-4o-mini"), options: RequestOptions(overrideURL: upstream.url()))
            .collect()
        #expect(result.requestInfo.provider == "openai")
        let sent = try #require(upstream.requests.first)
        #expect(sent.headers["authorization"] == nil)
        #expect(sent.json?["model"] == "gpt-4o-mini")

        do {
            _ = try await gateway.send(request("gpt-4o-mini"), options: RequestOptions(retry: RetryOptions(maxTries: 1)))
                .collect()
            Issue.record("expected auth_missing")
        } catch let GatewayError.provider(error, _, _, _) {
            #expect(error.kind == .authMissing)
            #expect(error.message.contains("OPENAI_API_KEY"))
        }
    }

    /// A configured provider that replaces `openai` with another URL and no key sends no `Authorization`.
    @Test func replacedOpenAIWithoutKey() async throws {
        let upstream = try await MockUpstream.start(try reply)
        defer { Task { await upstream.stop() } }
        let config = GatewayConfiguration(providers: [CustomProviderConfig(name: "openai", url: upstream.url())])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config).build()
        _ = try await gateway.send(request("gpt-4o-mini"), options: RequestOptions(provider: "openai")).collect()
        #expect(upstream.requests.first?.headers["authorization"] == nil)
    }

    /// `apiKeyName` (the `x-chronicle-api-key` header) picks a configured key; a literal key wins over it;
    /// an unknown name is a lookup error.
    @Test func namedKeyForTheSingleModelPath() async throws {
        let upstream = try await MockUpstream.start(try reply)
        defer { Task { await upstream.stop() } }
        let config = GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-default", prefix: "up/")],
            apiKeys: [APIKeyConfig(name: "team", source: "literal", value: "sk-team")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withoutDefaultProviders().build()
        _ = try await gateway.send(request("up/m"), options: RequestOptions(apiKeyName: "team")).collect()
        _ = try await gateway.send(request("up/m"), options: RequestOptions(provider: "up", apiKeyName: "team")).collect()
        _ = try await gateway.send(request("up/m"), options: RequestOptions(apiKey: "sk-literal", apiKeyName: "team"))
            .collect()
        #expect(upstream.requests.map { $0.headers["authorization"] }
            == ["Bearer sk-team", "Bearer sk-team", "Bearer sk-literal"])
        let error = await lookupError {
            _ = try await gateway.send(request("up/m"), options: RequestOptions(apiKeyName: "nope")).collect()
        }
        #expect(error == .unknownAPIKey("nope"))
    }
}

@Suite("Listed models")
struct ListedModelTests {
    /// Aliases and their models, configured providers' models behind their prefix (or the prefix alone), and
    /// a provider's own list only while its key is set.
    @Test func catalog() throws {
        let variable = "CHRONICLE_TEST_LISTED_MODELS_KEY"
        unsetenv(variable)
        var keyed = OpenAICompatibleProvider(name: "keyed", url: "http://127.0.0.1:1/", key: .environment(variable),
                                             transport: UpstreamHTTPClient(httpClient: HTTPClient.shared))
        keyed.models = ["keyed/small", "keyed/large"]
        let config = GatewayConfiguration(
            providers: [
                CustomProviderConfig(name: "local-vllm", url: "http://127.0.0.1:1/", prefix: "vllm/",
                                     models: ["llama-3.1-8b", "vllm/qwen"]),
                CustomProviderConfig(name: "corp", url: "http://127.0.0.1:1/", prefix: "corp/"),
            ],
            aliases: [AliasConfig(name: "fast", models: [AliasModel(model: "vllm/llama-3.1-8b", provider: "local-vllm")])])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withProvider(keyed).withoutDefaultProviders().build()
        let withoutKey = gateway.listedModels
        #expect(withoutKey == [
            ListedModel(id: "fast", ownedBy: "chronicle"),
            ListedModel(id: "vllm/llama-3.1-8b", ownedBy: "local-vllm"),
            ListedModel(id: "vllm/qwen", ownedBy: "local-vllm"),
            ListedModel(id: "corp/", ownedBy: "corp"),
        ])
        setenv(variable, "sk-test", 1)
        defer { unsetenv(variable) }
        // Explicit providers come first in routing order, so in the list too.
        #expect(gateway.listedModels == [
            ListedModel(id: "fast", ownedBy: "chronicle"),
            ListedModel(id: "vllm/llama-3.1-8b", ownedBy: "local-vllm"),
            ListedModel(id: "keyed/small", ownedBy: "keyed"),
            ListedModel(id: "keyed/large", ownedBy: "keyed"),
            ListedModel(id: "vllm/qwen", ownedBy: "local-vllm"),
            ListedModel(id: "corp/", ownedBy: "corp"),
        ])
    }

    /// Every built-in with a static list routes its listed models to itself, and lists them only with a key.
    @Test func builtIns() throws {
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).build()
        let listed = Dictionary(grouping: gateway.listedModels, by: \.ownedBy)
        for definition in BuiltInProviders.openAIFormat {
            #expect(!definition.models.isEmpty)
            let hasKey = getenv(definition.keyVariable).map { String(cString: $0).isEmpty == false } ?? false
            #expect((listed[definition.name] ?? []).map(\.id) == (hasKey ? definition.models : []))
        }
    }
}
