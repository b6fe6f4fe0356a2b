import ChronicleCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// What to write for one step of a streamed answer.
enum AnswerStep: Sendable {
    /// Bytes to write now.
    case write(ByteBuffer)
    /// The upstream's bytes that end the answer: written after the call is finished.
    case last(ByteBuffer)
    /// The stream ended, with `failure` if it failed; `closing` (possibly empty) is written after the
    /// call is finished.
    case end(closing: ByteBuffer, failure: ProviderError?)
}

/// A front end's reader of a call's answer (Anthropic Messages, OpenAI Responses): it pulls the stream and
/// says what to write, step by step or as one body, relaying an upstream's own bytes or translating.
protocol SteppedAnswer {
    var stream: ChatStream { get }
    /// An error event the relayed upstream sent: the call is recorded as failed with it.
    var relayedFailure: ProviderError? { get }
    /// The next step, counting `waited` (writing the previous step) as the client's time.
    mutating func next(afterWaiting waited: Duration) async throws -> AnswerStep
    /// The whole non-streamed answer.
    mutating func wholeBody() async throws -> ByteBuffer
}

/// An answer handed from the route to the task that reads it and then to the response body's writer, which
/// it writes as server-sent events.
///
/// `@unchecked Sendable`: the stream's iterator inside the answer is not `Sendable`, but it is only ever used
/// by one task at a time, in sequence. The route's task awaits the child task that reads the first step (or
/// the whole body) and touches nothing meanwhile; once it returns the response it never touches this again,
/// and only the body writer's single task reads it from then on.
final class AnswerRelay<Answer: SteppedAnswer>: @unchecked Sendable {
    private var answer: Answer

    init(_ answer: Answer) {
        self.answer = answer
    }

    /// The route's response: the event stream, or the whole body once the call is finished, with the call's
    /// headers (and, for a whole body, its cost).
    func response(streaming: Bool, channel: (any Channel)?, cost: CostTracker?, logger: Logger) async throws
        -> Response
    {
        let call = answer.stream.call
        if streaming {
            // The first events are read before the response head goes out, so that a failure before the
            // answer starts is still an HTTP error status rather than an error event.
            let first = try await ClientDisconnect.cancelling(on: channel) { try await self.firstStep() }
            var headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
            headers.addCallHeaders(call, overhead: call.overhead)
            return ServerSentEvents.response(
                for: answer.stream, headers: headers, watch: channel.flatMap(ClientDisconnect.watch(for:))
            ) { writer in
                try await self.relay(from: first, to: &writer, logger: logger)
            }
        }
        let body = try await ClientDisconnect.cancelling(on: channel) { try await self.wholeBody() }
        // The record goes to the sink before the body is written, as on the chat route.
        let overhead = call.finish()
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.addCallHeaders(call, overhead: overhead)
        headers.addCost(call, prices: cost)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    /// The first step, read before the response head: a failure now throws, to be answered with a status.
    func firstStep() async throws -> AnswerStep {
        let step = try await answer.next(afterWaiting: .zero)
        if case .end(_, let failure?) = step { throw failure }
        return step
    }

    func wholeBody() async throws -> ByteBuffer {
        try await answer.wholeBody()
    }

    /// Writes the answer from `first` on as server-sent events. The call is finished before the last
    /// write, so that its record reaches the sink before the client has the whole answer.
    func relay(from first: AnswerStep, to writer: inout any ResponseBodyWriter, logger: Logger) async throws {
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

    private func next(afterWaiting waited: Duration, call: GatewayCall) async throws -> AnswerStep {
        do {
            return try await answer.next(afterWaiting: waited)
        } catch {
            // The client went away and the upstream was aborted: the call ends as cancelled.
            call.finish(.ending(error))
            throw error
        }
    }
}
