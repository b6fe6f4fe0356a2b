import NIOCore

/// What the gateway reads from an answer it relays in the client's own format (Anthropic Messages, OpenAI
/// Responses) without decoding it: id, model, usage and an error, from the few events that carry them.
public protocol RelayedWireSummary: Sendable, Hashable {
    /// The summary of one streamed event's `data`, or `nil` for an event that carries nothing the record
    /// needs (read by its `event:` name alone).
    static func event(named name: String?, data: [UInt8]) -> Self?
    /// Whether an event of this `event:` name ends the answer.
    static func endsAnswer(_ name: String?) -> Bool
    /// Merges a later reading into this one.
    mutating func merge(_ later: Self)
    var id: String? { get }
    var model: String? { get }
    /// The usage in the gateway's terms, as far as it is known.
    var chatUsage: Usage? { get }
    /// The upstream's reported error as the gateway's, if it reported one.
    var providerError: ProviderError? { get }
}

/// A part of an answer relayed as the upstream sent it (a passthrough call): the bytes exactly as they
/// arrived, so that the client gets every event in order with nothing added or dropped, and what the
/// gateway read from them for the record.
public struct RelayedPart<Summary: RelayedWireSummary>: Sendable, Hashable {
    /// The upstream's bytes: a whole response body, or a part of its event stream as it came off the
    /// network (whole events only: see ``ServerSentEventBoundary``).
    public var bytes: ByteBuffer
    /// Whether ``bytes`` belong to an event stream.
    public var isEventStream: Bool
    /// The id, model, usage and error read from the events that end in this part (or from the body).
    public var summary: Summary?
    /// Whether this part completes the answer: it holds the body, or the stream's last event or an error.
    /// The relay finishes the call before writing it, so that the record is handed over before the client
    /// has its whole answer.
    public var endsAnswer: Bool

    public init(bytes: ByteBuffer, isEventStream: Bool, summary: Summary?, endsAnswer: Bool) {
        self.bytes = bytes
        self.isEventStream = isEventStream
        self.summary = summary
        self.endsAnswer = endsAnswer
    }
}

/// A relayed answer as the call keeps it for its record: the bytes of its parts, and what was read from them.
struct RelayedAnswerBytes<Summary: RelayedWireSummary>: Sendable {
    private(set) var bytes: [UInt8] = []
    private(set) var parts = 0
    private(set) var isEventStream = false
    private var summary: Summary?

    init() {}

    mutating func add(_ part: RelayedPart<Summary>) {
        bytes.append(contentsOf: part.bytes.readableBytesView)
        parts += 1
        isEventStream = part.isEventStream
        if let read = part.summary {
            if summary == nil { summary = read } else { summary?.merge(read) }
        }
    }

    /// What the record reads of the answer before it is decoded: id, model and usage.
    var chatSummary: ChatResponse {
        var response = ChatResponse(id: summary?.id, model: summary?.model)
        response.usage = summary?.chatUsage
        return response
    }
}

/// Relays an event stream in the client's own format as the bytes that came off the network, each part as
/// one chat stream event (made by `event`), while reading on the side what the record needs from the
/// events it completes. The bytes are never re-framed, so the client gets every event the upstream sent, in
/// order, exactly as sent; each part ends between events, so that an error added after a failure is an
/// event of its own.
struct RelayedEventStreamDecoder<Summary: RelayedWireSummary>: ResponseStreamDecoder {
    private var parser = ServerSentEventParser()
    private var boundary = ServerSentEventBoundary()
    private var model: String?
    private let event: @Sendable (RelayedPart<Summary>) -> ChatStreamEvent

    init(event: @escaping @Sendable (RelayedPart<Summary>) -> ChatStreamEvent) {
        self.event = event
    }

    mutating func decode(_ bytes: ByteBufferView, into events: inout [ChatStreamEvent]) throws(ProviderError) {
        let parsed: [ServerSentEvent]
        let complete: ByteBuffer?
        do {
            parsed = try parser.parse(bytes)
            complete = try boundary.complete(bytes)
        } catch {
            throw ProviderError(kind: .parsingResponse, message: "A streamed event is too large")
        }
        var summary: Summary?
        var endsAnswer = false
        for sent in parsed {
            if Summary.endsAnswer(sent.event) { endsAnswer = true }
            guard let read = Summary.event(named: sent.event, data: sent.data) else { continue }
            if read.providerError != nil { endsAnswer = true }
            if summary == nil { summary = read } else { summary?.merge(read) }
        }
        if model == nil { model = summary?.model }
        guard let complete else { return }
        events.append(event(RelayedPart(bytes: complete, isEventStream: true, summary: summary, endsAnswer: endsAnswer)))
    }

    mutating func finish(into events: inout [ChatStreamEvent]) throws(ProviderError) {
        if let rest = boundary.remainder() {
            events.append(event(RelayedPart(bytes: rest, isEventStream: true, summary: nil, endsAnswer: false)))
        }
        events.append(.responseInfo(ResponseInfo(model: model ?? "")))
    }
}
