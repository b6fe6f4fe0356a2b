import Foundation

/// Why the model stopped: `stop`, `length`, `tool_calls`, `content_filter`, or any other provider string.
public struct FinishReason: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public init(from decoder: any Decoder) throws { self.rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static let stop: FinishReason = "stop"
    public static let length: FinishReason = "length"
    public static let toolCalls: FinishReason = "tool_calls"
    public static let contentFilter: FinishReason = "content_filter"
}

/// Token usage. Provider details (`prompt_tokens_details`, `completion_tokens_details`, …) are carried as they came.
public struct Usage: Sendable, Hashable {
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var totalTokens: Int?
    public var unknownFields: [String: JSONValue]

    public init(promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil,
                unknownFields: [String: JSONValue] = [:]) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
        self.unknownFields = unknownFields
    }

    /// Prompt tokens served from the provider's cache, when it reports them.
    public var cachedTokens: Int? {
        unknownFields["prompt_tokens_details"]?["cached_tokens"]?.intValue
    }

    /// Tokens spent on reasoning, when the provider reports them.
    public var reasoningTokens: Int? {
        unknownFields["completion_tokens_details"]?["reasoning_tokens"]?.intValue
    }

    /// Overwrites each field the other usage has (streamed usage arrives piecewise).
    mutating func merge(_ other: Usage) {
        if let value = other.promptTokens { promptTokens = value }
        if let value = other.completionTokens { completionTokens = value }
        if let value = other.totalTokens { totalTokens = value }
        unknownFields.merge(other.unknownFields) { _, new in new }
    }
}

extension Usage: Codable {
    static let knownKeys: Set<String> = ["prompt_tokens", "completion_tokens", "total_tokens"]

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.promptTokens = try c.decodeIfPresent(Int.self, "prompt_tokens")
        self.completionTokens = try c.decodeIfPresent(Int.self, "completion_tokens")
        self.totalTokens = try c.decodeIfPresent(Int.self, "total_tokens")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(promptTokens, "prompt_tokens")
        try c.encode(completionTokens, "completion_tokens")
        try c.encode(totalTokens ?? Self.sum(promptTokens, completionTokens), "total_tokens")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }

    private static func sum(_ a: Int?, _ b: Int?) -> Int? {
        guard let a, let b else { return nil }
        return a + b
    }
}

/// A complete chat completion (`object: "chat.completion"`).
public struct ChatResponse: Sendable, Hashable {
    public var id: String?
    /// Unix seconds. A provider that omits it gets the time the gateway received the response.
    public var created: Int64
    public var model: String?
    public var systemFingerprint: String?
    public var choices: [ChatChoice]
    public var usage: Usage?
    public var unknownFields: [String: JSONValue]
    /// The response's JSON exactly as an OpenAI-format upstream sent it, when it can be forwarded as is
    /// (see ``ChatChunk/wireJSON``). Whoever changes a response must clear it. Neither encoded nor part of
    /// equality.
    @NotCompared public var wireJSON: [UInt8]? = nil
    /// Set when only `id`, `created`, `model` and `usage` were read from ``wireJSON`` (a relayed response):
    /// `choices` is then empty, and ``decoded()`` reads the rest.
    @NotCompared public internal(set) var isSummary = false

    public init(id: String? = nil, created: Int64 = 0, model: String? = nil, systemFingerprint: String? = nil,
                choices: [ChatChoice] = [], usage: Usage? = nil, unknownFields: [String: JSONValue] = [:]) {
        self.id = id
        self.created = created
        self.model = model
        self.systemFingerprint = systemFingerprint
        self.choices = choices
        self.usage = usage
        self.unknownFields = unknownFields
    }

    static let knownKeys: Set<String> = ["id", "object", "created", "model", "system_fingerprint", "choices", "usage", "meta"]
}

extension ChatResponse: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.id = try c.decodeIfPresent(String.self, "id")
        self.created = try c.decodeIfPresent(Int64.self, "created") ?? unixNow()
        self.model = try c.decodeIfPresent(String.self, "model")
        self.systemFingerprint = try c.decodeIfPresent(String.self, "system_fingerprint")
        self.choices = try c.decodeIfPresent([ChatChoice].self, "choices") ?? []
        self.usage = try c.decodeIfPresent(Usage.self, "usage")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(id ?? "chatcmpl-unknown", "id")
        try c.encode("chat.completion", "object")
        try c.encode(created, "created")
        try c.encode(model, "model")
        try c.encode(systemFingerprint, "system_fingerprint")
        try c.encode(choices, "choices")
        try c.encodeIfPresent(usage, "usage")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

/// One choice of a complete response.
public struct ChatChoice: Sendable, Hashable {
    public var index: Int
    public var message: ChatMessage
    /// `nil` only when a provider did not say; encoded as `stop` then, which is what it means.
    public var finishReason: FinishReason?
    public var unknownFields: [String: JSONValue]

    public init(index: Int = 0, message: ChatMessage, finishReason: FinishReason? = .stop,
                unknownFields: [String: JSONValue] = [:]) {
        self.index = index
        self.message = message
        self.finishReason = finishReason
        self.unknownFields = unknownFields
    }
}

extension ChatChoice: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.index = try c.decodeIfPresent(Int.self, "index") ?? 0
        self.message = try c.decodeIfPresent(ChatMessage.self, "message") ?? ChatMessage(role: "assistant")
        self.finishReason = try c.decodeIfPresent(FinishReason.self, "finish_reason")
        self.unknownFields = try c.decodeUnknownFields(excluding: ["index", "message", "finish_reason"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(index, "index")
        try c.encode(message, "message")
        try c.encode(finishReason ?? .stop, "finish_reason")
        try c.encodeUnknownFields(unknownFields, excluding: ["index", "message", "finish_reason"])
    }
}

/// One streamed chunk (`object: "chat.completion.chunk"`).
public struct ChatChunk: Sendable, Hashable {
    public var id: String?
    public var created: Int64
    public var model: String?
    public var systemFingerprint: String?
    public var choices: [ChunkChoice]
    public var usage: Usage?
    public var unknownFields: [String: JSONValue]
    /// The chunk's JSON exactly as an OpenAI-format upstream sent it, when it can be forwarded as is: the
    /// server relays these bytes instead of encoding the chunk again. Whoever changes a chunk must clear
    /// it. Neither encoded nor part of equality.
    @NotCompared public var wireJSON: [UInt8]? = nil
    /// Set when only `id`, `created`, `model` and `usage` were read from ``wireJSON`` (a relayed chunk):
    /// `choices` is then empty, ``isUsageOnly`` still tells a usage chunk, and ``decoded()`` reads the rest.
    @NotCompared public internal(set) var isSummary = false
    /// For a summary: whether the upstream's chunk has choices.
    @NotCompared var summaryHasChoices = false

    public init(id: String? = nil, created: Int64 = 0, model: String? = nil, systemFingerprint: String? = nil,
                choices: [ChunkChoice] = [], usage: Usage? = nil, unknownFields: [String: JSONValue] = [:]) {
        self.id = id
        self.created = created
        self.model = model
        self.systemFingerprint = systemFingerprint
        self.choices = choices
        self.usage = usage
        self.unknownFields = unknownFields
    }

    /// The chunks that stream a complete response: one per choice, carrying the whole message as its delta.
    /// Streamed tool calls are placed by their `index`, so each call gets its position.
    public init(response: ChatResponse) {
        self.init(
            id: response.id, created: response.created, model: response.model,
            systemFingerprint: response.systemFingerprint,
            choices: response.choices.map { choice in
                var delta = choice.message
                delta.toolCalls = delta.toolCalls.map { calls in
                    calls.enumerated().map { position, call in
                        var call = call
                        call.index = call.index ?? position
                        return call
                    }
                }
                return ChunkChoice(index: choice.index, delta: delta, finishReason: choice.finishReason ?? .stop)
            },
            usage: response.usage, unknownFields: response.unknownFields
        )
    }
}

extension ChatChunk: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.id = try c.decodeIfPresent(String.self, "id")
        self.created = try c.decodeIfPresent(Int64.self, "created") ?? 0
        self.model = try c.decodeIfPresent(String.self, "model")
        self.systemFingerprint = try c.decodeIfPresent(String.self, "system_fingerprint")
        self.choices = try c.decodeIfPresent([ChunkChoice].self, "choices") ?? []
        self.usage = try c.decodeIfPresent(Usage.self, "usage")
        self.unknownFields = try c.decodeUnknownFields(excluding: ChatResponse.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(id ?? "chatcmpl-unknown", "id")
        try c.encode("chat.completion.chunk", "object")
        try c.encode(created, "created")
        try c.encode(model, "model")
        try c.encode(systemFingerprint, "system_fingerprint")
        try c.encode(choices, "choices")
        try c.encodeIfPresent(usage, "usage")
        try c.encodeUnknownFields(unknownFields, excluding: ChatResponse.knownKeys)
    }
}

/// One choice of a streamed chunk.
public struct ChunkChoice: Sendable, Hashable {
    public var index: Int
    public var delta: ChatMessage
    public var finishReason: FinishReason?
    public var unknownFields: [String: JSONValue]

    public init(index: Int = 0, delta: ChatMessage, finishReason: FinishReason? = nil,
                unknownFields: [String: JSONValue] = [:]) {
        self.index = index
        self.delta = delta
        self.finishReason = finishReason
        self.unknownFields = unknownFields
    }
}

extension ChunkChoice: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.index = try c.decodeIfPresent(Int.self, "index") ?? 0
        self.delta = try c.decodeIfPresent(ChatMessage.self, "delta") ?? ChatMessage()
        self.finishReason = try c.decodeIfPresent(FinishReason.self, "finish_reason")
        self.unknownFields = try c.decodeUnknownFields(excluding: ["index", "delta", "finish_reason"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(index, "index")
        try c.encode(delta, "delta")
        try c.encode(finishReason, "finish_reason")
        try c.encodeUnknownFields(unknownFields, excluding: ["index", "delta", "finish_reason"])
    }
}

/// The current time in Unix seconds.
func unixNow() -> Int64 {
    Int64(Date().timeIntervalSince1970)
}

/// Shared JSON coders. Foundation's coders are safe to use from many tasks at once.
public enum JSONCoding {
    static let decoder = JSONDecoder()
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    public static func decode<T: Decodable>(_ type: T.Type, from data: some Collection<UInt8>) throws -> T {
        try decoder.decode(type, from: Data(data))
    }

    /// Encodes with ``StreamingJSONEncoder``, or Foundation's encoder for what it cannot write in one pass.
    public static func encode(_ value: some Encodable) throws -> Data {
        Data(try encodeBytes(value))
    }

    public static func encodeBytes(_ value: some Encodable) throws -> [UInt8] {
        do {
            return try StreamingJSONEncoder.encode(value)
        } catch is StreamingJSONEncoder.Unsupported {
            return Array(try encoder.encode(value))
        }
    }

    public static func encodeToString(_ value: some Encodable) throws -> String {
        String(decoding: try encodeBytes(value), as: UTF8.self)
    }
}
