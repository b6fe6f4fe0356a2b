import Foundation

/// A chat model backend: converts the OpenAI-format request to its API and its answers back.
///
/// Conform to add a provider the configuration cannot express. A provider is stateless per request and
/// shared across tasks.
public protocol ChatModelProvider: Sendable {
    /// The routing key (`openai`, `groq`, or a configured name).
    var name: String { get }
    /// A display name.
    var label: String { get }
    /// Model-name prefixes that route to this provider by default (`groq/`, `gpt-`, …).
    var routingPrefixes: [String] { get }
    /// The models `GET /v1/models` lists for this provider, named as a client sends them; empty when the
    /// provider cannot serve requests as things stand (a built-in without its key).
    var advertisedModels: [String] { get }
    /// Sends one attempt. Returns once the provider has accepted the request (response headers received);
    /// errors before that throw ``ProviderError`` and may be retried, errors while streaming end the stream.
    func send(_ request: ProviderRequest) async throws -> ChatEventStream
    /// Whether this provider sends `request` upstream as the client's bytes (``ProviderRequest/wire``)
    /// rather than a typed ``ProviderRequest/body``. Providers that translate the request say no.
    func forwardsWire(_ request: WireChatRequest) -> Bool
    /// Whether this provider sends an Anthropic Messages API request upstream as the client's bytes
    /// (``ProviderRequest/messages``) and answers with the upstream's bytes
    /// (``ChatStreamEvent/relayedMessages(_:)``). Only Anthropic-format providers say yes; the others get
    /// the request translated into ``ProviderRequest/body``.
    func forwardsMessages(_ request: MessagesCall) -> Bool
    /// How an Anthropic Messages API request is translated for this provider when it does not forward it:
    /// OpenAI-compatible APIs reject members they do not know, other converters read only what they know.
    var messagesTranslation: AnthropicIngress.Upstream { get }
    /// Sends one attempt of an embeddings request (``ProviderRequest/embeddings``, with the chosen model in
    /// ``ProviderRequest/body``) and answers in OpenAI's format. Providers without an embeddings API keep
    /// the default, which refuses with a 400 naming the provider and model.
    func embed(_ request: ProviderRequest) async throws -> EmbeddingsAnswer
    /// Whether this provider sends an OpenAI Responses API request upstream as the client's bytes
    /// (``ProviderRequest/responses``) and answers with the upstream's bytes
    /// (``ChatStreamEvent/relayedResponses(_:)``). Only providers that serve the Responses API themselves
    /// (OpenAI, Azure OpenAI) say yes; the others get the request translated into ``ProviderRequest/body``.
    func forwardsResponses(_ request: ResponsesCall) -> Bool
    /// Whether the provider takes chat completions' `response_format` (structured output). A translated
    /// Responses request's `text.format` becomes a tool the model must call where it does not.
    var supportsResponseFormat: Bool { get }
}

extension ChatModelProvider {
    public var label: String { name }

    public func forwardsWire(_ request: WireChatRequest) -> Bool { false }

    public func forwardsMessages(_ request: MessagesCall) -> Bool { false }

    public var messagesTranslation: AnthropicIngress.Upstream { .converting }

    public func forwardsResponses(_ request: ResponsesCall) -> Bool { false }

    public var supportsResponseFormat: Bool { true }

    public var advertisedModels: [String] { [] }

    public func embed(_ request: ProviderRequest) async throws -> EmbeddingsAnswer {
        throw EmbeddingsConversion.refusal(
            "Provider '\(name)' has no embeddings API: model '\(request.body.model ?? "")' cannot create embeddings")
    }

    /// The length of the longest routing prefix `model` starts with, or `nil` if none matches.
    public func routingPrefixMatch(for model: String) -> Int? {
        routingPrefixes.filter { model.hasPrefix($0) }.map(\.count).max()
    }
}

/// One attempt's input.
public struct ProviderRequest: Sendable {
    /// The request, with `model` set to the chosen model string (prefix not yet stripped). When ``wire`` is
    /// set, only `model` and `stream` are filled in: the request is the wire bytes.
    public var body: ChatRequest
    /// The client's bytes, for a provider whose ``ChatModelProvider/forwardsWire(_:)`` accepted them.
    public var wire: WireChatRequest?
    /// The client's Anthropic Messages API request, for a provider whose
    /// ``ChatModelProvider/forwardsMessages(_:)`` accepted it: it answers with
    /// ``ChatStreamEvent/relayedMessages(_:)`` events.
    public var messages: MessagesCall?
    /// The client's embeddings request, for ``ChatModelProvider/embed(_:)``.
    public var embeddings: EmbeddingsRequest?
    /// The client's OpenAI Responses API request, for a provider whose
    /// ``ChatModelProvider/forwardsResponses(_:)`` accepted it: it answers with
    /// ``ChatStreamEvent/relayedResponses(_:)`` events.
    public var responses: ResponsesCall?
    /// The key chosen for this attempt; the provider's own key is used when `nil`.
    public var apiKey: String?
    /// Replaces the provider's endpoint URL.
    public var overrideURL: String?
    /// How long to wait for the response headers.
    public var timeout: Duration
    /// How long a stream may stay silent between chunks.
    public var streamIdleTimeout: Duration

    public init(body: ChatRequest, apiKey: String? = nil, overrideURL: String? = nil,
                timeout: Duration = .seconds(60), streamIdleTimeout: Duration = .seconds(120)) {
        self.body = body
        self.apiKey = apiKey
        self.overrideURL = overrideURL
        self.timeout = timeout
        self.streamIdleTimeout = streamIdleTimeout
    }
}

/// What a chat call yields, in order: ``requestInfo`` (from the gateway), then chunks or one complete
/// response, then ``responseInfo``.
public enum ChatStreamEvent: Sendable, Hashable {
    /// Which provider and model answered, and how many retries it took. Always first from ``Gateway/send(_:options:)``.
    case requestInfo(RequestInfo)
    /// A streamed delta.
    case chunk(ChatChunk)
    /// A complete response (the provider answered without streaming).
    case single(ChatResponse)
    /// The provider's own model name and extra metadata, after the content.
    case responseInfo(ResponseInfo)
    /// Bytes of an Anthropic Messages API answer relayed as the upstream sent them, for a client that sent
    /// an Anthropic request to an Anthropic-format provider.
    case relayedMessages(RelayedMessagesPart)
    /// A whole embeddings answer, in OpenAI's format.
    case embeddings(EmbeddingsAnswer)
    /// Bytes of an OpenAI Responses API answer relayed as the upstream sent them, for a client that sent a
    /// Responses request to a provider that serves that API.
    case relayedResponses(RelayedResponsesPart)
}

/// Chronicle's description of how a request was served; the `meta` object of every response.
public struct RequestInfo: Sendable, Hashable, Codable {
    /// The call's id (UUIDv7), the same as its log record.
    public var id: UUID
    public var provider: String
    /// The winning choice's model string, before prefix stripping.
    public var model: String
    public var numRetries: Int
    public var wasRateLimited: Bool

    public init(id: UUID, provider: String, model: String, numRetries: Int, wasRateLimited: Bool) {
        self.id = id
        self.provider = provider
        self.model = model
        self.numRetries = numRetries
        self.wasRateLimited = wasRateLimited
    }

    enum CodingKeys: String, CodingKey {
        case id, provider, model
        case numRetries = "num_retries"
        case wasRateLimited = "was_rate_limited"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id.uuidString.lowercased(), forKey: .id)
        try c.encode(provider, forKey: .provider)
        try c.encode(model, forKey: .model)
        try c.encode(numRetries, forKey: .numRetries)
        try c.encode(wasRateLimited, forKey: .wasRateLimited)
    }
}

/// The provider's own account of the response: its model name and provider-specific metadata.
public struct ResponseInfo: Sendable, Hashable {
    public var model: String
    public var meta: JSONValue?

    public init(model: String, meta: JSONValue? = nil) {
        self.model = model
        self.meta = meta
    }
}

/// A single-pass asynchronous sequence of chat events, pulled on demand: nothing is read from the upstream
/// until the consumer asks, so buffering is bounded and an abandoned stream releases its connection.
public struct ChatEventStream: AsyncSequence, Sendable {
    public typealias Element = ChatStreamEvent

    /// One iteration's source: the function producing each next event, and whether the next one is ready
    /// without waiting (decoded from bytes already read).
    struct Producer {
        let next: () async throws -> ChatStreamEvent?
        let hasReadyEvent: () -> Bool
    }

    private let makeProducer: @Sendable () -> Producer
    private let abortUpstream: @Sendable () -> Void

    /// - Parameters:
    ///   - makeNext: called once per iteration; returns the function producing each next event.
    ///   - abort: ends the upstream request at once, so that a waiting `next()` fails with
    ///     ``ProviderErrorKind/cancelled``; called from any task.
    public init(_ makeNext: @escaping @Sendable () -> (() async throws -> ChatStreamEvent?),
                abort: @escaping @Sendable () -> Void = {}) {
        self.init(producer: { Producer(next: makeNext(), hasReadyEvent: { false }) }, abort: abort)
    }

    init(producer: @escaping @Sendable () -> Producer, abort: @escaping @Sendable () -> Void) {
        self.makeProducer = producer
        self.abortUpstream = abort
    }

    /// Ends the upstream request now (its client went away): a reader waiting for the next event gets a
    /// ``ProviderErrorKind/cancelled`` error instead of waiting for an upstream that may stay silent.
    public func abort() {
        abortUpstream()
    }

    /// A stream of the given events.
    public init(events: [ChatStreamEvent]) {
        self.init(producer: {
            var remaining = events[...]
            return Producer(next: { remaining.popFirst() }, hasReadyEvent: { !remaining.isEmpty })
        }, abort: {})
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(producer: makeProducer())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let producer: Producer
        public mutating func next() async throws -> ChatStreamEvent? {
            try await producer.next()
        }

        /// Whether ``next()`` would return without waiting for the upstream: a relay writes the events of
        /// one upstream read together instead of one socket write each.
        public var hasReadyEvent: Bool { producer.hasReadyEvent() }
    }
}
