import NIOCore

/// An Anthropic Messages API request as the server's `/v1/messages` route hands it to the gateway: the
/// client's bytes, plus the Anthropic headers that belong with them.
///
/// Anthropic-format providers forward it byte for byte with only `model` replaced (see
/// ``ChatModelProvider/forwardsMessages(_:)``); every other provider gets it translated by
/// ``AnthropicIngress/chatRequest(_:for:)``.
public struct MessagesCall: Sendable {
    /// The client's body, scanned.
    public var wire: WireMessagesRequest
    /// The client's `anthropic-version` header, forwarded to Anthropic-format upstreams.
    public var anthropicVersion: String?
    /// The client's `anthropic-beta` header, forwarded to Anthropic-format upstreams: betas change what
    /// the upstream accepts and answers, so they must reach it.
    public var anthropicBeta: String?

    public init(wire: WireMessagesRequest, anthropicVersion: String? = nil, anthropicBeta: String? = nil) {
        self.wire = wire
        self.anthropicVersion = anthropicVersion
        self.anthropicBeta = anthropicBeta
    }
}

/// A part of an Anthropic Messages API answer relayed as the upstream sent it (a passthrough call): the
/// bytes exactly as they arrived, so that the client gets every event in order with nothing added or
/// dropped, and what the gateway read from them for the record.
public struct RelayedMessagesPart: Sendable, Hashable {
    /// The upstream's bytes: a whole response body, or a part of its event stream as it came off the
    /// network (possibly several events, or part of one).
    public var bytes: ByteBuffer
    /// Whether ``bytes`` belong to an event stream.
    public var isEventStream: Bool
    /// The id, model, usage and error read from the events that end in this part (or from the body).
    public var summary: AnthropicWireSummary?
    /// Whether this part completes the answer: it holds the body, or the stream's `message_stop` or
    /// `error` event. The relay finishes the call before writing it, so that the record is handed over
    /// before the client has its whole answer.
    public var endsAnswer: Bool

    public init(bytes: ByteBuffer, isEventStream: Bool, summary: AnthropicWireSummary?, endsAnswer: Bool) {
        self.bytes = bytes
        self.isEventStream = isEventStream
        self.summary = summary
        self.endsAnswer = endsAnswer
    }
}
