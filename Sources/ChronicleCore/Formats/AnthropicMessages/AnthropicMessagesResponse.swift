/// An Anthropic Messages API response (`type: "message"`); also the `message` of a stream's
/// `message_start` event, with no content yet.
public struct AnthropicMessagesResponse: Sendable, Hashable {
    /// `msg_…`.
    public var id: String?
    /// The model that answered.
    public var model: String?
    /// Always `assistant`.
    public var role: String
    /// The answer's blocks: thinking, text, tool calls, in the order the model wrote them.
    public var content: [AnthropicContentBlock]
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`, or `nil` while
    /// streaming.
    public var stopReason: String?
    /// The stop sequence that ended the answer, when one did.
    public var stopSequence: String?
    /// The tokens the call used.
    public var usage: AnthropicUsage?
    /// Members the type does not model, written back as they came.
    public var unknownFields: [String: JSONValue]

    /// A response from its members.
    public init(id: String? = nil, model: String? = nil, role: String = "assistant", content: [AnthropicContentBlock] = [],
                stopReason: String? = nil, stopSequence: String? = nil, usage: AnthropicUsage? = nil,
                unknownFields: [String: JSONValue] = [:]) {
        self.id = id
        self.model = model
        self.role = role
        self.content = content
        self.stopReason = stopReason
        self.stopSequence = stopSequence
        self.usage = usage
        self.unknownFields = unknownFields
    }

    static let knownKeys: Set<String> = ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
}

extension AnthropicMessagesResponse: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.id = try c.decodeIfPresent(String.self, "id")
        self.model = try c.decodeIfPresent(String.self, "model")
        self.role = try c.decodeIfPresent(String.self, "role") ?? "assistant"
        self.content = try c.decodeIfPresent([AnthropicContentBlock].self, "content") ?? []
        self.stopReason = try c.decodeIfPresent(String.self, "stop_reason")
        self.stopSequence = try c.decodeIfPresent(String.self, "stop_sequence")
        self.usage = try c.decodeIfPresent(AnthropicUsage.self, "usage")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    /// Every member Anthropic's SDKs require is written, `null` where there is no value.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(id ?? "", "id")
        try c.encode("message", "type")
        try c.encode(role, "role")
        try c.encode(model ?? "", "model")
        try c.encode(content, "content")
        try c.encode(stopReason, "stop_reason")
        try c.encode(stopSequence, "stop_sequence")
        try c.encode(usage ?? AnthropicUsage(inputTokens: 0, outputTokens: 0), "usage")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

/// Token usage in Anthropic's terms: `input_tokens` counts only the input that was neither read from nor
/// written to the prompt cache; those are counted apart.
public struct AnthropicUsage: Sendable, Hashable {
    /// Input tokens neither read from nor written to the cache.
    public var inputTokens: Int?
    /// Tokens of the answer.
    public var outputTokens: Int?
    /// Input tokens written to the cache.
    public var cacheCreationInputTokens: Int?
    /// Input tokens read from the cache.
    public var cacheReadInputTokens: Int?
    /// Members the type does not model, written back as they came.
    public var unknownFields: [String: JSONValue]

    /// Usage from its members.
    public init(inputTokens: Int? = nil, outputTokens: Int? = nil, cacheCreationInputTokens: Int? = nil,
                cacheReadInputTokens: Int? = nil, unknownFields: [String: JSONValue] = [:]) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
        self.cacheReadInputTokens = cacheReadInputTokens
        self.unknownFields = unknownFields
    }

    static let knownKeys: Set<String> = [
        "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    ]
}

extension AnthropicUsage: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.inputTokens = try c.decodeIfPresent(Int.self, "input_tokens")
        self.outputTokens = try c.decodeIfPresent(Int.self, "output_tokens")
        self.cacheCreationInputTokens = try c.decodeIfPresent(Int.self, "cache_creation_input_tokens")
        self.cacheReadInputTokens = try c.decodeIfPresent(Int.self, "cache_read_input_tokens")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    /// `input_tokens` and `output_tokens` are always written (SDKs require them), 0 when unknown.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(inputTokens ?? 0, "input_tokens")
        try c.encodeIfPresent(cacheCreationInputTokens, "cache_creation_input_tokens")
        try c.encodeIfPresent(cacheReadInputTokens, "cache_read_input_tokens")
        try c.encode(outputTokens ?? 0, "output_tokens")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}
