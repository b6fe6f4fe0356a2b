/// An OpenAI chat-completions request.
///
/// The fields the gateway acts on are modelled; every other field (`parallel_tool_calls`, `service_tier`,
/// `reasoning_effort`, …) is kept in ``unknownFields`` and forwarded unchanged to OpenAI-format upstreams.
public struct ChatRequest: Sendable, Hashable {
    public var model: String?
    public var messages: [ChatMessage]
    /// A system prompt given apart from the messages (Chronicle's extension of the OpenAI format).
    public var system: String?
    public var stream: Bool?
    public var streamOptions: JSONValue?
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var n: Int?
    public var seed: Int64?
    public var frequencyPenalty: Double?
    public var presencePenalty: Double?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    public var logitBias: JSONValue?
    public var responseFormat: JSONValue?
    /// Stop sequences; a single string in the request is read as a one-element list.
    public var stop: [String]?
    public var tools: [Tool]?
    public var toolChoice: JSONValue?
    public var user: String?
    /// Fields this type does not model, forwarded as they came.
    public var unknownFields: [String: JSONValue]

    public init(
        model: String? = nil,
        messages: [ChatMessage],
        system: String? = nil,
        stream: Bool? = nil,
        maxTokens: Int? = nil,
        temperature: Double? = nil,
        stop: [String]? = nil,
        tools: [Tool]? = nil,
        toolChoice: JSONValue? = nil,
        unknownFields: [String: JSONValue] = [:]
    ) {
        self.model = model
        self.messages = messages
        self.system = system
        self.stream = stream
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.stop = stop
        self.tools = tools
        self.toolChoice = toolChoice
        self.unknownFields = unknownFields
    }

    /// Whether the caller asked for a streamed response.
    public var isStreaming: Bool { stream ?? false }

    /// Removes `prefix` from the front of the model name, if it is there.
    mutating func stripModelPrefix(_ prefix: String?) {
        if let prefix, let model, model.hasPrefix(prefix) { self.model = String(model.dropFirst(prefix.count)) }
    }

    static let knownKeys: Set<String> = [
        "model", "messages", "system", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "n", "seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs",
        "logit_bias", "response_format", "stop", "tools", "tool_choice", "user",
    ]
}

extension ChatRequest: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.model = try c.decodeIfPresent(String.self, "model")
        self.messages = try c.decode([ChatMessage].self, "messages")
        self.system = try c.decodeIfPresent(String.self, "system")
        self.stream = try c.decodeIfPresent(Bool.self, "stream")
        self.streamOptions = try c.decodeIfPresent(JSONValue.self, "stream_options")
        self.maxTokens = try c.decodeIfPresent(Int.self, "max_tokens")
        self.maxCompletionTokens = try c.decodeIfPresent(Int.self, "max_completion_tokens")
        self.temperature = try c.decodeIfPresent(Double.self, "temperature")
        self.topP = try c.decodeIfPresent(Double.self, "top_p")
        self.n = try c.decodeIfPresent(Int.self, "n")
        self.seed = try c.decodeIfPresent(Int64.self, "seed")
        self.frequencyPenalty = try c.decodeIfPresent(Double.self, "frequency_penalty")
        self.presencePenalty = try c.decodeIfPresent(Double.self, "presence_penalty")
        self.logprobs = try c.decodeIfPresent(Bool.self, "logprobs")
        self.topLogprobs = try c.decodeIfPresent(Int.self, "top_logprobs")
        self.logitBias = try c.decodeIfPresent(JSONValue.self, "logit_bias")
        self.responseFormat = try c.decodeIfPresent(JSONValue.self, "response_format")
        if let single = try? c.decodeIfPresent(String.self, "stop") {
            self.stop = [single]
        } else {
            self.stop = try c.decodeIfPresent([String].self, "stop")
        }
        self.tools = try c.decodeIfPresent([Tool].self, "tools")
        self.toolChoice = try c.decodeIfPresent(JSONValue.self, "tool_choice")
        self.user = try c.decodeIfPresent(String.self, "user")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(model, "model")
        try c.encode(messages, "messages")
        try c.encodeIfPresent(system, "system")
        try c.encodeIfPresent(stream, "stream")
        try c.encodeIfPresent(streamOptions, "stream_options")
        try c.encodeIfPresent(maxTokens, "max_tokens")
        try c.encodeIfPresent(maxCompletionTokens, "max_completion_tokens")
        try c.encodeIfPresent(temperature, "temperature")
        try c.encodeIfPresent(topP, "top_p")
        try c.encodeIfPresent(n, "n")
        try c.encodeIfPresent(seed, "seed")
        try c.encodeIfPresent(frequencyPenalty, "frequency_penalty")
        try c.encodeIfPresent(presencePenalty, "presence_penalty")
        try c.encodeIfPresent(logprobs, "logprobs")
        try c.encodeIfPresent(topLogprobs, "top_logprobs")
        try c.encodeIfPresent(logitBias, "logit_bias")
        try c.encodeIfPresent(responseFormat, "response_format")
        if let stop, !stop.isEmpty { try c.encode(stop, "stop") }
        if let tools, !tools.isEmpty { try c.encode(tools, "tools") }
        try c.encodeIfPresent(toolChoice, "tool_choice")
        try c.encodeIfPresent(user, "user")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

/// One message of a conversation, or the delta of one in a streamed chunk.
public struct ChatMessage: Sendable, Hashable {
    /// `system`, `developer`, `user`, `assistant` or `tool`. Absent in most streamed deltas.
    public var role: String?
    public var content: MessageContent?
    public var name: String?
    public var toolCalls: [ToolCall]?
    public var toolCallID: String?
    /// Anthropic prompt-caching marker (`{"type":"ephemeral"}`), placed by providers that support it.
    public var cacheControl: JSONValue?
    /// Model reasoning ("thinking") text, kept apart from `content`.
    public var reasoningContent: String?
    /// The reasoning as the provider's signed blocks. Returned with Anthropic and Bedrock answers; on an
    /// assistant message in the history they are sent back unchanged, which extended thinking with tools needs.
    public var thinkingBlocks: [ThinkingBlock]?
    public var unknownFields: [String: JSONValue]

    public init(
        role: String? = nil,
        content: MessageContent? = nil,
        name: String? = nil,
        toolCalls: [ToolCall]? = nil,
        toolCallID: String? = nil,
        unknownFields: [String: JSONValue] = [:]
    ) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.unknownFields = unknownFields
    }

    /// The text of the content: the string, or the text parts joined.
    public var text: String? { content?.text }

    static let knownKeys: Set<String> = [
        "role", "content", "name", "tool_calls", "tool_call_id", "cache_control", "reasoning_content",
        "thinking_blocks",
    ]
}

extension ChatMessage: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.role = try c.decodeIfPresent(String.self, "role")
        self.content = try c.decodeIfPresent(MessageContent.self, "content")
        self.name = try c.decodeIfPresent(String.self, "name")
        self.toolCalls = try c.decodeIfPresent([ToolCall].self, "tool_calls")
        self.toolCallID = try c.decodeIfPresent(String.self, "tool_call_id")
        self.cacheControl = try c.decodeIfPresent(JSONValue.self, "cache_control")
        self.reasoningContent = try c.decodeIfPresent(String.self, "reasoning_content")
        self.thinkingBlocks = try c.decodeIfPresent([ThinkingBlock].self, "thinking_blocks")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(role, "role")
        try c.encode(content, "content")
        try c.encodeIfPresent(name, "name")
        if let toolCalls, !toolCalls.isEmpty { try c.encode(toolCalls, "tool_calls") }
        try c.encodeIfPresent(toolCallID, "tool_call_id")
        try c.encodeIfPresent(cacheControl, "cache_control")
        try c.encodeIfPresent(reasoningContent, "reasoning_content")
        if let thinkingBlocks, !thinkingBlocks.isEmpty { try c.encode(thinkingBlocks, "thinking_blocks") }
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

/// Message content: a plain string or a list of typed parts (text, image_url, input_audio, file, …).
public enum MessageContent: Sendable, Hashable {
    case text(String)
    case parts([ContentPart])

    /// The text of the content: the string itself, or every text part joined with no separator.
    public var text: String? {
        switch self {
        case .text(let string):
            return string
        case .parts(let parts):
            let texts = parts.compactMap(\.text)
            return texts.isEmpty ? nil : texts.joined()
        }
    }
}

extension MessageContent: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            self = .text(string)
        } else if let parts = try? container.decode([ContentPart].self) {
            self = .parts(parts)
        } else {
            throw DecodingError.typeMismatch(
                MessageContent.self,
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected a string or an array of content parts with a \"type\""
                )
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let string): try container.encode(string)
        case .parts(let parts): try container.encode(parts)
        }
    }
}

/// One part of a multi-part message, kept whole so that part types the gateway does not know pass through.
public struct ContentPart: Sendable, Hashable {
    /// The part's `type`: `text`, `image_url`, `input_audio`, `file`, …
    public var type: String
    /// Every member of the part, `type` included.
    public var fields: [String: JSONValue]

    public init(type: String, fields: [String: JSONValue] = [:]) {
        self.type = type
        var fields = fields
        fields["type"] = .string(type)
        self.fields = fields
    }

    public static func text(_ text: String) -> ContentPart {
        ContentPart(type: "text", fields: ["text": .string(text)])
    }

    public static func imageURL(_ url: String) -> ContentPart {
        ContentPart(type: "image_url", fields: ["image_url": ["url": .string(url)]])
    }

    /// The text of a `text` part.
    public var text: String? { type == "text" ? fields["text"]?.stringValue : nil }

    /// The URL of an `image_url` part (a web URL or a `data:` URL).
    public var imageURL: String? { type == "image_url" ? fields["image_url"]?["url"]?.stringValue : nil }
}

extension ContentPart: Codable {
    public init(from decoder: any Decoder) throws {
        let fields = try [String: JSONValue](from: decoder)
        guard let type = fields["type"]?.stringValue else {
            throw DecodingError.keyNotFound(
                AnyCodingKey("type"),
                .init(codingPath: decoder.codingPath, debugDescription: "a content part needs a string \"type\"")
            )
        }
        self.type = type
        self.fields = fields
    }

    public func encode(to encoder: any Encoder) throws {
        try fields.encode(to: encoder)
    }
}

/// A tool the model may call.
public struct Tool: Sendable, Hashable {
    public var type: String
    public var function: FunctionDefinition
    public var unknownFields: [String: JSONValue]

    public init(function: FunctionDefinition) {
        self.type = "function"
        self.function = function
        self.unknownFields = [:]
    }
}

extension Tool: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.type = try c.decodeIfPresent(String.self, "type") ?? "function"
        self.function = try c.decode(FunctionDefinition.self, "function")
        self.unknownFields = try c.decodeUnknownFields(excluding: ["type", "function"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(type, "type")
        try c.encode(function, "function")
        try c.encodeUnknownFields(unknownFields, excluding: ["type", "function"])
    }
}

/// A function tool's name, description and JSON-Schema parameters; other members are carried as they came.
public struct FunctionDefinition: Sendable, Hashable {
    public var name: String
    public var description: String?
    public var parameters: JSONValue?
    public var strict: Bool?
    public var unknownFields: [String: JSONValue]

    public init(name: String, description: String? = nil, parameters: JSONValue? = nil, strict: Bool? = nil,
                unknownFields: [String: JSONValue] = [:]) {
        self.name = name
        self.description = description
        self.parameters = parameters
        self.strict = strict
        self.unknownFields = unknownFields
    }

    static let knownKeys: Set<String> = ["name", "description", "parameters", "strict"]
}

extension FunctionDefinition: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.name = try c.decode(String.self, "name")
        self.description = try c.decodeIfPresent(String.self, "description")
        self.parameters = try c.decodeIfPresent(JSONValue.self, "parameters")
        self.strict = try c.decodeIfPresent(Bool.self, "strict")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(name, "name")
        try c.encodeIfPresent(description, "description")
        try c.encodeIfPresent(parameters, "parameters")
        try c.encodeIfPresent(strict, "strict")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

/// A tool call made by the model, or a fragment of one in a streamed delta.
public struct ToolCall: Sendable, Hashable {
    /// Position of the call among the message's calls; present in streamed deltas.
    public var index: Int?
    public var id: String?
    public var type: String?
    public var function: FunctionCall

    public init(index: Int? = nil, id: String? = nil, type: String? = "function", function: FunctionCall) {
        self.index = index
        self.id = id
        self.type = type
        self.function = function
    }
}

extension ToolCall: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.index = try c.decodeIfPresent(Int.self, "index")
        self.id = try c.decodeIfPresent(String.self, "id")
        self.type = try c.decodeIfPresent(String.self, "type")
        self.function = try c.decodeIfPresent(FunctionCall.self, "function") ?? FunctionCall()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(index, "index")
        try c.encodeIfPresent(id, "id")
        try c.encodeIfPresent(type, "type")
        try c.encode(function, "function")
    }
}

/// The function name and JSON-text arguments of a tool call.
public struct FunctionCall: Sendable, Hashable {
    public var name: String?
    /// The arguments as JSON text. Providers that return an object (Ollama) have it serialized here.
    public var arguments: String?

    public init(name: String? = nil, arguments: String? = nil) {
        self.name = name
        self.arguments = arguments
    }
}

extension FunctionCall: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.name = try c.decodeIfPresent(String.self, "name")
        if let text = try? c.decodeIfPresent(String.self, "arguments") {
            self.arguments = text
        } else if let value = try c.decodeIfPresent(JSONValue.self, "arguments"), !value.isNull {
            self.arguments = try JSONCoding.encodeToString(value)
        } else {
            self.arguments = nil
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(name, "name")
        try c.encodeIfPresent(arguments, "arguments")
    }
}
