import Foundation
import NIOConcurrencyHelpers

/// Everything recorded about one chat call, handed to a ``LogSink`` when the call ends.
public struct CallLogRecord: Sendable {
    /// The call's id (UUIDv7); also `meta.id` in the response.
    public var id: UUID
    /// When the gateway received the call.
    public var timestamp: Date
    /// The request as the client sent it (model string unmodified): typed, or the client's bytes.
    public var request: CallRequest
    /// Routing options and metadata. Encoding them never includes API keys.
    public var options: RequestOptions
    /// The provider that answered, or the last one tried.
    public var provider: String?
    /// The model string of the winning (or last) choice, before prefix stripping.
    public var model: String?
    /// The collected response; partial if the stream failed or was cancelled. An answer relayed as the
    /// upstream sent it (``relayedResponse``) is decoded from its bytes on each read: storage reads it
    /// once, off the request path; ``usage`` and ``responseModel`` are read without decoding.
    public var response: ChatResponse? {
        get { fullResponse() }
        set {
            responseSummary = newValue
            relayedResponse = nil
        }
    }
    /// The response as collected, or, for a relayed answer, what the gateway read from it: id, model, usage.
    public internal(set) var responseSummary: ChatResponse?
    /// An OpenAI-format answer relayed as the upstream sent it, kept as its bytes.
    public internal(set) var relayedResponse: RelayedResponse?

    /// The response's token usage, read without decoding a relayed answer.
    public var usage: Usage? { responseSummary?.usage }
    /// The model the provider says answered, read without decoding a relayed answer.
    public var responseModel: String? { responseSummary?.model }
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

    public init(id: UUID, timestamp: Date, request: CallRequest, options: RequestOptions, provider: String? = nil,
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
        self.responseSummary = response
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

/// An OpenAI-format answer kept as the upstream's bytes.
public enum RelayedResponse: Sendable, Hashable {
    /// A complete response's JSON.
    case response([UInt8])
    /// Each streamed chunk's JSON, in order.
    case chunks([[UInt8]])
    /// An Anthropic Messages API answer relayed to a client that sent an Anthropic request: the whole
    /// body, or the event stream's bytes as they came. Read into the gateway's response format only when
    /// the record is stored.
    case anthropicMessages([UInt8], isEventStream: Bool)
    /// An embeddings answer: what is recorded of it (count, dimension, model, usage), and its OpenAI-format
    /// body, vectors included, only when the gateway keeps them (`log_embedding_vectors`).
    case embeddings(EmbeddingsSummary, body: [UInt8]?)
    /// An OpenAI Responses API answer relayed to a client that sent a Responses request: the whole body,
    /// or the event stream's bytes as they came. Read into the gateway's response format only when the
    /// record is stored.
    case openAIResponses([UInt8], isEventStream: Bool)
}

extension CallLogRecord {
    /// Keeps a relayed answer's bytes, with what was read from them. Public so that a record read back from
    /// the crash journal gets its answer as it was relayed.
    public mutating func setRelayed(_ relayed: RelayedResponse, summary: ChatResponse?) {
        relayedResponse = relayed
        responseSummary = summary
    }

    /// The whole response: the collected one, or decoded and folded from ``relayedResponse``. Decoding a
    /// relayed stream costs as much as the chunks are long: storage calls it off the request path, spans
    /// only when they record.
    func fullResponse() -> ChatResponse? {
        let response = responseSummary
        switch relayedResponse {
        case nil, .embeddings:
            return response
        case .response(let bytes):
            guard var decoded = try? JSONCoding.decode(ChatResponse.self, from: bytes) else { return response }
            decoded.wireJSON = bytes
            return decoded
        case .chunks(let chunks):
            var collector = ResponseCollector()
            for bytes in chunks {
                // A chunk that does not decode is skipped, as the typed path would have failed on it.
                guard let chunk = try? JSONCoding.decode(ChatChunk.self, from: bytes) else { continue }
                collector.add(chunk)
            }
            return collector.chunkCount > 0 ? collector.collected : response
        case .anthropicMessages(let bytes, let isEventStream):
            let model = response?.model ?? model ?? ""
            if !isEventStream {
                guard let message = try? JSONCoding.decode(AnthropicMessagesResponse.self, from: bytes) else { return response }
                return AnthropicConversion.response(message, requestedModel: model)
            }
            var parser = ServerSentEventParser()
            var state = AnthropicStreamState(requestedModel: model)
            var collector = ResponseCollector()
            let events = ((try? parser.parse(bytes)) ?? []) + parser.finish()
            for event in events {
                // An event that does not convert (a ping, an error) adds nothing to the response.
                guard let chunk = try? state.convert(event) else { continue }
                collector.add(chunk)
            }
            guard collector.chunkCount > 0 else { return response }
            var collected = collector.collected
            collected.usage = response?.usage ?? collected.usage
            return collected
        case .openAIResponses(let bytes, let isEventStream):
            let converted: ChatResponse?
            if isEventStream {
                converted = ResponsesEgress.chatResponse(eventStream: bytes)
            } else {
                converted = (try? JSONCoding.decode(JSONValue.self, from: bytes)).flatMap(ResponsesEgress.chatResponse)
            }
            guard var converted else { return response }
            converted.usage = response?.usage ?? converted.usage
            return converted
        }
    }
}

extension LogEntry {
    /// Roughly how much memory the entry holds: the bodies it keeps as bytes, plus a fixed amount for the
    /// rest. Bounds the log writer's queue by size as well as by count, so a burst of large prompts
    /// cannot fill the heap while the database catches up.
    public var approximateBytes: Int {
        guard case .call(let call) = self else { return 512 }
        var bytes = 1024
        switch call.request {
        case .wire(let request): bytes += request.body.readableBytes
        case .messages(let request): bytes += request.wire.body.readableBytes
        case .embeddings(let request): bytes += request.body.readableBytes
        case .responses(let request): bytes += request.wire.body.readableBytes
        case .typed(let request):
            // Counted without joining a message's parts into one string.
            for message in request.messages {
                switch message.content {
                case .text(let text)?: bytes += text.utf8.count
                case .parts(let parts)?: bytes += parts.reduce(0) { $0 + ($1.text?.utf8.count ?? 0) }
                case nil: break
                }
            }
        }
        switch call.relayedResponse {
        case .response(let body)?: bytes += body.count
        case .chunks(let chunks)?: bytes += chunks.reduce(0) { $0 + $1.count }
        case .anthropicMessages(let body, _)?, .openAIResponses(let body, _)?: bytes += body.count
        case .embeddings(_, let body)?: bytes += body?.count ?? 0
        case nil: break
        }
        return bytes
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

/// A structured call error for logs and storage: never a debug dump, never a secret.
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
