import ChronicleCore
import Hummingbird
import Logging
import NIOCore

/// Reads a Messages call's answer for the route: relays an Anthropic-format upstream's bytes, or
/// translates another provider's chunks with ``AnthropicStreamTranslator``. Pulls the stream and says
/// what to write; the writing is ``Relay``'s.
struct MessagesAnswer: SteppedAnswer {
    let stream: ChatStream
    let requestedModel: String
    var translator: AnthropicStreamTranslator
    /// Whether the upstream's own Anthropic bytes are relayed: nothing is then added to them but an error
    /// event when the upstream connection fails.
    var relaysUpstream = false
    /// Whether the relayed upstream already sent the answer's end (`message_stop` or `error`): a failure of
    /// its connection after that adds no error event to an answer the client has whole.
    var relayedAnswerEnded = false
    /// An error event the relayed upstream sent: written as sent, and the call recorded as failed with it.
    var relayedFailure: ProviderError?
    /// The stream's iterator, made on the first read (the stream is single-pass).
    private var iterator: ChatStream.AsyncIterator?

    init(stream: ChatStream, requestedModel: String) {
        self.stream = stream
        self.requestedModel = requestedModel
        self.translator = AnthropicStreamTranslator(requestedModel: requestedModel)
    }

    typealias Step = AnswerStep
    typealias Relay = AnswerRelay<Self>

    /// The next step, counting `waited` (writing the previous step) as the client's time.
    mutating func next(afterWaiting waited: Duration) async throws -> Step {
        if iterator == nil { iterator = stream.makeAsyncIterator() }
        while true {
            let event: ChatStreamEvent?
            do {
                event = try await iterator?.next(afterWaiting: waited)
            } catch let error as ProviderError {
                guard error.kind != .cancelled else { throw error }
                let events: [AnthropicStreamEvent]
                if relaysUpstream {
                    events = relayedAnswerEnded ? [] : [.error(AnthropicError(error))]
                } else {
                    events = translator.fail(AnthropicError(error))
                }
                return .end(closing: Self.encode(events), failure: error)
            }
            switch event {
            case nil:
                return .end(closing: relaysUpstream ? ByteBuffer() : Self.encode(translator.finish()), failure: nil)
            case .requestInfo?, .responseInfo?, .embeddings?, .relayedResponses?:
                continue
            case .relayedMessages(let part)?:
                relaysUpstream = true
                if let error = part.summary?.providerError { relayedFailure = error }
                if part.endsAnswer { relayedAnswerEnded = true }
                return part.endsAnswer ? .last(part.bytes) : .write(part.bytes)
            case .chunk(let chunk)?:
                let events = translator.receive(chunk)
                if events.isEmpty { continue }
                return .write(Self.encode(events))
            case .single(let response)?:
                let events = translator.receive(ChatChunk(response: try response.decoded()))
                if events.isEmpty { continue }
                return .write(Self.encode(events))
            }
        }
    }

    /// The whole non-streamed answer: the upstream's body as it came, or the translated message.
    mutating func wholeBody() async throws -> ByteBuffer {
        if iterator == nil { iterator = stream.makeAsyncIterator() }
        var collector = ResponseCollector()
        while let event = try await iterator?.next(afterWaiting: .zero) {
            switch event {
            case .relayedMessages(let part):
                if let error = part.summary?.providerError { throw error }
                // Drained so that the upstream's end (and its metadata) is seen before the call finishes.
                while try await iterator?.next(afterWaiting: .zero) != nil {}
                return part.bytes
            case .chunk(let chunk): collector.add(chunk)
            case .single(let response): collector.add(response)
            case .requestInfo, .responseInfo, .embeddings, .relayedResponses: continue
            }
        }
        do {
            let message = try AnthropicIngress.response(collector.collected, requestedModel: requestedModel)
            return ByteBuffer(bytes: try JSONCoding.encodeBytes(message))
        } catch let error as AnthropicError {
            throw ProviderError(kind: .transformingResponse, message: error.message)
        }
    }

    static func encode(_ events: [AnthropicStreamEvent]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for event in events {
            // An event that cannot be encoded is left out rather than sent broken.
            guard let bytes = try? event.serverSentEvent() else { continue }
            buffer.writeBytes(bytes)
        }
        return buffer
    }
}
