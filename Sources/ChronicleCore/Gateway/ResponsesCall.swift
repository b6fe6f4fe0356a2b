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

/// A part of a Responses API answer relayed as the upstream sent it (a passthrough call). Its answer ends
/// with the stream's `response.completed`, `response.incomplete`, `response.failed` or `error` event.
public typealias RelayedResponsesPart = RelayedPart<ResponsesWireSummary>
