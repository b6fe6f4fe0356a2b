import Foundation
import NIOConcurrencyHelpers

/// Everything recorded about one chat call, handed to a ``LogSink`` when the call ends.
public struct CallLogRecord: Sendable {
    /// The call's id (UUIDv7); also `meta.id` in the response.
    public var id: UUID
    /// When the gateway received the call.
    public var timestamp: Date
    /// The request as the client sent it (model string unmodified).
    public var request: ChatRequest
    /// Routing options and metadata. Encoding them never includes API keys.
    public var options: RequestOptions
    /// The provider that answered, or the last one tried.
    public var provider: String?
    /// The model string of the winning (or last) choice, before prefix stripping.
    public var model: String?
    /// The collected response; partial if the stream failed or was cancelled.
    public var response: ChatResponse?
    /// Provider-specific response metadata.
    public var responseMeta: JSONValue?
    public var error: CallError?
    /// From the start of the winning attempt to the end of the response.
    public var upstreamLatency: Duration?
    /// From receiving the call to the end of the response.
    public var totalLatency: Duration
    /// The gateway's own time: the total less time spent waiting on upstreams and backoff.
    public var overhead: Duration?
    public var numRetries: Int
    public var wasRateLimited: Bool
    /// Whether the client asked for a stream.
    public var streamed: Bool
    /// The status the client was answered with.
    public var httpStatus: Int
    /// Chunks (or complete responses) received from the provider.
    public var chunkCount: Int
    /// Every attempt, failed ones included.
    public var attempts: [AttemptRecord]

    public init(id: UUID, timestamp: Date, request: ChatRequest, options: RequestOptions, provider: String? = nil,
                model: String? = nil, response: ChatResponse? = nil, responseMeta: JSONValue? = nil,
                error: CallError? = nil, upstreamLatency: Duration? = nil, totalLatency: Duration,
                overhead: Duration? = nil, numRetries: Int = 0, wasRateLimited: Bool = false, streamed: Bool = false,
                httpStatus: Int = 200, chunkCount: Int = 0, attempts: [AttemptRecord] = []) {
        self.id = id
        self.timestamp = timestamp
        self.request = request
        self.options = options
        self.provider = provider
        self.model = model
        self.response = response
        self.responseMeta = responseMeta
        self.error = error
        self.upstreamLatency = upstreamLatency
        self.totalLatency = totalLatency
        self.overhead = overhead
        self.numRetries = numRetries
        self.wasRateLimited = wasRateLimited
        self.streamed = streamed
        self.httpStatus = httpStatus
        self.chunkCount = chunkCount
        self.attempts = attempts
    }
}

/// One attempt at one routing choice.
public struct AttemptRecord: Sendable, Hashable, Codable {
    public var provider: String
    public var model: String
    /// `nil` for the attempt that succeeded.
    public var errorKind: ProviderErrorKind?
    public var status: Int?
    public var message: String?
    public var latencyMs: Int64

    enum CodingKeys: String, CodingKey {
        case provider, model, status, message
        case errorKind = "kind"
        case latencyMs = "latency_ms"
    }
}

/// A structured call error for logs and storage (gap 29): never a debug dump, never a secret.
public struct CallError: Error, Sendable, Hashable, Codable {
    public var kind: String
    public var message: String
    public var status: Int?
    public var provider: String?
    public var body: JSONValue?
    public var attempts: [AttemptRecord]

    public init(kind: String, message: String, status: Int? = nil, provider: String? = nil, body: JSONValue? = nil,
                attempts: [AttemptRecord] = []) {
        self.kind = kind
        self.message = message
        self.status = status
        self.provider = provider
        self.body = body
        self.attempts = attempts
    }
}

/// What the gateway records: an LLM call, or a workflow event sent by an agent.
public enum LogEntry: Sendable {
    case call(CallLogRecord)
    case workflow(WorkflowEvent)
}

/// Receives log entries. Implementations must return at once (enqueue, never write inline): this is
/// called on the request path.
public protocol LogSink: Sendable {
    func record(_ entry: LogEntry)

    /// Writes (or otherwise secures) everything recorded so far before returning, giving up at `deadline`.
    /// Returns whether everything was secured in time. ``Gateway/shutdown(flushTimeout:)`` calls this so that
    /// a library user who shuts down loses no records. The default has nothing to flush.
    @discardableResult
    func flush(deadline: ContinuousClock.Instant) async -> Bool
}

extension LogSink {
    @discardableResult
    public func flush(deadline: ContinuousClock.Instant) async -> Bool { true }
}

/// Keeps every entry in memory; for tests and embedders that inspect calls themselves.
public final class InMemoryLog: LogSink {
    private let storage = NIOLockedValueBox<[LogEntry]>([])

    public init() {}

    public func record(_ entry: LogEntry) {
        storage.withLockedValue { $0.append(entry) }
    }

    /// Every entry so far, oldest first.
    public var entries: [LogEntry] { storage.withLockedValue { $0 } }

    /// The call records so far, oldest first.
    public var records: [CallLogRecord] {
        entries.compactMap { if case .call(let call) = $0 { return call } else { return nil } }
    }

    /// The workflow events so far, oldest first.
    public var events: [WorkflowEvent] {
        entries.compactMap { if case .workflow(let event) = $0 { return event } else { return nil } }
    }
}
