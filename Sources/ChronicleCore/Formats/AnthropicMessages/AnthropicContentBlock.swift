/// One content block of an Anthropic Messages API message, request or response.
///
/// The block types the gateway converts are modelled; every other type (`search_result`, server tool
/// results, types added later) is kept whole in ``other(_:)``, so a block passes through even when the
/// gateway cannot read it. Members a modelled block does not model (`cache_control`, `citations`, …) are
/// kept in its `unknownFields`.
public enum AnthropicContentBlock: Sendable, Hashable {
    case text(Text)
    case image(Image)
    case toolUse(ToolUse)
    case toolResult(ToolResult)
    /// A `thinking` or `redacted_thinking` block, kept whole: the provider checks its signature when it is
    /// sent back.
    case thinking(ThinkingBlock)
    /// A `document` block (PDF, plain text or content blocks), kept whole.
    case document([String: JSONValue])
    /// Any other block type, kept whole (`type` included).
    case other([String: JSONValue])

    /// The block's `type`.
    public var type: String {
        switch self {
        case .text: return "text"
        case .image: return "image"
        case .toolUse: return "tool_use"
        case .toolResult: return "tool_result"
        case .thinking(let block): return block.type
        case .document: return "document"
        case .other(let fields): return fields["type"]?.stringValue ?? ""
        }
    }

    /// A `text` block.
    public struct Text: Sendable, Hashable {
        /// The text.
        public var text: String
        /// Members the type does not model (`cache_control`, `citations`, …), written back as they came.
        public var unknownFields: [String: JSONValue]

        /// A text block.
        public init(text: String, unknownFields: [String: JSONValue] = [:]) {
            self.text = text
            self.unknownFields = unknownFields
        }

        static let knownKeys: Set<String> = ["type", "text"]
    }

    /// An `image` block.
    public struct Image: Sendable, Hashable {
        /// Where the image is.
        public var source: ImageSource
        /// Members the type does not model (`cache_control`, `citations`, …), written back as they came.
        public var unknownFields: [String: JSONValue]

        /// An image block.
        public init(source: ImageSource, unknownFields: [String: JSONValue] = [:]) {
            self.source = source
            self.unknownFields = unknownFields
        }

        static let knownKeys: Set<String> = ["type", "source"]
    }

    /// Where an image's bytes are: inline base64, a URL, or a source type the gateway does not convert
    /// (`file`, kept whole).
    public enum ImageSource: Sendable, Hashable {
        case base64(mediaType: String, data: String)
        case url(String)
        case other([String: JSONValue])
    }

    /// A `tool_use` block: the model calls tool `name` with `input`.
    public struct ToolUse: Sendable, Hashable {
        /// The call's id, `toolu_…`; the client's `tool_result` names it.
        public var id: String
        /// The tool called.
        public var name: String
        /// The arguments, as a JSON object.
        public var input: JSONValue
        /// Members the type does not model (`cache_control`, `citations`, …), written back as they came.
        public var unknownFields: [String: JSONValue]

        /// A tool call.
        public init(id: String, name: String, input: JSONValue, unknownFields: [String: JSONValue] = [:]) {
            self.id = id
            self.name = name
            self.input = input
            self.unknownFields = unknownFields
        }

        static let knownKeys: Set<String> = ["type", "id", "name", "input"]
    }

    /// A `tool_result` block: the client's answer to the `tool_use` block with id `toolUseID`.
    public struct ToolResult: Sendable, Hashable {
        /// The id of the `tool_use` block this answers.
        public var toolUseID: String
        /// A string, blocks (text, images, documents), or absent.
        public var content: ToolResultContent?
        /// Set when the tool failed; the content then says how.
        public var isError: Bool?
        /// Members the type does not model (`cache_control`, `citations`, …), written back as they came.
        public var unknownFields: [String: JSONValue]

        /// A tool result.
        public init(toolUseID: String, content: ToolResultContent? = nil, isError: Bool? = nil,
                    unknownFields: [String: JSONValue] = [:]) {
            self.toolUseID = toolUseID
            self.content = content
            self.isError = isError
            self.unknownFields = unknownFields
        }

        static let knownKeys: Set<String> = ["type", "tool_use_id", "content", "is_error"]
    }

    /// A tool result's content: a plain string or a list of blocks.
    public enum ToolResultContent: Sendable, Hashable {
        case text(String)
        case blocks([AnthropicContentBlock])
    }
}

extension AnthropicContentBlock: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        let type = try c.decode(String.self, "type")
        switch type {
        case "text":
            self = .text(Text(text: try c.decode(String.self, "text"),
                              unknownFields: try c.decodeUnknownFields(excluding: Text.knownKeys)))
        case "image":
            self = .image(Image(source: try c.decode(ImageSource.self, "source"),
                                unknownFields: try c.decodeUnknownFields(excluding: Image.knownKeys)))
        case "tool_use":
            self = .toolUse(ToolUse(
                id: try c.decode(String.self, "id"), name: try c.decode(String.self, "name"),
                input: try c.decodeIfPresent(JSONValue.self, "input") ?? [:],
                unknownFields: try c.decodeUnknownFields(excluding: ToolUse.knownKeys)))
        case "tool_result":
            self = .toolResult(ToolResult(
                toolUseID: try c.decode(String.self, "tool_use_id"),
                content: try c.decodeIfPresent(ToolResultContent.self, "content"),
                isError: try c.decodeIfPresent(Bool.self, "is_error"),
                unknownFields: try c.decodeUnknownFields(excluding: ToolResult.knownKeys)))
        case "thinking", "redacted_thinking":
            self = .thinking(try ThinkingBlock(from: decoder))
        case "document":
            self = .document(try [String: JSONValue](from: decoder))
        default:
            self = .other(try [String: JSONValue](from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        switch self {
        case .text(let block):
            try c.encode("text", "type")
            try c.encode(block.text, "text")
            try c.encodeUnknownFields(block.unknownFields, excluding: Text.knownKeys)
        case .image(let block):
            try c.encode("image", "type")
            try c.encode(block.source, "source")
            try c.encodeUnknownFields(block.unknownFields, excluding: Image.knownKeys)
        case .toolUse(let block):
            try c.encode("tool_use", "type")
            try c.encode(block.id, "id")
            try c.encode(block.name, "name")
            try c.encode(block.input, "input")
            try c.encodeUnknownFields(block.unknownFields, excluding: ToolUse.knownKeys)
        case .toolResult(let block):
            try c.encode("tool_result", "type")
            try c.encode(block.toolUseID, "tool_use_id")
            try c.encodeIfPresent(block.content, "content")
            try c.encodeIfPresent(block.isError, "is_error")
            try c.encodeUnknownFields(block.unknownFields, excluding: ToolResult.knownKeys)
        case .thinking(let block):
            try c.encodeUnknownFields(block.fields, excluding: [])
        case .document(let fields), .other(let fields):
            try c.encodeUnknownFields(fields, excluding: [])
        }
    }
}

extension AnthropicContentBlock.ImageSource: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        switch try c.decode(String.self, "type") {
        case "base64":
            self = .base64(mediaType: try c.decode(String.self, "media_type"), data: try c.decode(String.self, "data"))
        case "url":
            self = .url(try c.decode(String.self, "url"))
        default:
            self = .other(try [String: JSONValue](from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        switch self {
        case .base64(let mediaType, let data):
            try c.encode("base64", "type")
            try c.encode(mediaType, "media_type")
            try c.encode(data, "data")
        case .url(let url):
            try c.encode("url", "type")
            try c.encode(url, "url")
        case .other(let fields):
            try c.encodeUnknownFields(fields, excluding: [])
        }
    }
}

extension AnthropicContentBlock.ToolResultContent: Codable {
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
