import AsyncHTTPClient
import NIOCore

/// Turns a provider's streamed response body into chat events, whatever its framing (SSE, NDJSON,
/// AWS event-stream). One decoder per response.
protocol ResponseStreamDecoder: Sendable {
    /// The events that `bytes`, the next part of the body, completes.
    mutating func decode(_ bytes: ByteBufferView) throws(ProviderError) -> [ChatStreamEvent]
    /// The events due when the body ends (usually the `responseInfo`); throws if it ended too early.
    mutating func finish() throws(ProviderError) -> [ChatStreamEvent]
}

extension ChatEventStream {
    /// A pull-based stream over a response body: a part is read only when the consumer wants the next
    /// event, so buffering stays bounded and dropping the stream cancels the upstream request.
    static func decoding(_ response: HTTPClientResponse, clock: any GatewayClock, idleTimeout: Duration,
                         decoder: some ResponseStreamDecoder) -> ChatEventStream {
        ChatEventStream {
            var reader = BodyReader(body: response.body, clock: clock, idleTimeout: idleTimeout)
            var decoder = decoder
            var pending: [ChatStreamEvent] = []
            var pendingIndex = 0
            var finished = false
            return {
                while true {
                    if pendingIndex < pending.count {
                        defer { pendingIndex += 1 }
                        return pending[pendingIndex]
                    }
                    pending.removeAll(keepingCapacity: true)
                    pendingIndex = 0
                    if finished { return nil }
                    if let buffer = try await reader.next() {
                        pending = try decoder.decode(buffer.readableBytesView)
                    } else {
                        finished = true
                        pending = try decoder.finish()
                    }
                }
            }
        }
    }
}

/// Handles the events of a server-sent-event stream, one at a time.
protocol ServerSentEventHandler: Sendable {
    mutating func handle(_ event: ServerSentEvent) throws(ProviderError) -> ChatStreamEvent?
    /// The events due at the end of the stream.
    mutating func finish() throws(ProviderError) -> [ChatStreamEvent]
}

/// SSE framing around a per-event handler.
struct ServerSentEventDecoder<Handler: ServerSentEventHandler>: ResponseStreamDecoder {
    var parser = ServerSentEventParser()
    var handler: Handler

    init(_ handler: Handler) {
        self.handler = handler
    }

    mutating func decode(_ bytes: ByteBufferView) throws(ProviderError) -> [ChatStreamEvent] {
        let events: [ServerSentEvent]
        do {
            events = try parser.parse(bytes)
        } catch {
            throw ProviderError(kind: .parsingResponse, message: "A streamed event is too large")
        }
        var result: [ChatStreamEvent] = []
        for event in events {
            if let converted = try handler.handle(event) { result.append(converted) }
        }
        return result
    }

    mutating func finish() throws(ProviderError) -> [ChatStreamEvent] {
        var result: [ChatStreamEvent] = []
        for event in parser.finish() {
            if let converted = try handler.handle(event) { result.append(converted) }
        }
        return result + (try handler.finish())
    }
}

/// Decodes a streamed event's JSON, or fails with a parsing error that carries the raw data.
func decodeStreamedJSON<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(ProviderError) -> T {
    do {
        return try JSONCoding.decode(type, from: bytes)
    } catch {
        throw ProviderError(kind: .parsingResponse, body: .string(String(decoding: bytes, as: UTF8.self)),
                            message: "Could not parse a streamed event: \(describeDecodingError(error))")
    }
}
