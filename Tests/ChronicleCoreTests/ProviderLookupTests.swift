import ChronicleCore
import ChronicleTesting
import Testing

/// A provider that answers from a script: the listed errors first, then success.
final class ScriptedProvider: ChatModelProvider, @unchecked Sendable {
    // @unchecked Sendable: `calls` and `script` are only touched under `lock`.
    let name: String
    let routingPrefixes: [String]
    private let lock = NSLock()
    private var script: [ProviderError]
    private var calls = 0
    private(set) var receivedKeys: [String?] = []
    private(set) var receivedModels: [String?] = []

    init(_ name: String, prefixes: [String] = [], failures: [ProviderError] = []) {
        self.name = name
        self.routingPrefixes = prefixes
        self.script = failures
    }

    var callCount: Int { lock.withLock { calls } }

    func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        let failure: ProviderError? = lock.withLock {
            calls += 1
            receivedKeys.append(request.apiKey)
            receivedModels.append(request.body.model)
            return script.isEmpty ? nil : script.removeFirst()
        }
        if let failure { throw failure }
        let response = ChatResponse(
            id: "r", created: 1, model: request.body.model,
            choices: [ChatChoice(message: ChatMessage(role: "assistant", content: .text("from \(name)")))])
        return ChatEventStream(events: [.single(response), .responseInfo(ResponseInfo(model: request.body.model ?? ""))])
    }

    /// Always fails with the same error.
    static func failing(_ name: String, _ kind: ProviderErrorKind, times: Int = 100) -> ScriptedProvider {
        ScriptedProvider(name, failures: Array(repeating: ProviderError(kind: kind), count: times))
    }
}

func makeGateway(_ providers: [any ChatModelProvider], configuration: GatewayConfiguration = GatewayConfiguration(),
                 clock: any GatewayClock = ManualClockAuto.shared, sink: (any LogSink)? = nil,
                 builtIns: Bool = false) throws -> Gateway {
    var builder = Gateway.Builder().withConfiguration(configuration).withClock(clock).withRandomChoice { _ in 0 }
        .withHTTPClient(HTTPClient.shared)
    if !builtIns { builder = builder.withoutDefaultProviders() }
    for provider in providers { builder = builder.withProvider(provider) }
    if let sink { builder = builder.withLogSink(sink) }
    return try builder.build()
}

enum ManualClockAuto {
    static let shared = ManualClock(autoAdvance: true)
}

func request(_ model: String?) -> ChatRequest {
    ChatRequest(model: model, messages: [ChatMessage(role: "user", content: .text("hi"))])
}

func lookupError(_ body: () async throws -> Void) async -> LookupError? {
    do {
        try await body()
    } catch let GatewayError.lookup(error) {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return nil
}

@Suite("Provider lookup")
struct ProviderLookupTests {
    let p1 = ScriptedProvider("p1", prefixes: ["p1/"])
    let p2 = ScriptedProvider("p2", prefixes: ["p2/"])
    let configuration = GatewayConfiguration(
        aliases: [
            AliasConfig(name: "fast", randomOrder: true, models: [
                AliasModel(model: "m1", provider: "p1", apiKeyName: "k1"), AliasModel(model: "m2", provider: "p2"),
            ]),
            AliasConfig(name: "bad-provider", models: [AliasModel(model: "m", provider: "nope")]),
            AliasConfig(name: "bad-key", models: [AliasModel(model: "m", provider: "p1", apiKeyName: "nope")]),
            AliasConfig(name: "empty", models: []),
        ],
        apiKeys: [APIKeyConfig(name: "k1", source: "", value: "key-one")])

    /// Supplied choices: a literal key beats a key name; key names resolve; random choice is honoured.
    @Test func suppliedChoices() async throws {
        let gateway = try makeGateway([p1, p2], configuration: configuration)
        let options = RequestOptions(models: [
            ModelChoice(model: "a", provider: "p1", apiKey: "literal", apiKeyName: "k1"),
            ModelChoice(model: "b", provider: "p2", apiKeyName: "k1"),
        ])
        let stream = try await gateway.send(request("ignored"), options: options)
        #expect(stream.requestInfo.provider == "p1")
        #expect(stream.requestInfo.model == "a")
        #expect(p1.receivedKeys == ["literal"])
        _ = try await stream.collect()
    }

    /// A supplied choice naming an unknown provider or key is a 400.
    @Test func suppliedChoicesErrors() async throws {
        let gateway = try makeGateway([p1], configuration: configuration)
        let unknownProvider = await lookupError {
            _ = try await gateway.send(request(nil), options: RequestOptions(models: [ModelChoice(model: "a", provider: "zz")]))
        }
        #expect(unknownProvider == .unknownProvider("zz"))
        #expect(unknownProvider?.httpStatus == 400)
        let unknownKey = await lookupError {
            _ = try await gateway.send(
                request(nil), options: RequestOptions(models: [ModelChoice(model: "a", provider: "p1", apiKeyName: "zz")]))
        }
        #expect(unknownKey == .unknownAPIKey("zz"))
    }

    /// The body model and options.model can both name an alias; alias keys come from key names.
    @Test(arguments: [true, false])
    func aliasExpansion(viaOptions: Bool) async throws {
        let gateway = try makeGateway([p1, p2], configuration: configuration)
        let options = RequestOptions(model: viaOptions ? "fast" : nil)
        let stream = try await gateway.send(request(viaOptions ? "other" : "fast"), options: options)
        #expect(stream.requestInfo.provider == "p1")
        #expect(stream.requestInfo.model == "m1")
        #expect(p1.receivedKeys == ["key-one"])
    }

    /// options.provider with the body model; options.model beats body.model; options.apiKey is used.
    @Test func namedProviderAndModelFromOptions() async throws {
        let gateway = try makeGateway([p1, p2], configuration: configuration)
        let stream = try await gateway.send(
            request("body-model"), options: RequestOptions(model: "options-model", provider: "p2", apiKey: "k"))
        #expect(stream.requestInfo.provider == "p2")
        #expect(p2.receivedModels == ["options-model"])
        #expect(p2.receivedKeys == ["k"])
    }

    /// Every resolution failure is a specific client error, never a 500.
    @Test func resolutionErrors() async throws {
        let gateway = try makeGateway([p1, p2], configuration: configuration)
        let cases: [(ChatRequest, RequestOptions, LookupError, Int)] = [
            (request(nil), RequestOptions(), .modelNotSpecified, 400),
            (request(""), RequestOptions(), .modelNotSpecified, 400),
            (request("x"), RequestOptions(provider: "zz"), .unknownProvider("zz"), 400),
            (request("bad-provider"), RequestOptions(), .aliasUnknownProvider(alias: "bad-provider", provider: "nope"), 400),
            (request("bad-key"), RequestOptions(), .aliasUnknownAPIKey(alias: "bad-key", key: "nope"), 400),
            (request("empty"), RequestOptions(), .aliasEmpty("empty"), 400),
            (request("unrouted-model"), RequestOptions(), .noDefaultProvider(model: "unrouted-model"), 404),
        ]
        for (body, options, expected, status) in cases {
            let error = await lookupError { _ = try await gateway.send(body, options: options) }
            #expect(error == expected)
            #expect(error?.httpStatus == status)
        }
    }

    /// The longest matching prefix wins whatever the order; equal prefixes go to the first configured.
    @Test func longestPrefixWins() async throws {
        let short = ScriptedProvider("short", prefixes: ["me/"])
        let long = ScriptedProvider("long", prefixes: ["me/large-"])
        let tie = ScriptedProvider("tie", prefixes: ["me/"])
        let gateway = try makeGateway([short, long, tie])
        #expect(try await gateway.send(request("me/large-model")).requestInfo.provider == "long")
        #expect(try await gateway.send(request("me/small")).requestInfo.provider == "short")
    }

    /// Built-ins route by prefix, and a configured provider with a built-in's name replaces it.
    @Test func builtInsAndReplacement() async throws {
        let replacement = CustomProviderConfig(name: "groq", url: "http://127.0.0.1:1/v1/chat/completions")
        let gateway = try Gateway.Builder()
            .withConfiguration(GatewayConfiguration(providers: [replacement]))
            .withHTTPClient(HTTPClient.shared)
            .build()
        for name in ["openai", "groq", "mistral", "together", "fireworks", "deepinfra", "anyscale"] {
            #expect(gateway.providerNames.contains(name))
        }
        #expect(gateway.providerNames.first == "groq")
        #expect(gateway.providerNames.filter { $0 == "groq" }.count == 1)
    }

    /// Runtime changes: providers, aliases and keys can be set and removed.
    @Test func runtimeChanges() async throws {
        let gateway = try makeGateway([p1])
        gateway.setProvider(p2)
        gateway.setAlias(AliasConfig(name: "a", models: [AliasModel(model: "m", provider: "p2", apiKeyName: "k")]))
        gateway.setAPIKey(APIKeyConfig(name: "k", source: "", value: "secret"))
        #expect(try await gateway.send(request("a")).requestInfo.provider == "p2")
        gateway.removeAPIKey(named: "k")
        #expect(await lookupError { _ = try await gateway.send(request("a")) } == .aliasUnknownAPIKey(alias: "a", key: "k"))
        gateway.removeAlias(named: "a")
        gateway.removeProvider(named: "p2")
        #expect(await lookupError { _ = try await gateway.send(request("p2/x")) } == .noDefaultProvider(model: "p2/x"))
    }
}

import Foundation
import AsyncHTTPClient
