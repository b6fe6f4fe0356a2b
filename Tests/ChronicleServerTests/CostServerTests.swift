import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
@testable import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import Testing

/// A clock for budgets that only moves when the test's ``ManualClock`` is advanced.
func budgetClock(_ clock: ManualClock, from origin: Date) -> @Sendable () -> Date {
    { origin.addingTimeInterval(clock.elapsed.fractionalSeconds) }
}

@Suite("Cost, budgets and usage over real sockets")
struct CostServerTests {
    static let chat = #"{"model":"up/gpt","messages":[{"role":"user","content":"Who was Lassie?"}]}"#
    /// The OpenAI fixture's usage (15 prompt, 97 completion tokens) at gpt-3.5-turbo-0125's $0.50 / $1.50.
    static let fixtureCost = (15 * 0.5 + 97 * 1.5) / 1_000_000

    func openAIUpstream() async throws -> MockUpstream {
        try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
    }

    func configuration(_ upstream: MockUpstream) -> GatewayConfiguration {
        GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "k", prefix: "up/")],
                             retry: RetryOptions(maxTries: 1))
    }

    /// The non-streamed answer carries its cost; the stored call, `/v1/calls` and `/v1/calls/{id}` have it;
    /// the cost metric counts it.
    @Test func costEverywhere() async throws {
        let upstream = try await openAIUpstream()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-cost-\(UUID())")
        let path = directory.appendingPathComponent("chronicle.db").path
        let store = try await SQLiteLogStore.open(path: path)
        try await store.migrate()
        let reader = try await SQLiteLogStore.open(path: path)
        var writerConfiguration = LogWriter.Configuration()
        writerConfiguration.flushInterval = .milliseconds(20)
        let writer = LogWriter(store: store, configuration: writerConfiguration)
        let metrics = ServerMetrics()
        let server = try await RunningServer.start(
            configuration: configuration(upstream), sink: writer, reader: reader, services: [writer], metrics: metrics,
            cost: CostTracker(metricsFactory: metrics.factory))
        let response = try await server.send("/v1/chat/completions", body: Self.chat)
        #expect(response.status == 200)
        #expect(response.headers.first(name: "x-chronicle-cost-usd").flatMap(Double.init) == Self.fixtureCost)
        let id = try #require(response.headers.first(name: "x-chronicle-call-id"))
        var listed: JSONValue?
        for _ in 0..<200 {
            let page = try await server.json("/v1/calls", method: .GET)
            if let first = page.json["data"]?.arrayValue?.first { listed = first; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(listed?["cost_usd"]?.doubleValue == Self.fixtureCost)
        let detail = try await server.json("/v1/calls/\(id)", method: .GET)
        #expect(detail.json["cost_usd"]?.doubleValue == Self.fixtureCost)
        let scrape = try await server.send("/metrics", method: .GET)
        #expect(scrape.body.contains(#"chronicle_cost_usd_total{provider="up",model="gpt-3.5-turbo-0125"} 0.000153"#))
        let usage = try await server.json("/v1/usage?group_by=model&since=1h", method: .GET)
        #expect(usage.json["rows"]?.arrayValue?.first?["cost_usd"]?.doubleValue == Self.fixtureCost)
        await server.stop()
        await upstream.stop()
        try? await store.close()
        try? await reader.close()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A key over its daily budget is refused before the upstream: 429 `budget_exceeded` naming the
    /// budget, `Retry-After` the seconds to midnight UTC.
    @Test func keyBudgetRefusesBeforeUpstream() async throws {
        let upstream = try await openAIUpstream()
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "team-a", key: "sk-team-a", maxCostUSDPerDay: 0.0001)]
        let clock = ManualClock()
        let origin = try #require(RFC3339.parse("2026-12-01T23:00:00Z"))
        let budgets = Budgets(security: security, settings: CostSettings(), now: budgetClock(clock, from: origin))
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security,
                                                   cost: CostTracker(budgets: budgets))
        let auth = [("authorization", "Bearer sk-team-a")]
        #expect(try await server.send("/v1/chat/completions", body: Self.chat, headers: auth).status == 200)
        let refused = try await server.json("/v1/chat/completions", body: Self.chat, headers: auth)
        #expect(refused.status == 429)
        #expect(refused.json["error"]?["kind"] == "budget_exceeded")
        #expect(refused.json["error"]?["message"]?.stringValue?.contains("gateway_key:team-a:day") == true)
        #expect(refused.headers.first(name: "retry-after") == "3600")
        #expect(upstream.requests.count == 1, "the refused request never went upstream")
        // The next day the key may spend again.
        clock.advance(by: .seconds(3600))
        #expect(try await server.send("/v1/chat/completions", body: Self.chat, headers: auth).status == 200)
        await server.stop()
        await upstream.stop()
    }

    /// On the Anthropic route a user over budget gets the 429 in Anthropic's error shape.
    @Test func userBudgetOnMessagesRouteAnswersInAnthropicShape() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("anthropic_text_response_nonstreaming.json")))
        var settings = CostSettings()
        settings.defaultUserBudget = BudgetLimits(perMonth: 0.0001)
        let prices = PriceTable.bundled.overriding([ModelPrice(provider: "ant", model: "claude-3-haiku-20240307",
                                                               inputPerMillion: 0.25, outputPerMillion: 1.25)])
        let tracker = CostTracker(prices: prices, budgets: Budgets(security: SecuritySettings(), settings: settings))
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "ant", url: upstream.url("/v1/messages"), apiKey: "k",
                                                 format: .anthropic, prefix: "ant/")],
                retry: RetryOptions(maxTries: 1)),
            cost: tracker)
        let body = #"{"model":"ant/claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#
        let alice = [("x-chronicle-user-id", "alice")]
        let first = try await server.send("/v1/messages", body: body, headers: alice)
        #expect(first.status == 200)
        #expect(first.headers.first(name: "x-chronicle-cost-usd").flatMap(Double.init) == (16 * 0.25 + 217 * 1.25) / 1_000_000)
        let refused = try await server.json("/v1/messages", body: body, headers: alice)
        #expect(refused.status == 429)
        #expect(refused.json["type"] == "error")
        #expect(refused.json["error"]?["type"] == "rate_limit_error")
        #expect(refused.json["error"]?["message"]?.stringValue?.contains("user:alice:month") == true)
        #expect(refused.headers.first(name: "retry-after") != nil)
        // Another user has a budget of their own from the default.
        #expect(try await server.send("/v1/messages", body: body, headers: [("x-chronicle-user-id", "bob")]).status == 200)
        let listed = try await server.json("/v1/budgets", method: .GET)
        let names = listed.json["budgets"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names == ["user:alice:month", "user:bob:month"])
        await server.stop()
        await upstream.stop()
    }

    /// The embeddings and Responses routes price their answers and refuse a user over budget before the
    /// upstream, in OpenAI's error shape, as the chat route does.
    @Test func embeddingsAndResponsesRoutesArePricedAndBudgeted() async throws {
        let embeddings = try await MockUpstream.start(.json(try Fixtures.text("openai_embeddings_response.json")))
        let anthropic = try await MockUpstream.start(.json(try Fixtures.text("anthropic_text_response_nonstreaming.json")))
        var settings = CostSettings()
        settings.defaultUserBudget = BudgetLimits(perMonth: 0.0000001)
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [
                    CustomProviderConfig(name: "up", url: embeddings.url(), apiKey: "k", prefix: "up/"),
                    CustomProviderConfig(name: "ant", url: anthropic.url("/v1/messages"), apiKey: "k",
                                         format: .anthropic, prefix: "ant/"),
                ],
                retry: RetryOptions(maxTries: 1)),
            cost: CostTracker(prices: PriceTable.bundled.overriding([ModelPrice(
                provider: "ant", model: "claude-3-haiku-20240307", inputPerMillion: 0.25, outputPerMillion: 1.25)]),
                              budgets: Budgets(security: SecuritySettings(), settings: settings)))
        let embed = #"{"model":"up/text-embedding-3-small","input":"The food was delicious"}"#
        let respond = #"{"model":"ant/claude-3-haiku-20240307","input":"hi","max_output_tokens":10}"#
        let alice = [("x-chronicle-user-id", "alice")]

        // Bob's Responses call is priced at the fixture's usage; text-embedding-3-small's bundled price is found
        // by the model name alone.
        let answered = try await server.send("/v1/responses", body: respond, headers: [("x-chronicle-user-id", "bob")])
        #expect(answered.status == 200)
        let haikuCost: Double = (16 * 0.25 + 217 * 1.25) / 1_000_000
        #expect(answered.headers.first(name: "x-chronicle-cost-usd").flatMap(Double.init) == haikuCost)

        // 14 input tokens of text-embedding-3-small at $0.02 per million: over Alice's $0.0000001.
        let first = try await server.send("/v1/embeddings", body: embed, headers: alice)
        #expect(first.status == 200)
        let embeddingCost: Double = 14 * 0.02 / 1_000_000
        #expect(first.headers.first(name: "x-chronicle-cost-usd").flatMap(Double.init) == embeddingCost)
        for (path, body) in [("/v1/embeddings", embed), ("/v1/responses", respond)] {
            let refused = try await server.json(path, body: body, headers: alice)
            #expect(refused.status == 429, "\(path)")
            #expect(refused.json["error"]?["kind"] == "budget_exceeded", "\(path)")
            #expect(refused.json["error"]?["message"]?.stringValue?.contains("user:alice:month") == true, "\(path)")
            #expect(refused.headers.first(name: "retry-after") != nil, "\(path)")
        }
        #expect(embeddings.requests.count == 1, "the refused requests never went upstream")
        #expect(anthropic.requests.count == 1)
        await server.stop()
        await embeddings.stop()
        await anthropic.stop()
    }

    /// `/v1/usage` refuses bad parameters with a 400 that names them, and needs the admin key.
    @Test func usageParameters() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-usage-\(UUID())")
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await store.migrate()
        var security = SecuritySettings()
        security.adminKeyDigest = KeyDigest(of: "admin")
        let server = try await RunningServer.start(configuration: GatewayConfiguration(), reader: store, security: security,
                                                   cost: CostTracker())
        let admin = [("authorization", "Bearer admin")]
        for (query, parameter) in [("group_by=colour", "group_by"), ("interval=week", "interval"),
                                   ("since=yesterday", "since"), ("until=soon", "until"), ("run_id=x", "run_id"),
                                   ("status=maybe", "status"), ("since=1h&until=2h", "since")] {
            let response = try await server.json("/v1/usage?\(query)", method: .GET, headers: admin)
            #expect(response.status == 400, "\(query)")
            #expect(response.json["error"]?["message"]?.stringValue?.contains(parameter) == true, "\(query)")
        }
        #expect(try await server.send("/v1/usage", method: .GET).status == 401)
        #expect(try await server.send("/v1/budgets", method: .GET).status == 401)
        let empty = try await server.json("/v1/usage?group_by=model,provider&interval=day&since=7d", method: .GET, headers: admin)
        #expect(empty.status == 200)
        #expect(empty.json["group_by"] == ["model", "provider"] && empty.json["interval"] == "day" && empty.json["rows"] == [])
        let budgets = try await server.json("/v1/budgets", method: .GET, headers: admin)
        #expect(budgets.json == ["budgets": []])
        await server.stop()
        try? await store.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite("Budgets and spend counters")
struct BudgetTests {
    let origin = RFC3339.parse("2026-12-31T23:30:00Z")!

    /// Day and month windows reset on the injectable clock; the month keeps counting across days.
    @Test func windowsReset() throws {
        let clock = ManualClock()
        let budgets = Budgets(keyLimits: ["k": BudgetLimits(perDay: 1, perMonth: 1.5)], now: budgetClock(clock, from: origin))
        try budgets.check(gatewayKey: "k", userID: nil)
        budgets.charge(1, gatewayKey: "k", userID: nil)
        do {
            try budgets.check(gatewayKey: "k", userID: nil)
            Issue.record("over the daily budget")
        } catch {
            #expect(error.kind == "budget_exceeded")
            #expect(error.headers[.retryAfter] == "1800")
        }
        clock.advance(by: .seconds(1800))
        // 1 January: a new day and a new month.
        try budgets.check(gatewayKey: "k", userID: nil)
        budgets.charge(1.5, gatewayKey: "k", userID: nil)
        #expect(throws: APIError.self) { try budgets.check(gatewayKey: "k", userID: nil) }
        let statuses = budgets.statuses()
        #expect(statuses.map(\.name) == ["gateway_key:k:day", "gateway_key:k:month"])
        #expect(statuses.last?.resetsAt == RFC3339.parse("2027-02-01T00:00:00Z"))
    }

    /// Spend in the database for the current windows is loaded at start-up: a restarted gateway refuses
    /// what the one before it would have.
    @Test func spendSurvivesRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-budget-\(UUID())")
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await store.migrate()
        let prices = PriceTable().overriding([ModelPrice(provider: "openai", model: "m", inputPerMillion: 1_000_000,
                                                         outputPerMillion: 0)])
        func call(_ at: Date, tokens: Int) -> StoredRecord {
            var options = RequestOptions(metadata: RequestMetadata(userID: "u1"))
            options.internalMetadata.gatewayKey = "k"
            return StoredRecord(.call(CallLogRecord(
                id: .v7(), timestamp: at, request: .typed(ChatRequest(model: "m", messages: [])), options: options,
                provider: "openai", model: "m", response: ChatResponse(model: "m", usage: Usage(promptTokens: tokens, completionTokens: 0)),
                totalLatency: .milliseconds(10))), prices: prices)
        }
        // $2 earlier today and $3 yesterday (another month: 31 December vs 1 January is not it here).
        let now = RFC3339.parse("2026-12-15T12:00:00Z")!
        try await store.write([call(now.addingTimeInterval(-3600), tokens: 2), call(now.addingTimeInterval(-86_400), tokens: 3)])
        let budgets = Budgets(keyLimits: ["k": BudgetLimits(perDay: 2.5, perMonth: 5)],
                              userLimits: ["u1": BudgetLimits(perDay: 2)], now: { now })
        try await budgets.load(from: store)
        let spend = Dictionary(uniqueKeysWithValues: budgets.statuses().map { ($0.name, $0.spendUSD) })
        #expect(spend == ["gateway_key:k:day": 2, "gateway_key:k:month": 5, "user:u1:day": 2])
        #expect(throws: APIError.self) { try budgets.check(gatewayKey: "k", userID: nil) }
        #expect(throws: APIError.self) { try budgets.check(gatewayKey: nil, userID: "u1") }
        try? await store.close()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Counters move by deltas, per window: an old window's delta is ignored once a newer one exists.
    @Test func ledgerDeltas() {
        let ledger = SpendLedger()
        let december = SpendLedger.Key(scope: .user, subject: "u", window: .month, windowStart: RFC3339.parse("2026-12-01T00:00:00Z")!)
        var january = december
        january.windowStart = RFC3339.parse("2027-01-01T00:00:00Z")!
        ledger.add(1, to: december)
        ledger.add(0.5, to: december)
        #expect(ledger.spend(december) == 1.5)
        ledger.add(2, to: january)
        ledger.add(7, to: december)
        #expect(ledger.spend(december) == 0 && ledger.spend(january) == 2)
    }

    /// `[[prices]]`, `[[budgets]]` and keys' budgets are read from chronicle.toml; bad values are named.
    @Test func configuration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-cost-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("chronicle.toml")
        func load(_ text: String) throws -> ServerSettings {
            try text.write(to: path, atomically: true, encoding: .utf8)
            return try ServerSettings.load(overrides: .init(configPath: path.path, loadDotenv: false), environment: { _ in nil })
        }
        let settings = try load("""
            [[gateway_keys]]
            name = "team-a"
            key = "sk-a"
            max_cost_usd_per_day = 10
            max_cost_usd_per_month = 200

            [[prices]]
            provider = "openai"
            model = "gpt-4o"
            input = 2.0
            output = 8.0
            effective_from = "2027-01-01"

            [[budgets]]
            user_id = "*"
            max_cost_usd_per_day = 5

            [[budgets]]
            user_id = "alice"
            max_cost_usd_per_month = 100
            """)
        #expect(settings.cost.prices.first?.effectiveFrom == RFC3339.parse("2027-01-01T00:00:00Z"))
        #expect(settings.cost.defaultUserBudget == BudgetLimits(perDay: 5))
        #expect(settings.cost.userBudgets["alice"] == BudgetLimits(perMonth: 100))
        #expect(settings.security.gatewayKeys.first?.maxCostUSDPerDay == 10)
        #expect(settings.security.gatewayKeys.first?.maxCostUSDPerMonth == 200)
        for (text, named) in [("[[budgets]]\nuser_id = \"bob\"\nmax_cost_usd_per_day = -1", "max_cost_usd_per_day"),
                              ("[[prices]]\nprovider = \"p\"\nmodel = \"m\"\ninput = 1\neffective_from = \"soon\"", "effective_from")] {
            #expect {
                _ = try load(text)
            } throws: { error in
                (error as? ConfigurationError)?.description.contains(named) == true
            }
        }
    }
}
