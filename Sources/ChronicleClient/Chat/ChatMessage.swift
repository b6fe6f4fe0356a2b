import Foundation

/// One message of a conversation, in the OpenAI chat format.
///
/// ```swift
/// let messages: [ChatMessage] = [
///     .system("You answer in one sentence."),
///     .user("What is in this picture?", images: [.url("https://example.com/cat.png")]),
/// ]
/// ```
public struct ChatMessage: Sendable, Hashable, Codable {
    /// Who speaks.
    public var role: Role
    /// Text, or text and images; `nil` on an assistant message that only calls tools.
    public var content: MessageContent?
    /// The speaker's name, for providers that take one.
    public var name: String?
    /// The tools an assistant message asks to call.
    public var toolCalls: [ToolCall]?
    /// On a `tool` message: the call this message answers.
    public var toolCallID: String?

    public init(role: Role, content: MessageContent?, name: String? = nil, toolCalls: [ToolCall]? = nil,
                toolCallID: String? = nil) {
        self.role = role
        self.content = content
        self.name = name
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
    }

    /// A system prompt.
    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, content: .text(text)) }

    /// A user message, with images after the text when given.
    public static func user(_ text: String, images: [ImageInput] = []) -> ChatMessage {
        guard !images.isEmpty else { return ChatMessage(role: .user, content: .text(text)) }
        return ChatMessage(role: .user, content: .parts([.text(text)] + images.map(ContentPart.image)))
    }

    /// An assistant message: its text, or the tool calls it made (to replay a conversation).
    public static func assistant(_ text: String?, toolCalls: [ToolCall]? = nil) -> ChatMessage {
        ChatMessage(role: .assistant, content: text.map(MessageContent.text), toolCalls: toolCalls)
    }

    /// The result of a tool call, answering the assistant's call `callID`.
    public static func tool(callID: String, content: String) -> ChatMessage {
        ChatMessage(role: .tool, content: .text(content), toolCallID: callID)
    }

    /// The message's text: its string content, or its text parts joined.
    public var text: String? {
        switch content {
        case .text(let text): return text
        case .parts(let parts):
            let texts = parts.compactMap { if case .text(let text) = $0 { return text } else { return nil } }
            return texts.isEmpty ? nil : texts.joined()
        case nil: return nil
        }
    }

    enum CodingKeys: String, CodingKey {
        case role, content, name
        case toolCalls = "tool_calls"
        case toolCallID = "tool_call_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decodeIfPresent(Role.self, forKey: .role) ?? .assistant
        content = try c.decodeIfPresent(MessageContent.self, forKey: .content)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        toolCalls = try c.decodeIfPresent([ToolCall].self, forKey: .toolCalls)
        toolCallID = try c.decodeIfPresent(String.self, forKey: .toolCallID)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        // An assistant message that only calls tools still carries `content: null`, as OpenAI expects.
        if let content { try c.encode(content, forKey: .content) } else { try c.encodeNil(forKey: .content) }
        try c.encodeIfPresent(name, forKey: .name)
        try c.encodeIfPresent(toolCalls, forKey: .toolCalls)
        try c.encodeIfPresent(toolCallID, forKey: .toolCallID)
    }
}

/// Who speaks: `system`, `user`, `assistant`, `tool`, or any other role a provider accepts.
public struct Role: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static let system: Role = "system"
    public static let developer: Role = "developer"
    public static let user: Role = "user"
    public static let assistant: Role = "assistant"
    public static let tool: Role = "tool"
}

/// A message's content: one string, or parts (text and images).
public enum MessageContent: Sendable, Hashable, Codable {
    case text(String)
    case parts([ContentPart])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([ContentPart].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .parts(let parts): try container.encode(parts)
        }
    }
}

/// An image given to a model: a URL it can fetch, or the bytes themselves (sent as a `data:` URL).
public struct ImageInput: Sendable, Hashable {
    /// An `https:` or `data:` URL.
    public var url: String
    /// `low`, `high` or `auto`; providers that have no such setting ignore it.
    public var detail: String?

    public init(url: String, detail: String? = nil) {
        self.url = url
        self.detail = detail
    }

    public static func url(_ url: String, detail: String? = nil) -> ImageInput { ImageInput(url: url, detail: detail) }

    /// Image bytes, base64-encoded into a `data:` URL.
    public static func data(_ data: Data, mimeType: String, detail: String? = nil) -> ImageInput {
        ImageInput(url: "data:\(mimeType);base64,\(data.base64EncodedString())", detail: detail)
    }
}

/// One part of a message's content.
public enum ContentPart: Sendable, Hashable, Codable {
    case text(String)
    case image(ImageInput)
    /// A part of another type, kept as it came.
    case other(JSONValue)

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        switch value["type"]?.stringValue {
        case "text":
            self = .text(value["text"]?.stringValue ?? "")
        case "image_url":
            let image = value["image_url"]
            self = .image(ImageInput(url: image?["url"]?.stringValue ?? "", detail: image?["detail"]?.stringValue))
        default:
            self = .other(value)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        let value: JSONValue
        switch self {
        case .text(let text):
            value = ["type": "text", "text": .string(text)]
        case .image(let image):
            var imageURL: [String: JSONValue] = ["url": .string(image.url)]
            imageURL["detail"] = image.detail.map(JSONValue.string)
            value = ["type": "image_url", "image_url": .object(imageURL)]
        case .other(let other):
            value = other
        }
        try value.encode(to: encoder)
    }
}
