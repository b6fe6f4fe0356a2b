import Foundation

/// The answer to ``Gateway/send(_:options:call:)``: ``ChatStreamEvent/requestInfo(_:)`` first, then the
/// provider's chunks or complete response, then its ``ResponseInfo``.
///
/// Single-pass. Its ``call`` is finished when the stream ends, fails or is cancelled (unless the caller
/// finishes it: ``GatewayCall/Finisher/caller``). Dropping the stream part-way cancels the upstream
/// request, and the call is recorded as cancelled once its last reference goes.
public struct ChatStream: AsyncSequence, Sendable {
    public typealias Element = ChatStreamEvent

    /// Which provider and model serve this call.
    public let requestInfo: RequestInfo
    let upstream: ChatEventStream
    /// The call this stream answers: its timing, its answer so far and, once finished, its record.
    public let call: GatewayCall

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(requestInfo: requestInfo, upstream: upstream.makeAsyncIterator(), call: call)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var requestInfo: RequestInfo?
        var upstream: ChatEventStream.AsyncIterator
        let call: GatewayCall

        public mutating func next() async throws -> ChatStreamEvent? {
            try await next(afterWaiting: .zero)
        }

        /// Whether the next event is at hand without waiting for the upstream.
        public var hasReadyEvent: Bool { requestInfo != nil || upstream.hasReadyEvent }

        /// The next event, counting `waited` (the caller's own wait since the previous event, such as
        /// writing it to a slow client) as waiting in the same step, so that a relay takes the call's lock
        /// once per event.
        package mutating func next(afterWaiting waited: Duration) async throws -> ChatStreamEvent? {
            if let info = requestInfo {
                requestInfo = nil
                if waited > .zero { call.addWaiting(waited) }
                return .requestInfo(info)
            }
            let askedAt = call.now()
            do {
                guard let event = try await upstream.next() else {
                    call.upstreamEnded(error: nil, askedAt: askedAt, alsoWaited: waited)
                    return nil
                }
                call.eventArrived(event, askedAt: askedAt, alsoWaited: waited)
                return event
            } catch {
                let providerError = Task.isCancelled || error is CancellationError
                    ? ProviderError(kind: .cancelled, message: "The client disconnected before the response finished")
                    : error as? ProviderError ?? ProviderError(kind: .generic, message: "Stream failed: \(error)")
                throw call.upstreamEnded(error: providerError, askedAt: askedAt, alsoWaited: waited) ?? providerError
            }
        }
    }

    /// Ends the upstream request now, from any task: a consumer waiting for the next event gets a
    /// cancellation error. For a server whose client went away while the upstream is silent.
    public func abortUpstream() {
        upstream.abort()
    }

    /// Finishes the call now as cancelled, keeping what arrived: for a consumer that stops reading because
    /// its own client went away.
    public func cancel() {
        call.finish(.clientDisconnected)
    }

    /// Reads the whole stream and folds it into one response.
    public func collect() async throws -> CollectedResponse {
        var collector = ResponseCollector()
        var responseInfo: ResponseInfo?
        var sawSingle = false
        for try await event in self {
            switch event {
            case .requestInfo: break
            case .chunk(let chunk): collector.add(chunk)
            case .single(let response):
                collector.add(response)
                sawSingle = true
            case .responseInfo(let info): responseInfo = info
            case .embeddings(let answer):
                var response = ChatResponse(model: answer.summary.model)
                response.usage = answer.summary.usage
                collector.add(response)
                sawSingle = true
            case .relayedMessages(let part):
                // Only a consumer that asked for an Anthropic answer gets one; folded, it says what it can.
                if let summary = part.summary {
                    var response = ChatResponse(id: summary.id, model: summary.model)
                    response.usage = summary.chatUsage
                    collector.add(response)
                }
            case .relayedResponses(let part):
                // Only a consumer that asked for a Responses answer gets one; folded, it says what it can.
                if let summary = part.summary {
                    var response = ChatResponse(id: summary.id, model: summary.model)
                    response.usage = summary.usage
                    collector.add(response)
                }
            }
        }
        return CollectedResponse(
            requestInfo: requestInfo, responseInfo: responseInfo, wasStreaming: !sawSingle,
            chunkCount: collector.chunkCount, response: collector.collected)
    }
}

/// A stream folded into one response.
public struct CollectedResponse: Sendable, Hashable {
    public var requestInfo: RequestInfo
    public var responseInfo: ResponseInfo?
    /// Whether the provider streamed (false when it answered with one complete response).
    public var wasStreaming: Bool
    public var chunkCount: Int
    public var response: ChatResponse
}
