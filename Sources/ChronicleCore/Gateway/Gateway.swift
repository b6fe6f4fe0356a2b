import AsyncHTTPClient
import CoreMetrics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Tracing

/// The embeddable gateway: resolves a model string to providers, sends with retries and fallback, streams
/// the answer back, and hands one record per call to its subscribers: the log sink, metrics, and any
/// added with ``Builder/onCallFinished(_:)``.
///
/// ```swift
/// let gateway = try Gateway.Builder().withConfiguration(config).withLogSink(sink)
///     .onCallFinished { call in print(call.record.id, call.usage?.totalTokens ?? 0) }
///     .build()
/// let stream = try await gateway.send(ChatRequest(model: "groq/llama3-8b-8192", messages: [...]))
/// let collected = try await stream.collect()
/// try await gateway.shutdown()
/// ```
public final class Gateway: Sendable {
    private let registry: NIOLockedValueBox<Registry>
    private let transport: UpstreamHTTPClient
    private let ownsHTTPClient: Bool
    private let logSink: (any LogSink)?
    private let logger: Logger
    private let defaultTimeout: Duration
    private let streamIdleTimeout: Duration
    private let defaultRetry: RetryOptions
    private let randomChoice: @Sendable (Int) -> Int
    private let tracer: (any Tracer)?
    private let metrics: GatewayMetrics?
    private let tracePayloads: Bool
    /// Where finished calls go; built once, not per call.
    private let reporter: CallReporter
    /// What a new routing configuration is laid over: providers given as objects, and whether built-ins count.
    private let explicitProviders: [any ChatModelProvider]
    private let includeBuiltIns: Bool

    /// How many calls were finished as their last reference went instead of explicitly: an embedder that
    /// dropped a ``ChatStream`` part-way. The server finishes every call itself, so for it this stays 0.
    public var callsFinishedOnRelease: Int { reporter.callsFinishedOnRelease }

    init(builder: Builder) throws {
        let httpClient: HTTPClient
        if let client = builder.httpClient {
            httpClient = client
            ownsHTTPClient = false
        } else {
            httpClient = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: Self.defaultHTTPConfiguration)
            ownsHTTPClient = true
        }
        let configuration = builder.configuration
        var transport = UpstreamHTTPClient(
            httpClient: httpClient, clock: builder.clock, userAgent: configuration.userAgent ?? "chronicle",
            kind: configuration.upstreamHTTPClient ?? .nio)
        transport.imageFetchPolicy = configuration.imageFetch ?? ImageFetchPolicy()
        self.transport = transport
        logSink = builder.logSink
        logger = builder.logger
        defaultTimeout = configuration.defaultTimeout ?? .seconds(60)
        streamIdleTimeout = configuration.streamIdleTimeout ?? .seconds(120)
        defaultRetry = configuration.retry ?? RetryOptions()
        randomChoice = builder.randomChoice
        tracer = builder.tracer
        metrics = builder.metricsFactory.map { GatewayMetrics(factory: $0) }
        tracePayloads = configuration.tracePayloads ?? false
        let logsEmbeddingVectors = configuration.logEmbeddingVectors ?? false
        var redactor = builder.redactor ?? SecretRedactor.fromEnvironment()
        redactor.add(Self.secrets(of: configuration))
        // The log sink first: a record should be secured before anything else looks at it.
        var subscribers: [@Sendable (FinishedCall) -> Void] = []
        if let sink = builder.logSink { subscribers.append { sink.record(.call($0.record)) } }
        if let metrics { subscribers.append { metrics.finished($0) } }
        subscribers += builder.callSubscribers
        reporter = CallReporter(subscribers: subscribers, logger: builder.logger, redactor: redactor,
                                tracePayloads: tracePayloads, logsEmbeddingVectors: logsEmbeddingVectors)

        explicitProviders = builder.providers
        includeBuiltIns = builder.includeBuiltIns
        self.registry = NIOLockedValueBox(try Self.makeRegistry(
            configuration, explicit: builder.providers, includeBuiltIns: builder.includeBuiltIns, transport: transport))
    }

    /// Explicit providers, then configured ones, then built-ins; a later one never replaces an earlier one of
    /// the same name, so configuration can point any built-in elsewhere.
    private static func makeRegistry(_ configuration: GatewayConfiguration, explicit: [any ChatModelProvider],
                                     includeBuiltIns: Bool, transport: UpstreamHTTPClient) throws -> Registry {
        var registry = Registry()
        for provider in explicit { registry.add(provider, replacing: false) }
        for config in configuration.providers {
            registry.add(try makeProvider(config, transport: transport), replacing: false,
                         configuredModels: config.advertisedModels)
        }
        if includeBuiltIns {
            for provider in BuiltInProviders.all(transport: transport) { registry.add(provider, replacing: false) }
        }
        for alias in configuration.aliases { registry.aliases[alias.name] = alias }
        for key in configuration.apiKeys { registry.apiKeys[key.name] = key.key }
        return registry
    }

    /// Pool settings for upstream calls: many keep-alive connections per host, since a gateway
    /// concentrates every client's traffic on a few upstreams.
    public static var defaultHTTPConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)
        // A refused connection should fail the attempt now, so that the gateway's own retry and fallback
        // decide what happens next, instead of the pool retrying until the timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(10))
        configuration.httpVersion = .automatic
        return configuration
    }

    /// Builds a provider from its configuration.
    public static func makeProvider(_ config: CustomProviderConfig, transport: UpstreamHTTPClient) throws
        -> any ChatModelProvider
    {
        switch config.format {
        case .openAI(let transforms):
            var requestTransforms = transforms.requestTransforms
            requestTransforms.stripModelPrefix = config.strippedPrefix
            return OpenAICompatibleProvider(
                name: config.name, label: config.label, url: config.url, key: config.key,
                routingPrefixes: config.prefix.map { [$0] } ?? [], transforms: requestTransforms,
                headers: config.headerList, transport: transport)
        case .anthropic:
            return AnthropicProvider(
                name: config.name, label: config.label, url: config.url, key: config.key,
                routingPrefixes: config.prefix.map { [$0] } ?? [],
                stripModelPrefix: config.strippedPrefix,
                headers: config.headerList, transport: transport)
        case .azure(let apiVersion):
            let prefix = config.strippedPrefix
            return OpenAICompatibleProvider(
                name: config.name, label: config.label, endpoint: .azure(endpoint: .literal(config.url), apiVersion: apiVersion),
                key: config.key, routingPrefixes: config.prefix.map { [$0] } ?? [],
                transforms: OpenAIRequestTransforms(stripModelPrefix: prefix, requestStreamUsage: true),
                headers: config.headerList, transport: transport)
        case .gemini:
            return GeminiProvider(
                name: config.name, label: config.label, baseURL: config.url, key: config.key,
                routingPrefixes: config.prefix.map { [$0] } ?? [],
                stripModelPrefix: config.strippedPrefix,
                headers: config.headerList, transport: transport)
        case .ollama:
            return OllamaProvider(
                name: config.name, label: config.label, url: config.url, key: config.key,
                routingPrefixes: config.prefix.map { [$0] } ?? [],
                stripModelPrefix: config.strippedPrefix,
                headers: config.headerList, transport: transport)
        }
    }

    // MARK: Runtime configuration

    /// Replaces every configured provider, alias and named key at once with those of `configuration` (a
    /// reload). Calls already routed keep the providers they resolved; the next call sees the new set. When a
    /// provider cannot be built, this throws and the configuration in force stays.
    public func replaceRouting(_ configuration: GatewayConfiguration) throws {
        let registry = try Self.makeRegistry(configuration, explicit: explicitProviders,
                                             includeBuiltIns: includeBuiltIns, transport: transport)
        // Keys that arrive with a reload are scrubbed from errors like those configured at start-up.
        reporter.addSecrets(Self.secrets(of: configuration))
        self.registry.withLockedValue { $0 = registry }
    }

    /// The configured keys and provider header values, which must never reach an error message or a record.
    static func secrets(of configuration: GatewayConfiguration) -> [String] {
        var secrets = configuration.apiKeys.compactMap { key in (try? key.key.resolve(providerName: key.name)) ?? nil }
        for provider in configuration.providers {
            if let key = try? provider.key.resolve(providerName: provider.name) { secrets.append(key) }
            secrets += provider.headers.values
        }
        return secrets
    }

    /// Throws what building `config` into a provider would throw, without putting it in force.
    public func checkProvider(_ config: CustomProviderConfig) throws {
        _ = try Self.makeProvider(config, transport: transport)
    }

    /// Whether routing can choose a provider of this name, built-in ones included.
    public func hasProvider(named name: String) -> Bool {
        registry.withLockedValue { $0.providers[name] != nil }
    }

    /// The names of the built-in providers and of those given as objects: what any configuration may name
    /// besides its own providers.
    public var fixedProviderNames: Set<String> {
        var names = Set(explicitProviders.map(\.name))
        if includeBuiltIns { names.formUnion(BuiltInProviders.all(transport: transport).map(\.name)) }
        return names
    }

    /// Adds a provider, replacing any of the same name.
    public func setProvider(_ provider: any ChatModelProvider) {
        registry.withLockedValue { $0.add(provider, replacing: true) }
    }

    /// Adds a provider from configuration, replacing any of the same name.
    public func setProvider(_ config: CustomProviderConfig) throws {
        let provider = try Self.makeProvider(config, transport: transport)
        registry.withLockedValue { $0.add(provider, replacing: true, configuredModels: config.advertisedModels) }
    }

    public func removeProvider(named name: String) {
        registry.withLockedValue { $0.remove(name) }
    }

    public func setAlias(_ alias: AliasConfig) {
        registry.withLockedValue { $0.aliases[alias.name] = alias }
    }

    public func removeAlias(named name: String) {
        registry.withLockedValue { _ = $0.aliases.removeValue(forKey: name) }
    }

    public func setAPIKey(_ key: APIKeyConfig) {
        registry.withLockedValue { $0.apiKeys[key.name] = key.key }
    }

    public func removeAPIKey(named name: String) {
        registry.withLockedValue { _ = $0.apiKeys.removeValue(forKey: name) }
    }

    /// Provider names in routing order.
    public var providerNames: [String] { registry.withLockedValue { $0.order } }

    /// What `GET /v1/models` lists; see ``ListedModel``.
    public var listedModels: [ListedModel] {
        // A snapshot: a provider's list may read credential files, which must not happen under the lock.
        registry.withLockedValue { $0 }.listedModels
    }

    /// The configured aliases, sorted by name.
    public var aliases: [AliasConfig] { registry.withLockedValue { $0.aliases.values.sorted { $0.name < $1.name } } }

    /// Closes the pooled upstream connections and the upstream HTTP client if the gateway created it, then
    /// flushes the log sink, so that the last calls' records are written (or spilled) before this returns; it
    /// waits at most `flushTimeout` for them.
    /// The sink itself (a `LogWriter`'s task, say) stays its owner's to stop.
    public func shutdown(flushTimeout: Duration = .seconds(10)) async throws {
        var closeError: (any Error)?
        await transport.shutdown()
        if ownsHTTPClient {
            do { try await transport.httpClient.shutdown() } catch { closeError = error }
        }
        if let logSink, await !logSink.flush(deadline: .now + flushTimeout) {
            logger.warning("log records were still unwritten at the shutdown deadline",
                           metadata: ["flush_timeout": "\(flushTimeout)"])
        }
        if let closeError { throw closeError }
    }

    // MARK: Resolution

    /// One routing choice ready to send.
    struct Choice: Sendable {
        let provider: any ChatModelProvider
        let model: String
        let key: ProviderKey?
    }

    struct Route: Sendable {
        let choices: [Choice]
        let randomOrder: Bool
    }

    /// Resolves the choices for a request: explicit `models`, then an alias, then a forced provider, then the
    /// provider with the longest matching model prefix.
    func resolve(_ request: CallRequest, options: RequestOptions) throws(LookupError) -> Route {
        // A snapshot: copying the registry is cheap (copy-on-write) and keeps the lock out of resolution.
        let registry = self.registry.withLockedValue { $0 }
        do {
            if !options.models.isEmpty {
                let choices = try options.models.map { entry throws(LookupError) -> Choice in
                    guard let provider = registry.providers[entry.provider] else {
                        throw .unknownProvider(entry.provider)
                    }
                    var key: ProviderKey?
                    if let literal = entry.apiKey {
                        key = .literal(literal)
                    } else if let name = entry.apiKeyName {
                        guard let named = registry.apiKeys[name] else { throw .unknownAPIKey(name) }
                        key = named
                    }
                    return Choice(provider: provider, model: entry.model, key: key)
                }
                return Route(choices: choices, randomOrder: options.randomChoice ?? false)
            }
            guard let model = options.model ?? request.model, !model.isEmpty else { throw .modelNotSpecified }
            var requestKey = options.apiKey.map(ProviderKey.literal)
            if requestKey == nil, let name = options.apiKeyName {
                guard let named = registry.apiKeys[name] else { throw .unknownAPIKey(name) }
                requestKey = named
            }
            if let alias = registry.aliases[model] {
                let choices = try alias.models.map { entry throws(LookupError) -> Choice in
                    guard let provider = registry.providers[entry.provider] else {
                        throw .aliasUnknownProvider(alias: alias.name, provider: entry.provider)
                    }
                    var key: ProviderKey?
                    if let name = entry.apiKeyName {
                        guard let named = registry.apiKeys[name] else {
                            throw .aliasUnknownAPIKey(alias: alias.name, key: name)
                        }
                        key = named
                    }
                    return Choice(provider: provider, model: entry.model, key: key)
                }
                guard !choices.isEmpty else { throw .aliasEmpty(alias.name) }
                return Route(choices: choices, randomOrder: alias.randomOrder)
            }
            if let name = options.provider {
                guard let provider = registry.providers[name] else { throw .unknownProvider(name) }
                return Route(choices: [Choice(provider: provider, model: model, key: requestKey)], randomOrder: false)
            }
            guard let provider = registry.defaultProvider(for: model) else { throw .noDefaultProvider(model: model) }
            return Route(choices: [Choice(provider: provider, model: model, key: requestKey)], randomOrder: false)
        }
    }

    // MARK: Sending

    /// Sends a chat request with routing, retries and fallback.
    ///
    /// Returns once a provider has accepted the request; the stream then yields ``ChatStreamEvent/requestInfo(_:)``
    /// followed by the response. Iterating it to the end (or ``ChatStream/cancel()``) finishes the call and
    /// records it; a stream dropped part-way is recorded as cancelled.
    /// - Parameter call: the call, when the caller created it on accepting the request (the HTTP server
    ///   does, and finishes it itself); by default a new one that the stream finishes.
    /// - Throws: ``GatewayError`` when the request cannot be routed or every attempt failed; the call is
    ///   then finished, with that error recorded.
    public func send(_ request: ChatRequest, options: RequestOptions = RequestOptions(), call: GatewayCall? = nil)
        async throws -> ChatStream
    {
        try await send(call: .typed(request), options: options, call: call)
    }

    /// Sends an OpenAI-format request kept as the client's bytes (see ``WireChatRequest``): OpenAI-format
    /// upstreams receive those bytes with only the model replaced; other providers get it decoded.
    public func send(wire request: WireChatRequest, options: RequestOptions = RequestOptions(),
                     call: GatewayCall? = nil) async throws -> ChatStream {
        try await send(call: .wire(request), options: options, call: call)
    }

    /// Sends a typed or wire request; see ``send(_:options:call:)``.
    public func send(call request: CallRequest, options: RequestOptions = RequestOptions(), call: GatewayCall? = nil)
        async throws -> ChatStream
    {
        let call = call ?? GatewayCall()
        let id = call.id
        let tracer = self.tracer ?? InstrumentationSystem.tracer
        let requestSpan = tracer.startSpan(CallSpans.requestSpanName, context: ServiceContext.current ?? .topLevel,
                                           ofKind: .internal)
        CallSpans.recordStart(requestSpan, id: id, request: request, options: options, tracePayloads: tracePayloads)
        call.begin(request: request, options: options, reporter: reporter, requestSpan: requestSpan)
        metrics?.started(streaming: request.isStreaming)
        if logger.logLevel <= .trace {
            let body: String
            switch request {
            case .typed(let typed): body = CallSpans.json(typed) ?? ""
            // Without Chronicle's members, which may hold a key.
            case .wire, .messages, .embeddings, .responses: body = request.recordedJSON ?? ""
            }
            logger.trace("request", metadata: ["call.id": "\(id.uuidString.lowercased())", "body": "\(body)"])
        }
        let route: Route
        do {
            route = try resolve(request, options: options)
        } catch {
            let gatewayError = GatewayError.lookup(error)
            call.fail(gatewayError, provider: nil, model: options.model ?? request.model, retries: 0, rateLimited: false)
            throw gatewayError
        }
        if route.choices.count == 1, requestSpan.isRecording {
            requestSpan.attributes["llm.vendor"] = route.choices[0].provider.name
        }

        let retry = options.retry ?? defaultRetry
        let count = route.choices.count
        var planner = AttemptPlanner(
            choiceCount: count, start: route.randomOrder && count > 1 ? randomChoice(count) : 0, options: retry)
        var choiceIndex = planner.firstChoice
        var random = SystemRandomNumberGenerator()
        let timeout = options.timeout ?? defaultTimeout
        // Decoded once per kind of translation, and only if some choice's provider translates the request.
        var typedRequests: [TranslationKey: ChatRequest] = [:]

        while true {
            let choice = route.choices[choiceIndex]
            let attemptSpan = tracer.startSpan(CallSpans.attemptSpanName, context: requestSpan.context, ofKind: .client)
            if attemptSpan.isRecording {
                attemptSpan.updateAttributes { attributes in
                    attributes["gen_ai.system"] = choice.provider.name
                    attributes["llm.vendor"] = choice.provider.name
                    attributes["gen_ai.request.model"] = choice.model
                    attributes["llm.try"] = planner.attempts
                }
            }
            let attemptStart = call.now()
            call.attemptStarted(span: attemptSpan, at: attemptStart)
            do {
                let apiKey = try choice.key?.resolve(providerName: choice.provider.name)
                var providerRequest = ProviderRequest(
                    body: ChatRequest(model: choice.model, messages: [], stream: request.isStreaming), apiKey: apiKey,
                    overrideURL: options.overrideURL, timeout: timeout, streamIdleTimeout: streamIdleTimeout)
                let events: ChatEventStream
                if case .embeddings(let embeddings) = request {
                    providerRequest.embeddings = embeddings
                    let answer = try await choice.provider.embed(providerRequest)
                    events = ChatEventStream(events: [
                        .embeddings(answer), .responseInfo(ResponseInfo(model: answer.summary.model ?? choice.model)),
                    ])
                } else {
                    if case .wire(let wire) = request, choice.provider.forwardsWire(wire) {
                        providerRequest.wire = wire
                    } else if case .messages(let messages) = request, choice.provider.forwardsMessages(messages) {
                        providerRequest.messages = messages
                    } else if case .responses(let responses) = request, choice.provider.forwardsResponses(responses) {
                        providerRequest.responses = responses
                    } else {
                        let translation = TranslationKey(
                            upstream: choice.provider.messagesTranslation,
                            nativeResponseFormat: choice.provider.supportsResponseFormat)
                        let typed = try typedRequests[translation] ?? Self.decodeForTranslation(request, for: translation)
                        typedRequests[translation] = typed
                        providerRequest.body = typed
                        providerRequest.body.model = choice.model
                    }
                    events = try await choice.provider.send(providerRequest)
                }
                let info = RequestInfo(id: id, provider: choice.provider.name, model: choice.model,
                                       numRetries: planner.attempts - 1, wasRateLimited: planner.wasRateLimited)
                call.answerStarted(info, attempt: AttemptRecord(
                    provider: choice.provider.name, model: choice.model, errorKind: nil, status: 200, message: nil,
                    latencyMs: (call.now() - attemptStart).milliseconds))
                return ChatStream(requestInfo: info, upstream: events, call: call)
            } catch {
                let elapsed = call.now() - attemptStart
                let providerError = call.redacted(
                    error as? ProviderError ?? ProviderError(kind: .generic, message: "Provider failed: \(error)"))
                call.attemptFailed(AttemptRecord(
                    provider: choice.provider.name, model: choice.model, errorKind: providerError.kind,
                    status: providerError.status, message: providerError.message, latencyMs: elapsed.milliseconds),
                    error: providerError)
                logger.debug("attempt failed", metadata: [
                    "llm.try": "\(planner.attempts)", "llm.vendor": "\(choice.provider.name)",
                    "llm.request.model": "\(choice.model)", "error.kind": "\(providerError.kind.rawValue)",
                ])
                if providerError.kind == .cancelled || Task.isCancelled {
                    metrics?.attemptFailed(provider: choice.provider.name, errorKind: providerError.kind, nextProvider: nil)
                    return try failAll(providerError)
                }
                switch planner.next(after: providerError, using: &random) {
                case .giveUp:
                    metrics?.attemptFailed(provider: choice.provider.name, errorKind: providerError.kind, nextProvider: nil)
                    return try failAll(providerError)
                case .attempt(let next, let wait):
                    metrics?.attemptFailed(provider: choice.provider.name, errorKind: providerError.kind,
                                           nextProvider: route.choices[next].provider.name)
                    if wait > .zero {
                        do {
                            try await call.waiting { try await transport.clock.sleep(for: wait) }
                        } catch {
                            return try failAll(ProviderError(kind: .cancelled))
                        }
                    }
                    choiceIndex = next
                }
            }

            func failAll(_ providerError: ProviderError) throws(GatewayError) -> ChatStream {
                let failure = GatewayError.provider(
                    providerError, numRetries: planner.attempts - 1, wasRateLimited: planner.wasRateLimited,
                    attempts: call.attempts)
                call.fail(failure, provider: choice.provider.name, model: choice.model, retries: planner.attempts - 1,
                          rateLimited: planner.wasRateLimited)
                throw failure
            }
        }
    }

    /// The typed request for a provider that translates it. The server's scan only keeps requests the
    /// decoder accepts, so a failure to decode is the gateway's, not the client's; an Anthropic or Responses
    /// request holding something the provider's format cannot say is the client's (400).
    private static func decodeForTranslation(_ request: CallRequest, for translation: TranslationKey)
        throws(ProviderError) -> ChatRequest
    {
        do {
            return try request.typed(for: translation.upstream, nativeResponseFormat: translation.nativeResponseFormat)
        } catch let error as ResponsesError {
            throw error.providerError
        } catch let error as AnthropicError {
            throw ProviderError(kind: .badInput, status: error.status,
                                body: ["type": "error", "error": ["type": .string(error.type), "message": .string(error.message)]],
                                message: error.message)
        } catch {
            throw ProviderError(kind: .transformingRequest,
                                message: "Could not decode the request for this provider: \(describeDecodingError(error))")
        }
    }

    /// What a translated request depends on besides the client's body: requests are decoded once per
    /// distinct key among the choices whose providers translate.
    struct TranslationKey: Hashable {
        var upstream: AnthropicIngress.Upstream
        var nativeResponseFormat: Bool
    }

    // MARK: Workflow events

    /// Whether entries go to a log sink (false when recording is off).
    public var isRecording: Bool { logSink != nil }

    /// Records one workflow event (run, step or generic event). Does nothing without a log sink.
    public func recordEvent(_ event: WorkflowEvent) {
        logSink?.record(.workflow(event))
    }

    /// Records several workflow events, in order.
    public func recordEvents(_ events: [WorkflowEvent]) {
        guard let logSink else { return }
        for event in events { logSink.record(.workflow(event)) }
    }

    /// Records a generic event and returns its id.
    @discardableResult
    public func recordEvent(type: String, runID: UUID? = nil, stepID: UUID? = nil, data: JSONValue? = nil,
                            error: JSONValue? = nil, time: Date? = nil) -> UUID {
        let event = GenericEvent(type: type, runID: runID, stepID: stepID, data: data, error: error, time: time)
        recordEvent(.event(event))
        return event.id
    }
}

extension Gateway {
    /// Assembles a ``Gateway`` from configuration, providers, a log sink and the clock, tracer and metrics to use.
    public struct Builder {
        var configuration = GatewayConfiguration()
        var providers: [any ChatModelProvider] = []
        var includeBuiltIns = true
        var httpClient: HTTPClient?
        var clock: any GatewayClock = SystemClock()
        var logSink: (any LogSink)?
        var logger = Logger(label: "chronicle.gateway")
        var randomChoice: @Sendable (Int) -> Int = { Int.random(in: 0..<$0) }
        var tracer: (any Tracer)?
        var metricsFactory: (any MetricsFactory)?
        var redactor: SecretRedactor?
        var callSubscribers: [@Sendable (FinishedCall) -> Void] = []

        public init() {}

        /// Calls `subscriber` with every finished call: its record, its context (the gateway key's name)
        /// and its time to first event. Subscribers run in the order added, after the log sink and
        /// metrics, synchronously as the call finishes — for the server, before the client has the last
        /// bytes of its answer — so they must return at once.
        ///
        /// ```swift
        /// let gateway = try Gateway.Builder()
        ///     .onCallFinished { call in
        ///         if let tokens = call.usage?.totalTokens { budget.charge(tokens, to: call.context.gatewayKeyName) }
        ///     }
        ///     .build()
        /// ```
        public func onCallFinished(_ subscriber: @escaping @Sendable (FinishedCall) -> Void) -> Builder {
            var copy = self
            copy.callSubscribers.append(subscriber)
            return copy
        }

        /// Adds configured providers, aliases and keys; may be called for several configurations in order.
        public func withConfiguration(_ configuration: GatewayConfiguration) -> Builder {
            var copy = self
            copy.configuration.merge(configuration)
            return copy
        }

        /// Adds a provider implementation; it wins over configured and built-in providers of the same name.
        public func withProvider(_ provider: any ChatModelProvider) -> Builder {
            var copy = self
            copy.providers.append(provider)
            return copy
        }

        public func withAlias(_ alias: AliasConfig) -> Builder {
            var copy = self
            copy.configuration.aliases = ConfigurationPrecedence.mergeNamed(copy.configuration.aliases, [alias], name: \.name)
            return copy
        }

        public func withAPIKey(_ key: APIKeyConfig) -> Builder {
            var copy = self
            copy.configuration.apiKeys = ConfigurationPrecedence.mergeNamed(copy.configuration.apiKeys, [key], name: \.name)
            return copy
        }

        public func withoutDefaultProviders() -> Builder {
            var copy = self
            copy.includeBuiltIns = false
            return copy
        }

        /// Uses the caller's HTTP client for upstream calls; the caller shuts it down.
        public func withHTTPClient(_ client: HTTPClient) -> Builder {
            var copy = self
            copy.httpClient = client
            return copy
        }

        /// The clock for retry waits and timeouts (tests inject a manual one).
        public func withClock(_ clock: any GatewayClock) -> Builder {
            var copy = self
            copy.clock = clock
            return copy
        }

        public func withLogSink(_ sink: any LogSink) -> Builder {
            var copy = self
            copy.logSink = sink
            return copy
        }

        public func withLogger(_ logger: Logger) -> Builder {
            var copy = self
            copy.logger = logger
            return copy
        }

        public func userAgent(_ userAgent: String) -> Builder {
            var copy = self
            copy.configuration.userAgent = userAgent
            return copy
        }

        /// Chooses the first choice of random-order routes; for deterministic tests.
        public func withRandomChoice(_ choose: @escaping @Sendable (Int) -> Int) -> Builder {
            var copy = self
            copy.randomChoice = choose
            return copy
        }

        /// The tracer for call spans; by default the one installed with `InstrumentationSystem.bootstrap`.
        public func withTracer(_ tracer: any Tracer) -> Builder {
            var copy = self
            copy.tracer = tracer
            return copy
        }

        /// Where the gateway's metrics go; none by default.
        public func withMetricsFactory(_ factory: any MetricsFactory) -> Builder {
            var copy = self
            copy.metricsFactory = factory
            return copy
        }

        /// The secrets scrubbed from errors; by default credential-like environment variables plus the
        /// configured keys, which are always added.
        public func withRedactor(_ redactor: SecretRedactor) -> Builder {
            var copy = self
            copy.redactor = redactor
            return copy
        }

        public func build() throws -> Gateway {
            try Gateway(builder: self)
        }
    }
}

/// The providers, aliases and keys in force; guarded by the gateway's lock.
struct Registry {
    var providers: [String: any ChatModelProvider] = [:]
    /// Provider names in the order they were added: ties between equally long prefixes go to the earlier.
    var order: [String] = []
    var aliases: [String: AliasConfig] = [:]
    var apiKeys: [String: ProviderKey] = [:]
    /// What `GET /v1/models` lists for providers from configuration, by name; other providers list their own.
    var configuredModels: [String: [String]] = [:]

    mutating func add(_ provider: any ChatModelProvider, replacing: Bool, configuredModels: [String]? = nil) {
        if providers[provider.name] != nil {
            guard replacing else { return }
        } else {
            order.append(provider.name)
        }
        providers[provider.name] = provider
        self.configuredModels[provider.name] = configuredModels
    }

    mutating func remove(_ name: String) {
        configuredModels.removeValue(forKey: name)
        providers.removeValue(forKey: name)
        order.removeAll { $0 == name }
    }

    /// The provider with the longest routing prefix of `model`; the earliest added on a tie, so the choice never
    /// depends on hash order.
    func defaultProvider(for model: String) -> (any ChatModelProvider)? {
        var best: (provider: any ChatModelProvider, length: Int)?
        for name in order {
            guard let provider = providers[name], let length = provider.routingPrefixMatch(for: model) else { continue }
            if let current = best, length <= current.length { continue }
            best = (provider, length)
        }
        return best?.provider
    }
}

/// Why a call failed.
public enum GatewayError: Error, Sendable {
    /// The request could not be routed (the caller's mistake).
    case lookup(LookupError)
    /// Every attempt failed; the error is the last attempt's.
    case provider(ProviderError, numRetries: Int, wasRateLimited: Bool, attempts: [AttemptRecord])

    public var httpStatus: Int {
        switch self {
        case .lookup(let error): return error.httpStatus
        case .provider(let error, _, _, _): return error.httpStatus
        }
    }

    public var kind: String {
        switch self {
        case .lookup(let error): return error.kind
        case .provider(let error, _, _, _): return error.kind.rawValue
        }
    }

    public var message: String {
        switch self {
        case .lookup(let error): return error.message
        case .provider(let error, _, _, _): return error.message
        }
    }

    /// The structured error stored with the call.
    public func callError(provider: String?) -> CallError {
        switch self {
        case .lookup(let error):
            return CallError(kind: error.kind, message: error.message, status: error.httpStatus)
        case .provider(let error, _, _, let attempts):
            return CallError(kind: error.kind.rawValue, message: error.message, status: error.status,
                             provider: provider, body: error.body, attempts: attempts)
        }
    }
}

extension UUID {
    /// A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, then random bits.
    public static func v7(now: Date = Date()) -> UUID {
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var random = SystemRandomNumberGenerator()
        let high = random.next() as UInt64
        let low = random.next() as UInt64
        let timeBytes = withUnsafeBytes(of: milliseconds.bigEndian) { Array($0) }
        return UUID(uuid: (
            timeBytes[2], timeBytes[3], timeBytes[4], timeBytes[5], timeBytes[6], timeBytes[7],
            0x70 | UInt8(truncatingIfNeeded: high >> 60 & 0x0F), UInt8(truncatingIfNeeded: high >> 52),
            0x80 | UInt8(truncatingIfNeeded: low >> 58 & 0x3F), UInt8(truncatingIfNeeded: low >> 50),
            UInt8(truncatingIfNeeded: low >> 42), UInt8(truncatingIfNeeded: low >> 34),
            UInt8(truncatingIfNeeded: low >> 26), UInt8(truncatingIfNeeded: low >> 18),
            UInt8(truncatingIfNeeded: low >> 10), UInt8(truncatingIfNeeded: low >> 2)
        ))
    }
}
