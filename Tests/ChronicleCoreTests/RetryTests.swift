import ChronicleCore
import ChronicleTesting
import Testing
import AsyncHTTPClient

@Suite("Retries and fallback")
struct RetryTests {
    let noJitter = RetryOptions(jitter: .zero)

    func send(_ gateway: Gateway, _ model: String = "p1/m", options: RequestOptions = RequestOptions())
        async throws -> CollectedResponse
    {
        try await gateway.send(request(model), options: options).collect()
    }

    func providerFailure(_ body: () async throws -> Void) async -> (ProviderError, Int, Bool)? {
        do {
            try await body()
        } catch let GatewayError.provider(error, retries, rateLimited, _) {
            return (error, retries, rateLimited)
        } catch {
            Issue.record("unexpected error \(error)")
        }
        return nil
    }

    /// Success on the first attempt: no retries, no waiting.
    @Test func singleSuccess() async throws {
        let clock = ManualClock(autoAdvance: true)
        let provider = ScriptedProvider("p1", prefixes: ["p1/"])
        let result = try await send(try makeGateway([provider], clock: clock))
        #expect(result.requestInfo.numRetries == 0)
        #expect(provider.callCount == 1)
        #expect(clock.sleeps.isEmpty)
    }

    /// A non-retryable error on the only choice fails after exactly one call.
    @Test func singleNonRetryable() async throws {
        let provider = ScriptedProvider("p1", prefixes: ["p1/"], failures: [ProviderError(kind: .badInput, status: 400)])
        let gateway = try makeGateway([provider])
        let failure = await providerFailure { _ = try await send(gateway) }
        #expect(failure?.0.kind == .badInput)
        #expect(provider.callCount == 1)
    }

    /// Two server errors then success: three calls, two retries, waits 200 ms then 400 ms.
    @Test func singleTransientFailures() async throws {
        let clock = ManualClock(autoAdvance: true)
        let provider = ScriptedProvider("p1", prefixes: ["p1/"], failures: [ProviderError(kind: .server), ProviderError(kind: .server)])
        let result = try await send(try makeGateway([provider], clock: clock), options: RequestOptions(retry: noJitter))
        #expect(provider.callCount == 3)
        #expect(result.requestInfo.numRetries == 2)
        #expect(result.requestInfo.wasRateLimited == false)
        #expect(clock.sleeps == [.milliseconds(200), .milliseconds(400)])
    }

    /// Rate limits are retried and reported.
    @Test func singleRateLimit() async throws {
        let provider = ScriptedProvider("p1", prefixes: ["p1/"], failures: [ProviderError(kind: .rateLimit), ProviderError(kind: .rateLimit)])
        let result = try await send(try makeGateway([provider]))
        #expect(result.requestInfo.wasRateLimited)
        #expect(result.requestInfo.numRetries == 2)
    }

    /// Always failing: four calls (max_tries), three retries, then the last error.
    @Test func singleMaxRetries() async throws {
        let clock = ManualClock(autoAdvance: true)
        let provider = ScriptedProvider.failing("p1", .server)
        let gateway = try makeGateway([ScriptedProvider("unused"), provider], clock: clock)
        let failure = await providerFailure {
            _ = try await send(gateway, "x", options: RequestOptions(provider: "p1", retry: noJitter))
        }
        #expect(failure?.1 == 3)
        #expect(provider.callCount == 4)
        #expect(clock.sleeps == [.milliseconds(200), .milliseconds(400), .milliseconds(800)])
    }

    /// Backoff grows by the configured increase, with jitter, capped at max_backoff.
    @Test func backoffShapes() async throws {
        let clock = ManualClock(autoAdvance: true)
        let provider = ScriptedProvider.failing("p1", .server)
        let gateway = try makeGateway([provider], clock: clock)
        let retry = RetryOptions(initialBackoff: .milliseconds(100), increase: .additive(.milliseconds(1000)),
                                 maxTries: 4, jitter: .milliseconds(50), maxBackoff: .milliseconds(1500))
        _ = await providerFailure { _ = try await send(gateway, "x", options: RequestOptions(provider: "p1", retry: retry)) }
        let sleeps = clock.sleeps
        #expect(sleeps.count == 3)
        #expect((Duration.milliseconds(100)...Duration.milliseconds(150)).contains(sleeps[0]))
        #expect((Duration.milliseconds(1100)...Duration.milliseconds(1150)).contains(sleeps[1]))
        #expect(sleeps[2] == .milliseconds(1500))
    }

    func aliasGateway(_ providers: [ScriptedProvider], clock: ManualClock = ManualClock(autoAdvance: true)) throws -> Gateway {
        let alias = AliasConfig(name: "multi", models: providers.enumerated().map {
            AliasModel(model: "test-model-\($0.offset + 1)", provider: $0.element.name)
        })
        return try makeGateway(providers, configuration: GatewayConfiguration(aliases: [alias]), clock: clock)
    }

    /// Several choices, first succeeds.
    @Test func multipleSuccess() async throws {
        let providers = [ScriptedProvider("p1"), ScriptedProvider("p2"), ScriptedProvider("p3")]
        let result = try await send(try aliasGateway(providers), "multi")
        #expect(result.requestInfo.model == "test-model-1")
        #expect(providers.map(\.callCount) == [1, 0, 0])
    }

    /// Fallback runs through the choices back to back, without waiting.
    @Test func multipleTransientFailures() async throws {
        let clock = ManualClock(autoAdvance: true)
        let providers = [ScriptedProvider.failing("p1", .server), ScriptedProvider.failing("p2", .server), ScriptedProvider("p3")]
        let result = try await send(try aliasGateway(providers, clock: clock), "multi")
        #expect(result.requestInfo.model == "test-model-3")
        #expect(result.requestInfo.numRetries == 2)
        #expect(clock.sleeps.isEmpty)
    }

    /// A rate-limited first choice falls back to the second.
    @Test func multipleRateLimit() async throws {
        let providers = [ScriptedProvider.failing("p1", .rateLimit), ScriptedProvider("p2")]
        let result = try await send(try aliasGateway(providers), "multi")
        #expect(result.requestInfo.provider == "p2")
        #expect(result.requestInfo.numRetries == 1)
        #expect(result.requestInfo.wasRateLimited)
    }

    /// Every choice failing every time: the error is the last, with retries and the rate-limit flag.
    @Test func multipleAllFailedEveryTime() async throws {
        let providers = [ScriptedProvider.failing("p1", .badInput), ScriptedProvider.failing("p2", .rateLimit),
                         ScriptedProvider.failing("p3", .server)]
        let failure = await providerFailure { _ = try await send(try aliasGateway(providers), "multi") }
        #expect(failure?.1 == 3)
        #expect(failure?.2 == true)
        // The non-retryable choice is not tried again; the retryable ones are, in turn.
        #expect(providers.map(\.callCount) == [1, 2, 1])
    }

    /// After a full pass, choices whose error was retryable are retried (Rust Chronicle's all_failed_once test, with
    /// the choice that rejected the input left alone).
    @Test func multipleAllFailedOnce() async throws {
        let providers = [ScriptedProvider("p1", failures: [ProviderError(kind: .server)]),
                         ScriptedProvider("p2", failures: [ProviderError(kind: .rateLimit)]),
                         ScriptedProvider("p3", failures: [ProviderError(kind: .server)])]
        let result = try await send(try aliasGateway(providers), "multi")
        #expect(result.requestInfo.numRetries == 3)
        #expect(result.requestInfo.wasRateLimited)
        #expect(result.requestInfo.provider == "p1")
        #expect(providers.map(\.callCount) == [2, 1, 1])
    }

    /// Every choice is tried once even when there are more choices than max_tries.
    @Test func everyChoiceTriedOnce() async throws {
        let providers = (1...6).map { ScriptedProvider.failing("p\($0)", .server) } + [ScriptedProvider("p7")]
        let gateway = try aliasGateway(providers)
        let result = try await send(gateway, "multi", options: RequestOptions(retry: RetryOptions(maxTries: 2)))
        #expect(result.requestInfo.provider == "p7")
        #expect(result.requestInfo.numRetries == 6)
    }

    /// A Retry-After longer than the backoff is waited for; one beyond max_backoff fails at once.
    @Test func retryAfterIsHonoured() async throws {
        let clock = ManualClock(autoAdvance: true)
        let provider = ScriptedProvider("p1", prefixes: ["p1/"], failures: [ProviderError(kind: .rateLimit, retryAfter: .seconds(2))])
        _ = try await send(try makeGateway([provider], clock: clock), options: RequestOptions(retry: noJitter))
        #expect(clock.sleeps == [.seconds(2)])

        let impatient = ScriptedProvider("p1", prefixes: ["p1/"], failures: [ProviderError(kind: .rateLimit, retryAfter: .seconds(60))])
        let failure = await providerFailure { _ = try await send(try makeGateway([impatient], clock: clock)) }
        #expect(failure?.0.kind == .rateLimit)
        #expect(impatient.callCount == 1)
    }

    /// Random order starts at the chosen index and cycles.
    @Test func randomOrderStart() async throws {
        let providers = [ScriptedProvider("p1"), ScriptedProvider("p2"), ScriptedProvider("p3")]
        let alias = AliasConfig(name: "r", randomOrder: true, models: providers.map { AliasModel(model: "m", provider: $0.name) })
        let gateway = try Gateway.Builder().withoutDefaultProviders().withHTTPClient(HTTPClient.shared)
            .withProvider(providers[0]).withProvider(providers[1]).withProvider(providers[2])
            .withConfiguration(GatewayConfiguration(aliases: [alias]))
            .withClock(ManualClock(autoAdvance: true)).withRandomChoice { _ in 2 }.build()
        #expect(try await gateway.send(request("r")).requestInfo.provider == "p3")
    }

    /// The planner alone: decisions without any provider.
    @Test func plannerDecisions() {
        var random = SystemRandomNumberGenerator()
        var planner = AttemptPlanner(choiceCount: 2, start: 1, options: RetryOptions(maxTries: 3, jitter: .zero))
        #expect(planner.firstChoice == 1)
        #expect(planner.next(after: ProviderError(kind: .server), using: &random) == .attempt(choice: 0, wait: .zero))
        #expect(planner.next(after: ProviderError(kind: .authRejected), using: &random) == .attempt(choice: 1, wait: .milliseconds(200)))
        #expect(planner.next(after: ProviderError(kind: .server), using: &random) == .giveUp)
        #expect(planner.attempts == 3)
    }
}
