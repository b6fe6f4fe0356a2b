/// An Anthropic Messages API request (`POST /v1/messages`).
///
/// The members the gateway converts are modelled; every other member (`top_k`, `service_tier`,
/// `container`, `mcp_servers`, members added later) is kept in ``unknownFields`` and written back as it came.
public struct AnthropicMessagesRequest: Sendable, Hashable {
    /// The model the client asked for, as it named it.
    public var model: String
    /// The conversation, alternating `user` and `assistant` turns.
    public var messages: [AnthropicMessage]
    /// The most tokens the answer may have (required by Anthropic).
    public var maxTokens: Int
    /// A string or text blocks.
    public var system: AnthropicMessage.Content?
    /// Whether the answer is streamed as events.
    public var stream: Bool?
    /// Sampling temperature.
    public var temperature: Double?
    /// Nucleus sampling.
    public var topP: Double?
    /// Texts that end the answer when the model writes them.
    public var stopSequences: [String]?
    /// The tools the model may call.
    public var tools: [AnthropicTool]?
    /// How the model must use the tools.
    public var toolChoice: AnthropicToolChoice?
    /// Extended thinking: `{"type":"enabled","budget_tokens":…}` or `{"type":"disabled"}`.
    public var thinking: JSONValue?
    /// The end user's id, and members added later.
    public var metadata: Metadata?
    /// Members the type does not model, written back as they came.
    public var unknownFields: [String: JSONValue]

    /// A request from its members.
    public init(model: String, messages: [AnthropicMessage], maxTokens: Int, system: AnthropicMessage.Content? = nil,
                stream: Bool? = nil, temperature: Double? = nil, topP: Double? = nil, stopSequences: [String]? = nil,
                tools: [AnthropicTool]? = nil, toolChoice: AnthropicToolChoice? = nil, thinking: JSONValue? = nil,
                metadata: Metadata? = nil, unknownFields: [String: JSONValue] = [:]) {
        self.model = model
        self.messages = messages
        self.maxTokens = maxTokens
        self.system = system
        self.stream = stream
        self.temperature = temperature
        self.topP = topP
        self.stopSequences = stopSequences
        self.tools = tools
        self.toolChoice = toolChoice
        self.thinking = thinking
        self.metadata = metadata
        self.unknownFields = unknownFields
    }

    /// The request's `metadata`: the end user's id, and members added later.
    public struct Metadata: Sendable, Hashable {
        /// An opaque id of the end user (`user_id`).
        public var userID: String?
        /// Members the type does not model, written back as they came.
        public var unknownFields: [String: JSONValue]

        /// Metadata from its members.
        public init(userID: String? = nil, unknownFields: [String: JSONValue] = [:]) {
            self.userID = userID
            self.unknownFields = unknownFields
        }
    }

    static let knownKeys: Set<String> = [
        "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "stop_sequences", "tools",
        "tool_choice", "thinking", "metadata",
    ]
}

extension AnthropicMessagesRequest: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.model = try c.decode(String.self, "model")
        self.messages = try c.decode([AnthropicMessage].self, "messages")
        self.maxTokens = try c.decode(Int.self, "max_tokens")
        self.system = try c.decodeIfPresent(AnthropicMessage.Content.self, "system")
        self.stream = try c.decodeIfPresent(Bool.self, "stream")
        self.temperature = try c.decodeIfPresent(Double.self, "temperature")
        self.topP = try c.decodeIfPresent(Double.self, "top_p")
        self.stopSequences = try c.decodeIfPresent([String].self, "stop_sequences")
        self.tools = try c.decodeIfPresent([AnthropicTool].self, "tools")
        self.toolChoice = try c.decodeIfPresent(AnthropicToolChoice.self, "tool_choice")
        self.thinking = try c.decodeIfPresent(JSONValue.self, "thinking")
        self.metadata = try c.decodeIfPresent(Metadata.self, "metadata")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(model, "model")
        try c.encode(maxTokens, "max_tokens")
        try c.encode(messages, "messages")
        try c.encodeIfPresent(system, "system")
        try c.encodeIfPresent(stream, "stream")
        try c.encodeIfPresent(temperature, "temperature")
        try c.encodeIfPresent(topP, "top_p")
        try c.encodeIfPresent(stopSequences, "stop_sequences")
        try c.encodeIfPresent(tools, "tools")
        try c.encodeIfPresent(toolChoice, "tool_choice")
        try c.encodeIfPresent(thinking, "thinking")
        try c.encodeIfPresent(metadata, "metadata")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

extension AnthropicMessagesRequest.Metadata: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.userID = try c.decodeIfPresent(String.self, "user_id")
        self.unknownFields = try c.decodeUnknownFields(excluding: ["user_id"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(userID, "user_id")
        try c.encodeUnknownFields(unknownFields, excluding: ["user_id"])
    }
}

/// One turn of an Anthropic conversation: `user` or `assistant`, with a string or blocks.
public struct AnthropicMessage: Sendable, Hashable {
    /// `user` or `assistant`.
    public var role: String
    /// A string or blocks.
    public var content: Content
    /// Members the type does not model, written back as they came.
    public var unknownFields: [String: JSONValue]

    /// A turn from its members.
    public init(role: String, content: Content, unknownFields: [String: JSONValue] = [:]) {
        self.role = role
        self.content = content
        self.unknownFields = unknownFields
    }

    /// A message's (or the system prompt's) content: a plain string or a list of blocks.
    public enum Content: Sendable, Hashable {
        case text(String)
        case blocks([AnthropicContentBlock])

        /// The content as blocks; a string is one text block.
        public var blocks: [AnthropicContentBlock] {
            switch self {
            case .text(let text): return [.text(.init(text: text))]
            case .blocks(let blocks): return blocks
            }
        }
    }
}

extension AnthropicMessage: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.role = try c.decode(String.self, "role")
        self.content = try c.decode(Content.self, "content")
        self.unknownFields = try c.decodeUnknownFields(excluding: ["role", "content"])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(role, "role")
        try c.encode(content, "content")
        try c.encodeUnknownFields(unknownFields, excluding: ["role", "content"])
    }
}

extension AnthropicMessage.Content: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .blocks(try container.decode([AnthropicContentBlock].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .blocks(let blocks): try container.encode(blocks)
        }
    }
}

/// A tool the model may call. A client tool has `input_schema`; a server tool (`web_search_…`, `bash_…`,
/// …) has a `type` of its own and is run by Anthropic.
public struct AnthropicTool: Sendable, Hashable {
    /// The name the model calls the tool by.
    public var name: String
    /// `custom` or absent for a client tool; a versioned type for a server tool.
    public var type: String?
    /// What the tool does, for the model.
    public var description: String?
    /// The JSON Schema of the tool's input; a client tool has one.
    public var inputSchema: JSONValue?
    /// Members the type does not model, written back as they came.
    public var unknownFields: [String: JSONValue]

    /// A tool from its members.
    public init(name: String, type: String? = nil, description: String? = nil, inputSchema: JSONValue? = nil,
                unknownFields: [String: JSONValue] = [:]) {
        self.name = name
        self.type = type
        self.description = description
        self.inputSchema = inputSchema
        self.unknownFields = unknownFields
    }

    /// Whether the client runs this tool (as opposed to Anthropic's servers).
    public var isClientTool: Bool { type == nil || type == "custom" }

    static let knownKeys: Set<String> = ["name", "type", "description", "input_schema"]
}

extension AnthropicTool: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.name = try c.decode(String.self, "name")
        self.type = try c.decodeIfPresent(String.self, "type")
        self.description = try c.decodeIfPresent(String.self, "description")
        self.inputSchema = try c.decodeIfPresent(JSONValue.self, "input_schema")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(type, "type")
        try c.encode(name, "name")
        try c.encodeIfPresent(description, "description")
        try c.encodeIfPresent(inputSchema, "input_schema")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}

/// How the model must use tools: `auto`, `any`, `tool` (with `name`) or `none`.
public struct AnthropicToolChoice: Sendable, Hashable {
    /// `auto`, `any`, `tool` or `none`.
    public var type: String
    /// The tool to call, for `type == "tool"`.
    public var name: String?
    /// Set to have the model call at most one tool per turn.
    public var disableParallelToolUse: Bool?
    /// Members the type does not model, written back as they came.
    public var unknownFields: [String: JSONValue]

    /// A tool choice from its members.
    public init(type: String, name: String? = nil, disableParallelToolUse: Bool? = nil,
                unknownFields: [String: JSONValue] = [:]) {
        self.type = type
        self.name = name
        self.disableParallelToolUse = disableParallelToolUse
        self.unknownFields = unknownFields
    }

    static let knownKeys: Set<String> = ["type", "name", "disable_parallel_tool_use"]
}

extension AnthropicToolChoice: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.type = try c.decode(String.self, "type")
        self.name = try c.decodeIfPresent(String.self, "name")
        self.disableParallelToolUse = try c.decodeIfPresent(Bool.self, "disable_parallel_tool_use")
        self.unknownFields = try c.decodeUnknownFields(excluding: Self.knownKeys)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(type, "type")
        try c.encodeIfPresent(name, "name")
        try c.encodeIfPresent(disableParallelToolUse, "disable_parallel_tool_use")
        try c.encodeUnknownFields(unknownFields, excluding: Self.knownKeys)
    }
}
