/// One event of an Anthropic Messages API stream.
///
/// A valid stream is `message_start`, then for each content block `content_block_start`, its
/// `content_block_delta`s and `content_block_stop` (blocks numbered from 0 in the order they start), then
/// `message_delta` (stop reason and output usage) and `message_stop`. `ping` may come anywhere; `error`
/// ends a stream that failed after it started.
public enum AnthropicStreamEvent: Sendable, Hashable {
    /// The message with no content yet: id, model, and input usage when known.
    case messageStart(AnthropicMessagesResponse)
    /// A block opens; text starts empty, a tool call with empty input, thinking with empty text.
    case contentBlockStart(index: Int, block: AnthropicContentBlock)
    case contentBlockDelta(index: Int, delta: Delta)
    case contentBlockStop(index: Int)
    /// The stop reason and the final usage (output tokens always, input tokens when known).
    case messageDelta(stopReason: String?, stopSequence: String?, usage: AnthropicUsage)
    case messageStop
    case ping
    /// A failure after the stream started.
    case error(AnthropicError)
    /// An event type this version does not model, kept whole.
    case other(type: String, data: JSONValue)

    /// A piece of a content block.
    public enum Delta: Sendable, Hashable {
        case text(String)
        /// A fragment of a tool call's input JSON; the fragments joined are the input.
        case inputJSON(String)
        case thinking(String)
        /// A thinking block's signature, its last part.
        case signature(String)
        /// A delta type this version does not model (`citations_delta`, …), kept whole.
        case other([String: JSONValue])
    }

    /// The event's `type`, which is also its SSE event name.
    public var type: String {
        switch self {
        case .messageStart: return "message_start"
        case .contentBlockStart: return "content_block_start"
        case .contentBlockDelta: return "content_block_delta"
        case .contentBlockStop: return "content_block_stop"
        case .messageDelta: return "message_delta"
        case .messageStop: return "message_stop"
        case .ping: return "ping"
        case .error: return "error"
        case .other(let type, _): return type
        }
    }

    /// The event as Server-Sent Events bytes: `event: <type>`, `data: <json>`, and a blank line.
    public func serverSentEvent() throws -> [UInt8] {
        var bytes = Array("event: \(type)\ndata: ".utf8)
        bytes += try JSONCoding.encodeBytes(self)
        bytes += Array("\n\n".utf8)
        return bytes
    }
}

extension AnthropicStreamEvent: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        let type = try c.decode(String.self, "type")
        switch type {
        case "message_start":
            self = .messageStart(try c.decode(AnthropicMessagesResponse.self, "message"))
        case "content_block_start":
            self = .contentBlockStart(index: try c.decodeIfPresent(Int.self, "index") ?? 0,
                                      block: try c.decode(AnthropicContentBlock.self, "content_block"))
        case "content_block_delta":
            self = .contentBlockDelta(index: try c.decodeIfPresent(Int.self, "index") ?? 0,
                                      delta: try c.decode(Delta.self, "delta"))
        case "content_block_stop":
            self = .contentBlockStop(index: try c.decodeIfPresent(Int.self, "index") ?? 0)
        case "message_delta":
            let delta = try c.decodeIfPresent(JSONValue.self, "delta")
            self = .messageDelta(stopReason: delta?["stop_reason"]?.stringValue,
                                 stopSequence: delta?["stop_sequence"]?.stringValue,
                                 usage: try c.decodeIfPresent(AnthropicUsage.self, "usage") ?? AnthropicUsage())
        case "message_stop":
            self = .messageStop
        case "ping":
            self = .ping
        case "error":
            self = .error(try c.decodeIfPresent(AnthropicError.self, "error")
                ?? AnthropicError(type: "api_error", message: "The stream failed"))
        default:
            self = .other(type: type, data: try JSONValue(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if case .other(_, let data) = self {
            try data.encode(to: encoder)
            return
        }
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(type, "type")
        switch self {
        case .messageStart(let message):
            try c.encode(message, "message")
        case .contentBlockStart(let index, let block):
            try c.encode(index, "index")
            try c.encode(block, "content_block")
        case .contentBlockDelta(let index, let delta):
            try c.encode(index, "index")
            try c.encode(delta, "delta")
        case .contentBlockStop(let index):
            try c.encode(index, "index")
        case .messageDelta(let stopReason, let stopSequence, let usage):
            try c.encode(["stop_reason": stopReason.map(JSONValue.string) ?? .null,
                          "stop_sequence": stopSequence.map(JSONValue.string) ?? .null] as JSONValue, "delta")
            try c.encode(usage, "usage")
        case .error(let error):
            try c.encode(error, "error")
        case .messageStop, .ping, .other:
            break
        }
    }
}

extension AnthropicStreamEvent.Delta: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        switch try c.decodeIfPresent(String.self, "type") {
        case "text_delta"?: self = .text(try c.decodeIfPresent(String.self, "text") ?? "")
        case "input_json_delta"?: self = .inputJSON(try c.decodeIfPresent(String.self, "partial_json") ?? "")
        case "thinking_delta"?: self = .thinking(try c.decodeIfPresent(String.self, "thinking") ?? "")
        case "signature_delta"?: self = .signature(try c.decodeIfPresent(String.self, "signature") ?? "")
        default: self = .other(try [String: JSONValue](from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        switch self {
        case .text(let text):
            try c.encode("text_delta", "type")
            try c.encode(text, "text")
        case .inputJSON(let json):
            try c.encode("input_json_delta", "type")
            try c.encode(json, "partial_json")
        case .thinking(let text):
            try c.encode("thinking_delta", "type")
            try c.encode(text, "thinking")
        case .signature(let signature):
            try c.encode("signature_delta", "type")
            try c.encode(signature, "signature")
        case .other(let fields):
            try c.encodeUnknownFields(fields, excluding: [])
        }
    }
}
