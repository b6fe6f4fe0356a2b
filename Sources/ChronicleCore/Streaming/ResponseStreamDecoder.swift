import AsyncHTTPClient
import NIOCore

/// Turns a provider's streamed response body into chat events, whatever its framing (SSE, NDJSON,
/// AWS event-stream). One decoder per response.
protocol ResponseStreamDecoder: Sendable {
    /// Appends the events that `bytes`, the next part of the body, completes. Events appended before a
    /// throw stay in `events` (an upstream error after a chunk in the same read must not swallow the chunk).
    mutating func decode(_ bytes: ByteBufferView, into events: inout [ChatStreamEvent]) throws(ProviderError)
    /// Appends the events due when the body ends (usually the `responseInfo`); throws if it ended too early.
    mutating func finish(into events: inout [ChatStreamEvent]) throws(ProviderError)
}

extension ChatEventStream {
    /// A pull-based stream over a response body: a part is read only when the consumer wants the next
    /// event, so buffering stays bounded and dropping the stream cancels the upstream request.
    static func decoding(_ response: UpstreamResponse, idleTimeout: Duration,
                         decoder: some ResponseStreamDecoder) -> ChatEventStream {
        ChatEventStream(producer: {
            // The reader, not the response the stream keeps, ties the upstream request to this iteration:
            // a consumer that stops part-way cancels it at once.
            let body = response.body.reader()
            var decoder = decoder
            var pending: [ChatStreamEvent] = []
            var pendingIndex = 0
            var finished = false
            var failure: ProviderError?
            let next: () async throws -> ChatStreamEvent? = {
                while true {
                    if pendingIndex < pending.count {
                        defer { pendingIndex += 1 }
                        return pending[pendingIndex]
                    }
                    pending.removeAll(keepingCapacity: true)
                    pendingIndex = 0
                    // Events decoded before a failure go out first, then the failure.
                    if let failure { throw failure }
                    if finished { return nil }
                    do throws(ProviderError) {
                        if let buffer = try await body.next(idleTimeout: idleTimeout) {
                            try decoder.decode(buffer.readableBytesView, into: &pending)
                        } else {
                            finished = true
                            try decoder.finish(into: &pending)
                        }
                    } catch {
                        failure = error
                    }
                }
            }
            // Both closures share the captured state: what was decoded from the last read and not yet handed out.
            return Producer(next: next, hasReadyEvent: { pendingIndex < pending.count })
        }, abort: {
            response.body.abort()
        })
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

    mutating func decode(_ bytes: ByteBufferView, into events: inout [ChatStreamEvent]) throws(ProviderError) {
        let parsed: [ServerSentEvent]
        do {
            parsed = try parser.parse(bytes)
        } catch {
            throw ProviderError(kind: .parsingResponse, message: "A streamed event is too large")
        }
        for event in parsed {
            if let converted = try handler.handle(event) { events.append(converted) }
        }
    }

    mutating func finish(into events: inout [ChatStreamEvent]) throws(ProviderError) {
        for event in parser.finish() {
            if let converted = try handler.handle(event) { events.append(converted) }
        }
        events += try handler.finish()
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
