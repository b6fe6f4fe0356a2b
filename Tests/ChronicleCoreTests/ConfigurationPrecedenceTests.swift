import AsyncHTTPClient
@testable import ChronicleCore
import Testing

@Suite("Configuration precedence")
struct ConfigurationPrecedenceTests {
    /// A later configuration's provider, alias or key replaces the earlier one of its name in place; its
    /// scalars replace the earlier ones, `false` included; what it leaves unset stays.
    @Test func laterConfigurationWins() {
        var merged = GatewayConfiguration(
            providers: [CustomProviderConfig(name: "a", url: "http://old-a"), CustomProviderConfig(name: "b", url: "http://b")],
            aliases: [AliasConfig(name: "fast", models: [AliasModel(model: "old", provider: "a")])],
            apiKeys: [APIKeyConfig(name: "team", source: "literal", value: "old")],
            defaultTimeout: .seconds(30), tracePayloads: true)
        merged.merge(GatewayConfiguration(
            providers: [CustomProviderConfig(name: "c", url: "http://c"), CustomProviderConfig(name: "a", url: "http://new-a")],
            aliases: [AliasConfig(name: "fast", models: [AliasModel(model: "new", provider: "b")])],
            apiKeys: [APIKeyConfig(name: "team", source: "literal", value: "new")],
            tracePayloads: false))
        #expect(merged.providers.map(\.name) == ["a", "b", "c"])
        #expect(merged.providers.map(\.url) == ["http://new-a", "http://b", "http://c"])
        #expect(merged.aliases.map(\.models) == [[AliasModel(model: "new", provider: "b")]])
        #expect(merged.apiKeys.map(\.value) == ["new"])
        #expect(merged.tracePayloads == false)
        #expect(merged.defaultTimeout == .seconds(30))
    }

    /// The builder follows the same rule for configurations, aliases and keys added one by one.
    @Test func builderReplacesByName() throws {
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withoutDefaultProviders()
            .withConfiguration(GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: "http://one", prefix: "one/")]))
            .withConfiguration(GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: "http://two", prefix: "two/")]))
            .withAlias(AliasConfig(name: "fast", models: [AliasModel(model: "old", provider: "p")]))
            .withAlias(AliasConfig(name: "fast", models: [AliasModel(model: "new", provider: "p")]))
            .build()
        #expect(gateway.providerNames == ["p"])
        let route = try gateway.resolve(.typed(ChatRequest(model: "two/m", messages: [])), options: RequestOptions())
        #expect(route.choices.map(\.provider.name) == ["p"])
        #expect(throws: LookupError.self) { try gateway.resolve(.typed(ChatRequest(model: "one/m", messages: [])), options: RequestOptions()) }
        #expect(gateway.aliases.map(\.models) == [[AliasModel(model: "new", provider: "p")]])
    }
}
