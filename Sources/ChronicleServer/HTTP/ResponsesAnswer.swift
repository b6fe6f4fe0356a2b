import ChronicleCore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// Reads a Responses call's answer for the route: relays the upstream's bytes when the provider serves the
/// Responses API, or translates another provider's chunks with ``ResponsesStreamTranslator``. Pulls the
/// stream and says what to write; the writing is ``Relay``'s.
struct ResponsesAnswer: SteppedAnswer {
    let stream: ChatStream
    let request: WireResponsesRequest
    /// Made on the first translated event: the request's members it echoes are decoded only then, so a
    /// relayed answer never decodes the request.
    var translator: ResponsesStreamTranslator?
    /// Whether the upstream's own bytes are relayed: nothing is then added to them but an error event when
    /// the upstream connection fails.
    var relaysUpstream = false
    /// Whether the relayed upstream already sent the answer's end: a failure of its connection after that
    /// adds no error event to an answer the client has whole.
    var relayedAnswerEnded = false
    /// An error the relayed upstream sent: written as sent, and the call recorded as failed with it.
    var relayedFailure: ProviderError?
    /// The stream's iterator, made on the first read (the stream is single-pass).
    private var iterator: ChatStream.AsyncIterator?

    init(stream: ChatStream, request: WireResponsesRequest) {
        self.stream = stream
        self.request = request
    }

    typealias Step = AnswerStep
    typealias Relay = AnswerRelay<Self>

    /// The translator, made on first use with the request's members to echo and a fresh response id.
    private mutating func translating() -> ResponsesStreamTranslator {
        if let translator { return translator }
        let echo = (try? JSONCoding.decode(JSONValue.self, from: request.body.readableBytesView))?.objectValue ?? [:]
        let seed = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let made = ResponsesStreamTranslator(echo: echo, requestedModel: request.model, idSeed: seed,
                                             createdAt: Int64(Date().timeIntervalSince1970))
        translator = made
        return made
    }

    private mutating func translate(_ step: (inout ResponsesStreamTranslator) -> [ResponsesStreamEvent])
        -> [ResponsesStreamEvent]
    {
        var current = translating()
        let events = step(&current)
        translator = current
        return events
    }

    /// The next step, counting `waited` (writing the previous step) as the client's time.
    mutating func next(afterWaiting waited: Duration) async throws -> Step {
        if iterator == nil { iterator = stream.makeAsyncIterator() }
        while true {
            let event: ChatStreamEvent?
            do {
                event = try await iterator?.next(afterWaiting: waited)
            } catch let error as ProviderError {
                guard error.kind != .cancelled else { throw error }
                if relaysUpstream {
                    return .end(closing: relayedAnswerEnded ? ByteBuffer() : Self.errorEvent(error), failure: error)
                }
                let events = translate { $0.fail(ResponsesError(relaying: error)) }
                return .end(closing: Self.encode(events), failure: error)
            }
            switch event {
            case nil:
                return .end(closing: relaysUpstream ? ByteBuffer() : Self.encode(translate { $0.finish() }), failure: nil)
            case .requestInfo?, .responseInfo?, .relayedMessages?, .embeddings?:
                continue
            case .relayedResponses(let part)?:
                relaysUpstream = true
                if let error = part.summary?.providerError { relayedFailure = error }
                if part.endsAnswer { relayedAnswerEnded = true }
                return part.endsAnswer ? .last(part.bytes) : .write(part.bytes)
            case .chunk(let chunk)?:
                let events = translate { $0.receive(chunk) }
                if events.isEmpty { continue }
                return .write(Self.encode(events))
            case .single(let response)?:
                let events = translate { $0.receive(ChatChunk(response: (try? response.decoded()) ?? response)) }
                if events.isEmpty { continue }
                return .write(Self.encode(events))
            }
        }
    }

    /// The whole non-streamed answer: the upstream's body as it came, or the translated response.
    mutating func wholeBody() async throws -> ByteBuffer {
        if iterator == nil { iterator = stream.makeAsyncIterator() }
        var collector = ResponseCollector()
        while let event = try await iterator?.next(afterWaiting: .zero) {
            switch event {
            case .relayedResponses(let part):
                if let error = part.summary?.providerError { throw error }
                // Drained so that the upstream's end (and its metadata) is seen before the call finishes.
                while try await iterator?.next(afterWaiting: .zero) != nil {}
                return part.bytes
            case .chunk(let chunk): collector.add(chunk)
            case .single(let response): collector.add(response)
            case .requestInfo, .responseInfo, .relayedMessages, .embeddings: continue
            }
        }
        let collected = collector.collected
        _ = translate { $0.receive(ChatChunk(response: collected)) }
        _ = translate { $0.finish() }
        return ByteBuffer(bytes: try JSONCoding.encodeBytes(translating().response))
    }

    static func encode(_ events: [ResponsesStreamEvent]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for event in events {
            // An event that cannot be encoded is left out rather than sent broken.
            guard let bytes = try? event.serverSentEvent() else { continue }
            buffer.writeBytes(bytes)
        }
        return buffer
    }

    /// An `error` event for a relayed stream whose upstream connection failed before its end. Its
    /// `sequence_number` is 0: the numbering is the upstream's, which the relay does not read.
    static func errorEvent(_ error: ProviderError) -> ByteBuffer {
        let relayed = ResponsesError(relaying: error)
        let event: JSONValue = [
            "type": "error", "code": relayed.code.map(JSONValue.string) ?? .null, "message": .string(relayed.message),
            "param": .null, "sequence_number": 0,
        ]
        var buffer = ByteBuffer(string: "event: error\ndata: ")
        buffer.writeBytes((try? JSONCoding.encodeBytes(event)) ?? Array("{}".utf8))
        buffer.writeString("\n\n")
        return buffer
    }
}
