import ChronicleCore
import Hummingbird
import Logging
import NIOCore

/// Reads a Messages call's answer for the route: relays an Anthropic-format upstream's bytes, or
/// translates another provider's chunks with ``AnthropicStreamTranslator``. Pulls the stream and says
/// what to write; the writing is ``Relay``'s.
struct MessagesAnswer {
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

    /// What to write for one step of the stream.
    enum Step: Sendable {
        /// Bytes to write now.
        case write(ByteBuffer)
        /// The upstream's bytes that end the answer: written after the call is finished.
        case last(ByteBuffer)
        /// The stream ended, with `failure` if it failed; `closing` (possibly empty) is written after the
        /// call is finished.
        case end(closing: ByteBuffer, failure: ProviderError?)
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

    /// The answer, handed from the route to the task that reads it and then to the response body's writer.
    ///
    /// `@unchecked Sendable`: the stream's iterator inside is not `Sendable`, but it is only ever used by
    /// one task at a time, in sequence. The route's task awaits the child task that reads the first step
    /// (or the whole body) and touches nothing meanwhile; once it returns the response it never touches
    /// this again, and only the body writer's single task reads it from then on.
    final class Relay: @unchecked Sendable {
        private var answer: MessagesAnswer

        init(_ answer: MessagesAnswer) {
            self.answer = answer
        }

        /// The first step, read before the response head: a failure now throws, to be answered with a status.
        func firstStep() async throws -> Step {
            let step = try await answer.next(afterWaiting: .zero)
            if case .end(_, let failure?) = step { throw failure }
            return step
        }

        func wholeBody() async throws -> ByteBuffer {
            try await answer.wholeBody()
        }

        /// Writes the answer from `first` on as server-sent events. The call is finished before the last
        /// write, so that its record reaches the sink before the client has the whole answer.
        func relay(from first: Step, to writer: inout any ResponseBodyWriter, logger: Logger) async throws {
            let call = answer.stream.call
            var step = first
            var held: ByteBuffer?
            while true {
                switch step {
                case .write(let bytes):
                    if let earlier = held {
                        // Something followed what looked like the end: it was not the last after all.
                        held = nil
                        _ = try await ServerSentEvents.write(earlier, to: &writer, call: call)
                    }
                    let waited = try await ServerSentEvents.write(bytes, to: &writer, call: call)
                    step = try await next(afterWaiting: waited, call: call)
                case .last(let bytes):
                    if let earlier = held { _ = try await ServerSentEvents.write(earlier, to: &writer, call: call) }
                    held = bytes
                    step = try await next(afterWaiting: .zero, call: call)
                case .end(let closing, let failure):
                    if let failure {
                        logger.warning("stream failed", metadata: ["error.kind": "\(failure.kind.rawValue)"])
                    }
                    if let relayed = answer.relayedFailure { call.finish(.failed(relayed)) } else { call.finish() }
                    var last = held ?? ByteBuffer()
                    last.writeImmutableBuffer(closing)
                    if last.readableBytes > 0 { _ = try await ServerSentEvents.write(last, to: &writer, call: call) }
                    return
                }
            }
        }

        private func next(afterWaiting waited: Duration, call: GatewayCall) async throws -> Step {
            do {
                return try await answer.next(afterWaiting: waited)
            } catch {
                // The client went away and the upstream was aborted: the call ends as cancelled.
                call.finish(.ending(error))
                throw error
            }
        }
    }
}
