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

/// A part of an Anthropic Messages API answer relayed as the upstream sent it (a passthrough call). Its
/// answer ends with the stream's `message_stop` or `error` event.
public typealias RelayedMessagesPart = RelayedPart<AnthropicWireSummary>
