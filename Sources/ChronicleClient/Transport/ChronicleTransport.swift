import Foundation

/// How a ``ChronicleClient`` reaches a gateway: over HTTP (``HTTPTransport``), or in process
/// (`EmbeddedTransport` in the ChronicleEmbedded module). Bodies are the gateway's JSON, so that every
/// transport carries exactly what the HTTP API carries.
public protocol ChronicleTransport: Sendable {
    /// Sends a chat request (JSON body, `x-chronicle-*` headers) and returns the whole answer.
    /// - Throws: ``ChronicleError`` for an error answer or a failed connection.
    func chat(_ request: TransportRequest) async throws -> TransportReply

    /// Sends a streamed chat request. Returns once the answer has started; an error before that is thrown.
    func streamChat(_ request: TransportRequest) async throws -> TransportStream

    /// Delivers one batch of events (`{"events":[...]}`) and says whether to retry it.
    func sendEvents(_ body: [UInt8]) async -> EventDeliveryOutcome

    /// Releases what the transport holds (connections); called by ``ChronicleClient/shutdown(timeout:)``.
    func shutdown() async
}

extension ChronicleTransport {
    public func shutdown() async {}
}

/// A chat request as every transport receives it.
public struct TransportRequest: Sendable {
    /// The JSON body: the chat request with Chronicle's options beside it.
    public var body: [UInt8]
    /// `x-chronicle-*` headers (lowercase names), such as the enclosing run's and step's ids.
    public var headers: [(name: String, value: String)]

    public init(body: [UInt8], headers: [(name: String, value: String)]) {
        self.body = body
        self.headers = headers
    }

    /// The value of header `name` (lowercase), if present.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}

/// A whole answer: its JSON body and the call's id.
public struct TransportReply: Sendable {
    public var body: [UInt8]
    public var callID: UUID?

    public init(body: [UInt8], callID: UUID?) {
        self.body = body
        self.callID = callID
    }
}

/// A streamed answer: each element is one chunk's JSON; an error event ends it with a ``ChronicleError``.
public struct TransportStream: Sendable {
    public var callID: UUID?
    public var events: AsyncThrowingStream<[UInt8], any Error>

    public init(callID: UUID?, events: AsyncThrowingStream<[UInt8], any Error>) {
        self.callID = callID
        self.events = events
    }
}

/// What became of a batch of events.
public enum EventDeliveryOutcome: Sendable, Hashable {
    /// Accepted.
    case delivered
    /// Not delivered, for a reason that may pass (the gateway is down, restarting or overloaded): retry.
    case retryable(String)
    /// Refused for good (a malformed event, recording switched off): retrying cannot help.
    case rejected(String)
}
