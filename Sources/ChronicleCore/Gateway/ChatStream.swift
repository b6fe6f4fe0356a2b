import Foundation
import Logging
import NIOConcurrencyHelpers
import Tracing

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
            recorder.consumerReturned()
            let waitStart = ContinuousClock.now
            do {
                let next = try await upstream.next()
                recorder.timing.addWaiting(ContinuousClock.now - waitStart)
                guard let event = next else {
                    recorder.finish(error: nil)
                    return nil
                }
                recorder.observe(event)
                return event
            } catch {
                recorder.timing.addWaiting(ContinuousClock.now - waitStart)
                let providerError = Task.isCancelled || error is CancellationError
                    ? ProviderError(kind: .cancelled, message: "The client disconnected before the response finished")
                    : error as? ProviderError ?? ProviderError(kind: .generic, message: "Stream failed: \(error)")
                recorder.finish(error: providerError)
                throw recorder.redacted(providerError)
            }
        }
    }

    /// The call's timing, shared with the caller that created it.
    public var timing: CallTiming { recorder.timing }

    /// Reports the call now and returns the gateway's overhead on it. A caller whose ``CallTiming`` is
    /// ``CallTiming/managedByCaller`` calls this once its response is written; otherwise the call is
    /// reported when the stream ends. Calling it again changes nothing.
    @discardableResult
    public func complete() -> Duration { recorder.complete() }

    /// Ends the upstream request now, from any task: a consumer waiting for the next event gets a
    /// cancellation error, and the call is recorded as cancelled. For a server whose client went away while
    /// the upstream is silent.
    public func abortUpstream() {
        upstream.abort()
    }

    /// Records the call as cancelled now, keeping what arrived: for a consumer that stops reading because
    /// its own client went away. Dropping the stream has the same effect, later.
    public func cancel() {
        recorder.finish(error: ProviderError(kind: .cancelled, message: "The client disconnected before the response finished"))
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

/// A stream folded into one response.
public struct CollectedResponse: Sendable, Hashable {
    public var requestInfo: RequestInfo
    public var responseInfo: ResponseInfo?
    /// Whether the provider streamed (false when it answered with one complete response).
    public var wasStreaming: Bool
    public var chunkCount: Int
    public var response: ChatResponse
}

/// Collects a call's response as it streams and reports the call exactly once: the record to the sink,
/// metrics, the spans and the per-call log line.
final class CallRecorder: Sendable {
    fileprivate struct State {
        var record: CallLogRecord
        var collector = ResponseCollector()
        /// Relayed chunks, kept as bytes and decoded when the call is stored (``CallLogRecord/relayedResponse``).
        var relayedChunks: [[UInt8]] = []
        var relayedSingle: [UInt8]?
        /// What was read from the relayed answer: id, model, usage.
        var relayedSummary: ChatResponse?
        /// Set once a chunk arrives that is not a summary: from then on every chunk is folded as it comes.
        var foldsEveryChunk = false
        var finished = false
        var reported = false
        var firstEventAt: ContinuousClock.Instant?
        /// When the caller finished reading the last event (embedder mode: its time is not overhead).
        var consumerResumedAt: ContinuousClock.Instant?
    }

    private let state: NIOLockedValueBox<State>
    private let attemptStartedAt: ContinuousClock.Instant
    let timing: CallTiming
    private let reporter: CallReporter
    private let requestSpan: any Span
    private let attemptSpan: any Span
    private let clientAPIKey: String?

    init(record: CallLogRecord, attemptStartedAt: ContinuousClock.Instant, timing: CallTiming, reporter: CallReporter,
         requestSpan: any Span, attemptSpan: any Span, clientAPIKey: String?) {
        self.state = NIOLockedValueBox(State(record: record))
        self.attemptStartedAt = attemptStartedAt
        self.timing = timing
        self.reporter = reporter
        self.requestSpan = requestSpan
        self.attemptSpan = attemptSpan
        self.clientAPIKey = clientAPIKey
    }

    /// Called as the consumer asks for the next event; in embedder mode the time since the previous event
    /// was handed over belongs to the consumer.
    func consumerReturned() {
        guard !timing.managedByCaller else { return }
        let now = ContinuousClock.now
        let resumed = state.withLockedValue { state -> ContinuousClock.Instant? in
            defer { state.consumerResumedAt = nil }
            return state.consumerResumedAt
        }
        if let resumed { timing.addWaiting(now - resumed) }
    }

    func observe(_ event: ChatStreamEvent) {
        let now = ContinuousClock.now
        let managedByCaller = timing.managedByCaller
        let recordsResponse = reporter.needsResponse
        state.withLockedValue { state in
            if state.firstEventAt == nil, case .chunk = event { state.firstEventAt = now }
            if state.firstEventAt == nil, case .single = event { state.firstEventAt = now }
            if !managedByCaller { state.consumerResumedAt = now }
            guard recordsResponse else { return }
            switch event {
            case .chunk(let chunk) where chunk.isSummary && !state.foldsEveryChunk:
                state.keepRelayed(chunk)
            case .chunk(let chunk):
                state.foldRelayedChunks()
                state.collector.add(chunk)
            case .single(let response) where response.isSummary:
                state.relayedSingle = response.wireJSON
                state.relayedSummary = response
            case .single(let response): state.collector.add(response)
            case .responseInfo(let info): state.record.responseMeta = info.meta
            case .requestInfo: break
            }
        }
        if reporter.logger.logLevel <= .trace, case .chunk(let chunk) = event {
            reporter.logger.trace("chunk", metadata: ["call.id": "\(state.withLockedValue { $0.record.id })",
                                                      "chunk": "\(CallSpans.json((try? chunk.decoded()) ?? chunk) ?? "")"])
        }
    }

    /// The upstream stream ended, successfully when `error` is nil. Unless the caller manages the call's
    /// timing (the server, which still has a response to write), the call is reported now.
    func finish(error: ProviderError?) {
        let now = ContinuousClock.now
        let reportNow: Bool = state.withLockedValue { state in
            guard !state.finished else { return false }
            state.finished = true
            var record = state.record
            if state.collector.chunkCount > 0 { record.response = state.collector.collected }
            record.chunkCount = state.collector.chunkCount
            if let single = state.relayedSingle {
                record.setRelayed(.response(single), summary: state.relayedSummary)
                record.chunkCount = 1
            } else if !state.relayedChunks.isEmpty {
                record.setRelayed(.chunks(state.relayedChunks), summary: state.relayedSummary)
                record.chunkCount = state.relayedChunks.count
            }
            record.upstreamLatency = now - attemptStartedAt
            if let error {
                let error = reporter.redactor.redact(error, also: clientAPIKey)
                record.httpStatus = error.kind == .cancelled ? 499 : error.httpStatus
                record.error = CallError(kind: error.kind.rawValue, message: error.message, status: error.status,
                                         provider: record.provider, body: error.body, attempts: record.attempts)
            }
            state.record = record
            return error != nil || !timing.managedByCaller
        }
        if reportNow { complete() }
    }

    /// The error as the client may see it: without any known secret.
    func redacted(_ error: ProviderError) -> ProviderError {
        reporter.redactor.redact(error, also: clientAPIKey)
    }

    /// Reports the call once; returns the gateway's overhead on it.
    @discardableResult
    func complete() -> Duration {
        timing.markCompleted()
        let overhead = timing.overhead
        let report: (CallLogRecord, Duration?)? = state.withLockedValue { state in
            guard !state.reported else { return nil }
            state.reported = true
            state.record.totalLatency = timing.elapsed
            state.record.overhead = overhead
            return (state.record, state.firstEventAt.map { $0 - timing.startedAt })
        }
        guard let (record, timeToFirstToken) = report else { return overhead }
        if let error = record.error {
            CallSpans.recordError(attemptSpan, kind: error.kind, message: error.message)
        }
        attemptSpan.end()
        reporter.report(record, span: requestSpan, timeToFirstToken: timeToFirstToken)
        return overhead
    }

    deinit {
        // Dropped before the end: the client went away. Record what arrived, marked cancelled.
        finish(error: ProviderError(kind: .cancelled, message: "The client disconnected before the response finished"))
        complete()
    }
}

extension CallRecorder.State {
    /// Keeps a relayed chunk's bytes and merges what was read from it into the summary.
    mutating func keepRelayed(_ chunk: ChatChunk) {
        guard let bytes = chunk.wireJSON else { return }
        relayedChunks.append(bytes)
        if relayedSummary == nil {
            var summary = ChatResponse(id: chunk.id, created: chunk.created, model: chunk.model)
            summary.isSummary = true
            relayedSummary = summary
        }
        if let usage = chunk.usage {
            if relayedSummary?.usage == nil { relayedSummary?.usage = Usage() }
            relayedSummary?.usage?.merge(usage)
        }
    }

    /// Folds the relayed chunks kept so far, when a chunk that is not a summary joins them.
    mutating func foldRelayedChunks() {
        foldsEveryChunk = true
        for bytes in relayedChunks {
            guard let chunk = try? JSONCoding.decode(ChatChunk.self, from: bytes) else { continue }
            collector.add(chunk)
        }
        relayedChunks = []
        relayedSummary = nil
    }
}

/// Where a finished call goes: the log sink, metrics, its span and one log line.
struct CallReporter: Sendable {
    let sink: (any LogSink)?
    let metrics: GatewayMetrics?
    let logger: Logger
    let redactor: SecretRedactor
    let tracePayloads: Bool

    /// Whether anyone needs the collected response (the sink, or a span with payloads).
    var needsResponse: Bool { sink != nil || tracePayloads || metrics != nil }

    func report(_ record: CallLogRecord, span: any Span, timeToFirstToken: Duration?) {
        let usage = record.usage
        metrics?.finished(GatewayMetrics.FinishedCall(
            provider: record.provider, model: record.model, status: record.httpStatus, errorKind: record.error?.kind,
            streaming: record.streamed, total: record.totalLatency, upstream: record.upstreamLatency,
            timeToFirstToken: record.streamed ? timeToFirstToken : nil, overhead: record.overhead ?? .zero,
            inputTokens: usage?.promptTokens, outputTokens: usage?.completionTokens))
        CallSpans.recordFinish(span, record: record, timeToFirstToken: timeToFirstToken, tracePayloads: tracePayloads)
        span.end()
        if logger.logLevel <= .info {
            var metadata: Logger.Metadata = [
                "call.id": "\(record.id.uuidString.lowercased())",
                "provider": "\(record.provider ?? "-")",
                "model": "\(record.model ?? "-")",
                "status": "\(record.httpStatus)",
                "latency_ms": "\(record.totalLatency.milliseconds)",
                "overhead_ms": "\(String(format: "%.3f", (record.overhead ?? .zero).fractionalMilliseconds))",
                "retries": "\(record.numRetries)",
                "streamed": "\(record.streamed)",
            ]
            if let key = record.options.internalMetadata.gatewayKey { metadata["gateway_key"] = "\(key)" }
            if let error = record.error { metadata["error.kind"] = "\(error.kind)" }
            logger.info("chat completion", metadata: metadata)
        }
        sink?.record(.call(record))
    }
}
