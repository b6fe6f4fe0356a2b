import Foundation

/// The answer to ``ChronicleClient/chat(_:)``: the provider's completion, Chronicle's ``meta`` and the call's id.
public struct ChatResponse: Sendable, Hashable, Decodable {
    /// The provider's id for the completion.
    public var id: String?
    /// When the provider made it (Unix seconds).
    public var created: Int64?
    /// The model as the provider reported it.
    public var model: String?
    /// The provider's backend configuration, when it reports one.
    public var systemFingerprint: String?
    /// The completions (one unless the request asked for more).
    public var choices: [ChatChoice]
    /// Token counts.
    public var usage: Usage?
    /// Which provider and model Chronicle used, and how many retries it took.
    public var meta: CallMeta?
    /// The call's id in Chronicle's log (`x-chronicle-call-id`, else `meta.id`): `/v1/calls/{id}`.
    public var callID: UUID?

    /// The first choice's message.
    public var message: ChatMessage? { choices.first?.message }
    /// The first choice's text.
    public var text: String? { message?.text }
    /// The tool calls of the first choice (empty when it made none).
    public var toolCalls: [ToolCall] { message?.toolCalls ?? [] }

    enum CodingKeys: String, CodingKey {
        case id, created, model, choices, usage, meta
        case systemFingerprint = "system_fingerprint"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        created = try c.decodeIfPresent(Int64.self, forKey: .created)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        systemFingerprint = try c.decodeIfPresent(String.self, forKey: .systemFingerprint)
        choices = try c.decodeIfPresent([ChatChoice].self, forKey: .choices) ?? []
        usage = try c.decodeIfPresent(Usage.self, forKey: .usage)
        meta = try c.decodeIfPresent(CallMeta.self, forKey: .meta)
        callID = meta?.id
    }
}

/// One completion choice.
public struct ChatChoice: Sendable, Hashable, Decodable {
    /// The choice's position.
    public var index: Int
    /// The assistant's message: text, tool calls, or both.
    public var message: ChatMessage
    /// `stop`, `length`, `tool_calls`, …
    public var finishReason: String?

    enum CodingKeys: String, CodingKey {
        case index, message
        case finishReason = "finish_reason"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
        message = try c.decodeIfPresent(ChatMessage.self, forKey: .message) ?? .assistant(nil)
        finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
    }
}

/// Token counts.
public struct Usage: Sendable, Hashable, Decodable {
    /// Tokens read.
    public var promptTokens: Int?
    /// Tokens written.
    public var completionTokens: Int?
    /// Both together.
    public var totalTokens: Int?

    public init(promptTokens: Int? = nil, completionTokens: Int? = nil, totalTokens: Int? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = totalTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }
}

/// Chronicle's `meta` on an answer: the call's id, the provider and model used, retries.
public struct CallMeta: Sendable, Hashable, Decodable {
    /// The call's id, the same as its record's.
    public var id: UUID?
    /// The provider that answered.
    public var provider: String?
    /// The winning choice's model string as requested (before a provider prefix is stripped).
    public var model: String?
    /// Attempts beyond the first.
    public var numRetries: Int?
    /// Whether a provider answered 429 on the way.
    public var wasRateLimited: Bool?

    enum CodingKeys: String, CodingKey {
        case id, provider, model
        case numRetries = "num_retries"
        case wasRateLimited = "was_rate_limited"
    }
}
