/// The request of one call, as the gateway holds it: typed, or as the client's bytes.
public enum CallRequest: Sendable {
    /// A request built in code (the embedding API) or decoded into types.
    case typed(ChatRequest)
    /// An OpenAI-format request kept as the client sent it (the server's chat route): forwarded byte for
    /// byte to OpenAI-format upstreams and decoded only for providers that translate it.
    case wire(WireChatRequest)

    /// The model the request names, if any.
    public var model: String? {
        switch self {
        case .typed(let request): return request.model
        case .wire(let request): return request.model
        }
    }

    /// Whether the client asked for a stream.
    public var isStreaming: Bool {
        switch self {
        case .typed(let request): return request.isStreaming
        case .wire(let request): return request.isStreaming
        }
    }

    /// How many messages the conversation holds.
    public var messageCount: Int {
        switch self {
        case .typed(let request): return request.messages.count
        case .wire(let request): return request.messageCount
        }
    }

    /// Whether the client asked for a usage chunk at the end of its stream.
    public var includesStreamUsage: Bool {
        switch self {
        case .typed(let request): return request.streamOptions?["include_usage"]?.boolValue ?? false
        case .wire(let request): return request.includeUsage
        }
    }

    /// The typed request, decoding the client's bytes when that is what the call holds.
    public func typed() throws -> ChatRequest {
        switch self {
        case .typed(let request): return request
        case .wire(let request): return try request.decoded()
        }
    }
}
