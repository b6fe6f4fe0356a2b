import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

@Suite("Configuration tables")
struct ConfigTablesTests {
    /// A database the Rust Chronicle left at version 3 keeps its providers, aliases and keys: after the
    /// upgrade they load as the Rust version loaded them.
    @Test(arguments: Backend.available)
    func loadsRustVersion3Configuration(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend, migrate: false)
        for statement in try RustSchema.statements(backend) + SchemaTests.rows(backend) {
            _ = try await db.rows(statement)
        }
        try await db.store.migrate()
        let store = try #require(db.store as? any ConfigStore)
        let loaded = try await store.loadConfiguration()
        #expect(loaded.problems.isEmpty)
        let sqlite = backend == .sqlite
        #expect(loaded.providers == [
            CustomProviderConfig(name: "vllm", label: "vLLM", url: "http://localhost:8000/v1", headers: ["x-team": "a"],
                                 prefix: "vllm/"),
            CustomProviderConfig(name: sqlite ? "other" : "unnamed-2", url: "http://other/v1", apiKey: "OTHER_KEY",
                                 apiKeySource: "env", format: .anthropic),
        ])
        #expect(loaded.aliases == [
            AliasConfig(name: "fast", models: [AliasModel(model: "llama3-8b", provider: "groq", apiKeyName: "groq_key"),
                                               AliasModel(model: "gpt-4o-mini", provider: "openai")]),
            AliasConfig(name: sqlite ? "fast#2" : "slow", randomOrder: true,
                        models: [AliasModel(model: "claude", provider: "anthropic")]),
        ])
        #expect(loaded.apiKeys == [APIKeyConfig(name: "groq_key", source: "env", value: "GROQ_API_KEY")])
        #expect(loaded.gatewayKeys.isEmpty)
        await db.close()
    }

    /// What a change stores is what loads back; a removal removes; each change leaves an audit entry.
    @Test(arguments: Backend.available)
    func changesRoundTrip(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let store = try #require(db.store as? any ConfigStore)
        let provider = CustomProviderConfig(name: "p", label: "P", url: "http://h/v1", apiKey: "v1:sealed",
                                            apiKeySource: "encrypted", format: .openAI(OpenAIFormatTransforms(systemInMessages: false)),
                                            headers: ["x-a": "b"], prefix: "p/", models: ["m1", "m2"])
        let alias = AliasConfig(name: "a", randomOrder: true, models: [AliasModel(model: "m1", provider: "p"),
                                                                        AliasModel(model: "m2", provider: "p", apiKeyName: "k")])
        let key = APIKeyConfig(name: "k", source: "env", value: "K")
        let gatewayKey = StoredGatewayKey(name: "g", keySHA256: String(repeating: "ab", count: 32), requestsPerMinute: 5,
                                          maxCostUSDPerMonth: 10.5, admin: true,
                                          createdAt: Date(timeIntervalSince1970: 1_700_000_000.123))
        let audit = AuditEntry(actor: "admin", action: "create", kind: "x", name: "n", before: nil, after: ["a": 1])
        for change in [ConfigChange.setProvider(provider), .setAPIKey(key), .setAlias(alias), .setGatewayKey(gatewayKey)] {
            try await store.apply(change, audit: audit, at: Date())
        }
        // Replacing keeps one entry per name.
        try await store.apply(.setAlias(alias), audit: audit, at: Date())
        var loaded = try await store.loadConfiguration()
        #expect(loaded.providers == [provider])
        #expect(loaded.aliases == [alias])
        #expect(loaded.apiKeys == [key])
        #expect(loaded.gatewayKeys == [gatewayKey])
        for change in [ConfigChange.removeAlias("a"), .removeProvider("p"), .removeAPIKey("k"), .removeGatewayKey("g")] {
            try await store.apply(change, audit: audit, at: Date())
        }
        loaded = try await store.loadConfiguration()
        #expect(loaded == StoredConfiguration())
        let trail = try await store.auditTrail(limit: 100)
        #expect(trail.count == 9)
        #expect(trail.first?["after"] == ["a": 1])
        await db.close()
    }

    /// Each replica stores its own counts; each reads back the sum of the others', gauges only while fresh.
    @Test(arguments: Backend.available)
    func countersExchange(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let store = try #require(db.store as? any LimitCounterStore)
        let now = Date()
        let window: Int64 = 60_000
        let requests = CounterKey(kind: "requests", subject: "k", window: window)
        let inFlight = CounterKey(kind: "inflight", subject: "k", window: 0)
        _ = try await store.exchangeCounters(instanceID: "a", values: [requests: 3, inFlight: 2], since: window,
                                             freshAfter: now.addingTimeInterval(-10), now: now)
        _ = try await store.exchangeCounters(instanceID: "b", values: [requests: 4], since: window,
                                             freshAfter: now.addingTimeInterval(-10), now: now)
        // Absolute values: sending the same count again does not add it twice.
        _ = try await store.exchangeCounters(instanceID: "b", values: [requests: 5], since: window,
                                             freshAfter: now.addingTimeInterval(-10), now: now)
        let seenByC = try await store.exchangeCounters(instanceID: "c", values: [:], since: window,
                                                       freshAfter: now.addingTimeInterval(-10), now: now)
        #expect(seenByC == [requests: 8, inFlight: 2])
        let seenByA = try await store.exchangeCounters(instanceID: "a", values: [requests: 3], since: window,
                                                       freshAfter: now.addingTimeInterval(-10), now: now)
        #expect(seenByA == [requests: 5])
        let later = try await store.exchangeCounters(instanceID: "c", values: [:], since: window,
                                                     freshAfter: now.addingTimeInterval(1), now: now)
        #expect(later == [requests: 8], "a gauge not refreshed lately no longer counts")
        try await store.deleteCounters(before: window + 1)
        #expect(try await store.exchangeCounters(instanceID: "c", values: [:], since: 0,
                                                 freshAfter: now.addingTimeInterval(-10), now: now) == [inFlight: 2])
        await db.close()
    }
}
