import NIOCore

/// The request of one call, as the gateway holds it: typed, or as the client's bytes.
public enum CallRequest: Sendable {
    /// A request built in code (the embedding API) or decoded into types.
    case typed(ChatRequest)
    /// An OpenAI-format request kept as the client sent it (the server's chat route): forwarded byte for
    /// byte to OpenAI-format upstreams and decoded only for providers that translate it.
    case wire(WireChatRequest)
    /// An Anthropic Messages API request kept as the client sent it (the server's `/v1/messages` route):
    /// forwarded byte for byte to Anthropic-format upstreams and translated for the others.
    case messages(MessagesCall)
    /// An OpenAI embeddings request kept as the client sent it (the server's `/v1/embeddings` route):
    /// forwarded byte for byte to OpenAI-format upstreams and translated for the others.
    case embeddings(EmbeddingsRequest)
    /// An OpenAI Responses API request kept as the client sent it (the server's `/v1/responses` route):
    /// forwarded byte for byte to providers that serve the Responses API and translated for the others.
    case responses(ResponsesCall)

    /// The model the request names, if any.
    public var model: String? {
        switch self {
        case .typed(let request): return request.model
        case .wire(let request): return request.model
        case .messages(let request): return request.wire.model
        case .embeddings(let request): return request.model
        case .responses(let request): return request.wire.model
        }
    }

    /// Whether the client asked for a stream.
    public var isStreaming: Bool {
        switch self {
        case .typed(let request): return request.isStreaming
        case .wire(let request): return request.isStreaming
        case .messages(let request): return request.wire.isStreaming
        case .embeddings: return false
        case .responses(let request): return request.wire.isStreaming
        }
    }

    /// How many messages the conversation holds.
    public var messageCount: Int {
        switch self {
        case .typed(let request): return request.messages.count
        case .wire(let request): return request.messageCount
        case .messages(let request): return request.wire.messageCount
        // Inputs are not messages: the body size limit bounds them.
        case .embeddings: return 0
        case .responses(let request): return request.wire.inputCount
        }
    }

    /// Whether the client asked for a usage chunk at the end of its stream.
    public var includesStreamUsage: Bool {
        switch self {
        case .typed(let request): return request.streamOptions?["include_usage"]?.boolValue ?? false
        case .wire(let request): return request.includeUsage
        // The Messages API always reports usage, in `message_delta`.
        case .messages: return true
        case .embeddings: return false
        // The Responses API always reports usage, in the final event.
        case .responses: return true
        }
    }

    /// The typed request, decoding the client's bytes when that is what the call holds. An Anthropic
    /// request is translated as for `upstream`.
    public func typed(for upstream: AnthropicIngress.Upstream = .converting, nativeResponseFormat: Bool = true) throws
        -> ChatRequest
    {
        switch self {
        case .responses(let request):
            return ResponsesIngress.chatRequest(try request.wire.decoded(), for: upstream,
                                                nativeResponseFormat: nativeResponseFormat)
        case .typed(let request): return request
        case .wire(let request): return try request.decoded()
        case .messages(let request):
            var translated = try AnthropicIngress.chatRequest(request.wire.decoded(), for: upstream)
            // The translated stream's `message_delta` needs the usage, which OpenAI-format upstreams send
            // only when asked.
            if translated.isStreaming, upstream == .openAICompatible {
                var options = translated.streamOptions?.objectValue ?? [:]
                options["include_usage"] = true
                translated.streamOptions = .object(options)
            }
            return translated
        case .embeddings:
            throw ProviderError(kind: .transformingRequest, message: "An embeddings request has no chat form")
        }
    }

    /// The member of a stored call's `meta` that names the API the client spoke, when it was not OpenAI's
    /// chat completions.
    public static let clientAPIMetaKey = "api"

    /// The API the client spoke, when it was not OpenAI's chat completions: `anthropic_messages` for
    /// the Anthropic Messages API, `openai_embeddings` for OpenAI's embeddings, `openai_responses` for
    /// OpenAI's Responses API.
    public var clientAPI: String? {
        switch self {
        case .messages: return "anthropic_messages"
        case .embeddings: return "openai_embeddings"
        case .responses: return "openai_responses"
        case .typed, .wire: return nil
        }
    }

    /// The body as recorded and traced: the client's own JSON, without Chronicle's members (which may
    /// hold a key).
    public var recordedJSON: String? {
        switch self {
        case .typed: return nil
        case .wire(let request): return request.recordedJSON
        case .messages(let request): return String(buffer: request.wire.body)
        // The client's body as received: Chronicle reads its options from headers only here.
        case .embeddings(let request): return String(buffer: request.body)
        case .responses(let request): return String(buffer: request.wire.body)
        }
    }
}
