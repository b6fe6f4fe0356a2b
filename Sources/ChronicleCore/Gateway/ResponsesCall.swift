import NIOCore

/// An OpenAI Responses API request as the server's `/v1/responses` route hands it to the gateway: the
/// client's bytes, scanned.
///
/// Providers that serve the Responses API themselves (OpenAI, Azure OpenAI) forward it byte for byte with
/// only `model` replaced (see ``ChatModelProvider/forwardsResponses(_:)``); every other provider gets it
/// translated into a chat request by ``ResponsesIngress/chatRequest(_:for:)``.
public struct ResponsesCall: Sendable {
    /// The client's body, scanned.
    public var wire: WireResponsesRequest

    public init(wire: WireResponsesRequest) {
        self.wire = wire
    }
}

/// A part of a Responses API answer relayed as the upstream sent it (a passthrough call): the bytes exactly
/// as they arrived, so that the client gets every event in order with nothing added or dropped, and what
/// the gateway read from them for the record.
public struct RelayedResponsesPart: Sendable, Hashable {
    /// The upstream's bytes: a whole response body, or a part of its event stream as it came off the
    /// network (possibly several events, or part of one).
    public var bytes: ByteBuffer
    /// Whether ``bytes`` belong to an event stream.
    public var isEventStream: Bool
    /// The id, model, usage and error read from the events that end in this part (or from the body).
    public var summary: ResponsesWireSummary?
    /// Whether this part completes the answer: it holds the body, or the stream's `response.completed`,
    /// `response.incomplete`, `response.failed` or `error` event. The relay finishes the call before
    /// writing it, so that the record is handed over before the client has its whole answer.
    public var endsAnswer: Bool

    public init(bytes: ByteBuffer, isEventStream: Bool, summary: ResponsesWireSummary?, endsAnswer: Bool) {
        self.bytes = bytes
        self.isEventStream = isEventStream
        self.summary = summary
        self.endsAnswer = endsAnswer
    }
}
