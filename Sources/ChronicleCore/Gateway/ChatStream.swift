import Foundation
import NIOConcurrencyHelpers

/// The answer to ``Gateway/send(_:options:)``: ``ChatStreamEvent/requestInfo(_:)`` first, then the
/// provider's chunks or complete response, then its ``ResponseInfo``.
///
/// Single-pass. Consuming it to the end, failing, or dropping it part-way (a client that went away)
/// records the call exactly once; dropping it also cancels the upstream request.
public struct ChatStream: AsyncSequence, Sendable {
    public typealias Element = ChatStreamEvent

    /// Which provider and model serve this call.
    public let requestInfo: RequestInfo
    let upstream: ChatEventStream
    let recorder: CallRecorder

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(requestInfo: requestInfo, upstream: upstream.makeAsyncIterator(), recorder: recorder)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var requestInfo: RequestInfo?
        var upstream: ChatEventStream.AsyncIterator
        let recorder: CallRecorder

        public mutating func next() async throws -> ChatStreamEvent? {
            if let info = requestInfo {
                requestInfo = nil
                return .requestInfo(info)
            }
            do {
                guard let event = try await upstream.next() else {
                    recorder.finish(error: nil)
                    return nil
                }
                recorder.observe(event)
                return event
            } catch {
                let providerError = error as? ProviderError
                    ?? ProviderError(kind: .generic, message: "Stream failed: \(error)")
                recorder.finish(error: providerError)
                throw providerError
            }
        }
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
            }
        }
        return CollectedResponse(
            requestInfo: requestInfo, responseInfo: responseInfo, wasStreaming: !sawSingle,
            chunkCount: collector.chunkCount, response: collector.collected)
    }
}

/// A stream folded into one response (reference `CollectedResponse`).
public struct CollectedResponse: Sendable, Hashable {
    public var requestInfo: RequestInfo
    public var responseInfo: ResponseInfo?
    /// Whether the provider streamed (false when it answered with one complete response).
    public var wasStreaming: Bool
    public var chunkCount: Int
    public var response: ChatResponse
}

/// Collects a call's response as it streams and hands the record to the sink exactly once.
final class CallRecorder: Sendable {
    private struct State {
        var record: CallLogRecord
        var collector = ResponseCollector()
        var finished = false
    }

    private let state: NIOLockedValueBox<State>
    private let startedAt: ContinuousClock.Instant
    private let attemptStartedAt: ContinuousClock.Instant
    private let waitedElsewhere: Duration
    private let sink: (any LogSink)?

    init(record: CallLogRecord, startedAt: ContinuousClock.Instant, attemptStartedAt: ContinuousClock.Instant,
         waitedElsewhere: Duration, sink: (any LogSink)?) {
        self.state = NIOLockedValueBox(State(record: record))
        self.startedAt = startedAt
        self.attemptStartedAt = attemptStartedAt
        self.waitedElsewhere = waitedElsewhere
        self.sink = sink
    }

    func observe(_ event: ChatStreamEvent) {
        guard sink != nil else { return }
        state.withLockedValue { state in
            switch event {
            case .chunk(let chunk): state.collector.add(chunk)
            case .single(let response): state.collector.add(response)
            case .responseInfo(let info): state.record.responseMeta = info.meta
            case .requestInfo: break
            }
        }
    }

    /// Ends the call, successful when `error` is nil.
    func finish(error: ProviderError?) {
        let now = ContinuousClock.now
        let record: CallLogRecord? = state.withLockedValue { state in
            guard !state.finished else { return nil }
            state.finished = true
            guard sink != nil else { return nil }
            var record = state.record
            if state.collector.chunkCount > 0 { record.response = state.collector.collected }
            record.chunkCount = state.collector.chunkCount
            record.upstreamLatency = now - attemptStartedAt
            record.totalLatency = now - startedAt
            // Before the winning attempt: resolution and failed attempts' bookkeeping.
            record.overhead = max(.zero, (attemptStartedAt - startedAt) - waitedElsewhere)
            if let error {
                record.httpStatus = error.kind == .cancelled ? 499 : error.httpStatus
                record.error = CallError(kind: error.kind.rawValue, message: error.message, status: error.status,
                                         provider: record.provider, body: error.body, attempts: record.attempts)
            }
            return record
        }
        if let record { sink?.record(.call(record)) }
    }

    deinit {
        // Dropped before the end: the client went away. Record what arrived, marked cancelled.
        finish(error: ProviderError(kind: .cancelled, message: "The client disconnected before the response finished"))
    }
}
