import Foundation
import Logging
import NIOConcurrencyHelpers
import Tracing

/// One chat call, from the moment it is accepted to its record: its timing (the gateway's own time
/// against time spent waiting), its attempts, its spans, the answer as relayed, and the record handed to
/// the gateway's subscribers (``Gateway/Builder/onCallFinished(_:)``) when it finishes.
///
/// A call finishes exactly once, explicitly, and the record goes out at that moment:
/// - The HTTP server creates one per request with ``Finisher/caller`` and finishes it on every path:
///   before it writes a non-streamed body, before the final event of a stream, and on every error. A
///   client that has its whole answer therefore implies the record reached the log sink.
/// - ``Gateway/send(_:options:call:)`` without a call creates one with ``Finisher/stream``: the
///   ``ChatStream`` finishes it when it ends, fails or is cancelled (``ChatStream/cancel()``).
///
/// A call nobody finished is finished as its last reference goes, recorded as cancelled: the safety net
/// for an embedder that drops its stream part-way. ``Gateway/callsFinishedOnRelease`` counts those.
///
/// ```swift
/// let call = GatewayCall(context: .init(gatewayKeyName: "team-a"), finishedBy: .caller)
/// let stream = try await gateway.send(request, call: call)
/// let collected = try await stream.collect()
/// let overhead = call.finish()          // the record reaches the subscribers here
/// ```
public final class GatewayCall: Sendable {
    /// What the caller knows about a call that the gateway passes to subscribers untouched.
    public struct Context: Sendable, Hashable {
        /// The configured name of the gateway key that made the call (never the key itself).
        public var gatewayKeyName: String?

        public init(gatewayKeyName: String? = nil) {
            self.gatewayKeyName = gatewayKeyName
        }
    }

    /// Who finishes the call.
    public enum Finisher: Sendable, Hashable {
        /// The ``ChatStream`` finishes it when it ends, fails or is cancelled; the consumer's time between
        /// events is its own, not the gateway's. For embedders.
        case stream
        /// The caller finishes it with ``GatewayCall/finish(_:)`` and brackets its own waits
        /// (``GatewayCall/waiting(_:)``); the stream only notes how the upstream ended. For the server,
        /// whose encoding of the response is the gateway's time and whose record must be handed over
        /// before the client has all of its answer.
        case caller
    }

    /// How the caller ends a call.
    public enum Outcome: Sendable {
        /// The answer was relayed as far as the upstream gave it: recorded as a success, or with the
        /// upstream's error if its stream failed.
        case completed
        /// The call failed with `error`, unless the upstream already failed, whose error is kept.
        case failed(ProviderError)

        /// The client went away before its answer was complete: recorded as cancelled (status 499).
        public static var clientDisconnected: Outcome {
            .failed(ProviderError(kind: .cancelled, message: "The client disconnected before the response finished"))
        }
    }

    /// The call's id (UUIDv7): the record's id and `meta.id` in the response.
    public let id: UUID
    /// When the call was accepted.
    public let acceptedAt: Date
    public let context: Context
    public let finisher: Finisher
    /// The clock the call reads; the stream reads it too, so a test clock times both.
    let now: @Sendable () -> ContinuousClock.Instant
    private let storage: NIOLockedValueBox<Storage>

    /// - Parameters:
    ///   - context: passed to subscribers with the record (the gateway key's name, say).
    ///   - finisher: who finishes the call; see ``Finisher``.
    ///   - now: the clock the call's timing reads; tests pass their own.
    public init(context: Context = Context(), finishedBy finisher: Finisher = .stream,
                now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.id = UUID.v7()
        self.acceptedAt = Date()
        self.context = context
        self.finisher = finisher
        self.now = now
        self.storage = NIOLockedValueBox(Storage(
            machine: StateMachine(startedAt: now(), consumerTimeIsWaiting: finisher == .stream)))
    }

    deinit {
        // The safety net: nobody finished the call (an embedder dropped its stream part-way). What arrived
        // is recorded, as cancelled. The server finishes every call itself and never gets here.
        let context = self.context
        let instant = now()
        let report = storage.withLockedValue { storage in
            Self.close(&storage, ending: .released, at: instant, context: context)
        }
        report?.deliver()
    }

    // MARK: Timing

    /// Runs `body`, counting its time as waiting rather than the gateway's own.
    public func waiting<T>(_ body: () async throws -> T) async rethrows -> T {
        let start = now()
        defer { addWaiting(now() - start) }
        return try await body()
    }

    /// Counts `duration` as time spent waiting on something other than the gateway.
    public func addWaiting(_ duration: Duration) {
        storage.withLockedValue { $0.machine.addWaiting(duration) }
    }

    /// The gateway's own time on the call so far, or up to its finish.
    public var overhead: Duration {
        let instant = now()
        return storage.withLockedValue { $0.machine.overhead(at: instant) }
    }

    /// Whether the gateway took the request, so that the call will have a record under its ``id``.
    public var isRecorded: Bool { storage.withLockedValue { $0.record != nil } }

    /// Whether the call has finished.
    public var isFinished: Bool { storage.withLockedValue { $0.machine.isFinished } }

    /// What the finished call's record says was used, and of which provider and model, for pricing the
    /// call on the request path (the `x-chronicle-cost-usd` header); nil until the call has finished with a
    /// record.
    public var billing: Billing? { storage.withLockedValue { $0.billing } }

    /// The provider, model and usage of a finished call's record.
    public struct Billing: Sendable, Hashable {
        public var provider: String?
        /// The model the provider says answered, else the one routed to.
        public var model: String?
        public var usage: Usage?
        /// When the call was accepted: the date its price is taken at.
        public var acceptedAt: Date
    }

    // MARK: Finishing

    /// Finishes the call now, the first time: its record goes to the gateway's subscribers before this
    /// returns. Later calls change nothing. Returns the gateway's overhead on the call, as recorded.
    @discardableResult
    public func finish(_ outcome: Outcome = .completed) -> Duration {
        let ending: Ending
        switch outcome {
        case .completed: ending = .completed
        case .failed(let error): ending = .failed(error)
        }
        return finish(ending: ending)
    }

    @discardableResult
    func finish(ending: Ending) -> Duration {
        let context = self.context
        let instant = now()
        let (report, overhead) = storage.withLockedValue { storage in
            let report = Self.close(&storage, ending: ending, at: instant, context: context)
            return (report, storage.machine.overhead(at: instant))
        }
        report?.deliver()
        return overhead
    }

    // MARK: The gateway's side

    /// The gateway takes the request: from here on the call has a record.
    func begin(request: CallRequest, options: RequestOptions, reporter: CallReporter, requestSpan: any Span) {
        let record = CallLogRecord(
            id: id, timestamp: acceptedAt, request: request, options: options, totalLatency: .zero,
            streamed: request.isStreaming, httpStatus: 200)
        storage.withLockedValue { storage in
            // One call is sent once; a second `send` with it is the caller's mistake and is not recorded twice.
            guard storage.record == nil, !storage.machine.isFinished else { return }
            storage.record = record
            storage.reporter = reporter
            storage.requestSpan = requestSpan
            storage.clientAPIKey = options.apiKey
            storage.collectsAnswer = reporter.needsResponse
            storage.answer.keepsEmbeddingVectors = reporter.logsEmbeddingVectors
            storage.tracesChunks = reporter.logger.logLevel <= .trace
        }
    }

    /// An attempt starts at `instant`, traced by `span`.
    func attemptStarted(span: any Span, at instant: ContinuousClock.Instant) {
        storage.withLockedValue { storage in
            storage.machine.attemptStarted()
            storage.attemptSpan = span
            storage.attemptStartedAt = instant
        }
    }

    /// The current attempt failed with `error` (already redacted): its time was the upstream's.
    func attemptFailed(_ attempt: AttemptRecord, error: ProviderError) {
        let instant = now()
        let span = storage.withLockedValue { storage -> (any Span)? in
            if let start = storage.attemptStartedAt { storage.machine.attemptFailed(startedAt: start, at: instant) }
            storage.record?.attempts.append(attempt)
            defer { storage.attemptSpan = nil }
            return storage.attemptSpan
        }
        guard let span else { return }
        CallSpans.recordError(span, kind: error.kind.rawValue, message: error.message)
        span.attributes["http.response.status_code"] = error.status
        span.end()
    }

    /// Every attempt so far, failed ones included.
    var attempts: [AttemptRecord] { storage.withLockedValue { $0.record?.attempts ?? [] } }

    /// A provider accepted the current attempt: `info` says which; the answer's events follow.
    func answerStarted(_ info: RequestInfo, attempt: AttemptRecord) {
        let instant = now()
        storage.withLockedValue { storage in
            if let start = storage.attemptStartedAt {
                storage.machine.answerStarted(attemptStartedAt: start, at: instant)
            }
            storage.answered = true
            storage.record?.attempts.append(attempt)
            storage.record?.provider = info.provider
            storage.record?.model = info.model
            storage.record?.numRetries = info.numRetries
            storage.record?.wasRateLimited = info.wasRateLimited
        }
    }

    /// The consumer asked for the next event at `askedAt` and got `event`: the wait is the upstream's,
    /// and the event joins the answer. `waited` is the consumer's own wait since the previous event,
    /// counted in the same step: one lock per event.
    func eventArrived(_ event: ChatStreamEvent, askedAt: ContinuousClock.Instant, alsoWaited waited: Duration = .zero) {
        let instant = now()
        let isAnswer: Bool
        switch event {
        case .chunk, .single, .relayedMessages, .embeddings, .relayedResponses: isAnswer = true
        case .requestInfo, .responseInfo: isAnswer = false
        }
        let traceLogger = storage.withLockedValue { storage -> Logger? in
            storage.machine.addWaiting(waited)
            guard storage.machine.eventArrived(isAnswer: isAnswer, askedAt: askedAt, at: instant) == .collect else {
                return nil
            }
            if storage.collectsAnswer { storage.answer.add(event) }
            return storage.tracesChunks ? storage.reporter?.logger : nil
        }
        if let traceLogger, case .chunk(let chunk) = event {
            traceLogger.trace("chunk", metadata: ["call.id": "\(id.uuidString.lowercased())",
                                                  "chunk": "\(CallSpans.json((try? chunk.decoded()) ?? chunk) ?? "")"])
        }
    }

    /// The upstream's stream ended at the consumer's request made at `askedAt`, successfully when `error`
    /// is nil. A call the stream finishes is finished now; otherwise the ending is kept for the caller's
    /// ``finish(_:)``. Returns the error as the consumer may see it: without any known secret.
    @discardableResult
    func upstreamEnded(error: ProviderError?, askedAt: ContinuousClock.Instant, alsoWaited waited: Duration = .zero)
        -> ProviderError?
    {
        let instant = now()
        let redacted = storage.withLockedValue { storage -> ProviderError? in
            storage.machine.addWaiting(waited)
            _ = storage.machine.eventArrived(isAnswer: false, askedAt: askedAt, at: instant)
            let redacted = error.map { storage.redact($0) }
            if storage.upstreamEnd == nil, !storage.machine.isFinished {
                storage.upstreamEnd = UpstreamEnd(at: instant, error: redacted)
            }
            return redacted
        }
        if finisher == .stream { finish(ending: .completed) }
        return redacted
    }

    /// Ends a call that got no answer: no route, or every attempt failed.
    func fail(_ error: GatewayError, provider: String?, model: String?, retries: Int, rateLimited: Bool) {
        finish(ending: .gatewayFailed(error, provider: provider, model: model, retries: retries, rateLimited: rateLimited))
    }

    /// `error` as a client may see it: without any known secret.
    func redacted(_ error: ProviderError) -> ProviderError {
        storage.withLockedValue { $0.redact(error) }
    }
}

// MARK: - Storage and closing

extension GatewayCall {
    /// How a call ends.
    enum Ending: Sendable {
        case completed
        case failed(ProviderError)
        /// Got no answer: the request could not be routed, or every attempt failed.
        case gatewayFailed(GatewayError, provider: String?, model: String?, retries: Int, rateLimited: Bool)
        /// Nobody finished it before its last reference went.
        case released
    }

    struct UpstreamEnd: Sendable {
        var at: ContinuousClock.Instant
        var error: ProviderError?
    }

    /// Everything the call holds, behind its lock.
    struct Storage: Sendable {
        var machine: StateMachine
        /// Set when the gateway takes the request; a call rejected before that has nothing to record.
        var record: CallLogRecord?
        var answer = Answer()
        var upstreamEnd: UpstreamEnd?
        var attemptStartedAt: ContinuousClock.Instant?
        /// Whether a provider accepted an attempt (the answer then belongs in the record).
        var answered = false
        var reporter: CallReporter?
        var requestSpan: (any Span)?
        var attemptSpan: (any Span)?
        /// The key a client sent for the upstream, scrubbed from errors along with the configured ones.
        var clientAPIKey: String?
        var collectsAnswer = false
        var tracesChunks = false
        /// Kept from the record when the call finishes.
        var billing: Billing?

        init(machine: StateMachine) {
            self.machine = machine
        }

        func redact(_ error: ProviderError) -> ProviderError {
            reporter?.redactor.redact(error, also: clientAPIKey) ?? error
        }
    }

    /// What goes out once the lock is released: the record to subscribers, the spans ended.
    struct Report {
        let call: FinishedCall
        let reporter: CallReporter
        let requestSpan: (any Span)?
        let attemptSpan: (any Span)?

        func deliver() {
            if let attemptSpan {
                if let error = call.record.error {
                    CallSpans.recordError(attemptSpan, kind: error.kind, message: error.message)
                }
                attemptSpan.end()
            }
            reporter.report(call, span: requestSpan)
        }
    }

    /// Finishes the call under its lock, the first time; returns what to report, or nil when it was
    /// finished before or has nothing to record.
    static func close(_ storage: inout Storage, ending: Ending, at instant: ContinuousClock.Instant,
                      context: Context) -> Report? {
        guard case .report(let figures) = storage.machine.finish(at: instant) else { return nil }
        guard var record = storage.record, let reporter = storage.reporter else { return nil }
        let endingError: ProviderError?
        switch ending {
        case .completed: endingError = nil
        case .failed(let error): endingError = error
        case .released:
            endingError = ProviderError(kind: .cancelled,
                                        message: "The client disconnected before the response finished")
        case .gatewayFailed(let error, let provider, let model, let retries, let rateLimited):
            record.provider = provider
            record.model = model
            record.numRetries = retries
            record.wasRateLimited = rateLimited
            record.httpStatus = error.httpStatus
            record.error = error.callError(provider: provider)
            endingError = nil
        }
        if storage.answered, let start = storage.attemptStartedAt {
            storage.answer.fill(&record)
            record.upstreamLatency = (storage.upstreamEnd?.at ?? instant) - start
        }
        // The upstream's own failure is what happened first; a later ending does not replace it.
        if let error = storage.upstreamEnd?.error ?? endingError.map({ storage.redact($0) }) {
            record.httpStatus = error.kind == .cancelled ? 499 : error.httpStatus
            record.error = CallError(kind: error.kind.rawValue, message: error.message, status: error.status,
                                     provider: record.provider, body: error.body, attempts: record.attempts)
        }
        record.totalLatency = figures.elapsed
        record.overhead = figures.overhead
        storage.billing = Billing(provider: record.provider, model: record.responseModel ?? record.model ?? record.request.model,
                                  usage: record.usage, acceptedAt: record.timestamp)
        let finishedOnRelease: Bool
        if case .released = ending { finishedOnRelease = true } else { finishedOnRelease = false }
        let report = Report(
            call: FinishedCall(record: record, context: context, timeToFirstEvent: figures.timeToFirstEvent,
                               finishedOnRelease: finishedOnRelease),
            reporter: reporter, requestSpan: storage.requestSpan, attemptSpan: storage.attemptSpan)
        // The finished call keeps only its figures: the answer and spans are the record's now.
        storage.answer = Answer()
        storage.requestSpan = nil
        storage.attemptSpan = nil
        return report
    }
}
