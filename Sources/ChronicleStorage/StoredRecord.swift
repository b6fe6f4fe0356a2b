import ChronicleCore
import Foundation

/// A log entry reduced to what is stored: plain column values, shared by both backends and the spill file.
public enum StoredRecord: Sendable, Codable, Hashable {
    /// A `chronicle_events` row: an LLM call or a generic event.
    case event(EventRow)
    /// A run or step event, applied to `chronicle_runs` / `chronicle_steps`.
    case workflow(WorkflowEvent)

    /// Converts an entry, fixing its time now so that a replay later stores the same row, and pricing a
    /// call with `prices`.
    public init(_ entry: LogEntry, now: Date = Date(), prices: PriceTable = .bundled) {
        switch entry {
        case .call(let call):
            self = .event(EventRow(call, prices: prices))
        case .workflow(.event(let event)):
            self = .event(EventRow(event, now: now))
        case .workflow(let event):
            self = .workflow(event.withTime(now))
        }
    }

    /// The run this record touches, for notifications.
    var runID: UUID? {
        switch self {
        case .event(let row): return row.runID
        case .workflow(let event): return event.runID
        }
    }
}

extension WorkflowEvent {
    /// The event with `time` filled in when it had none.
    func withTime(_ now: Date) -> WorkflowEvent {
        switch self {
        case .runStart(var e): e.time = e.time ?? now; return .runStart(e)
        case .runUpdate(var e): e.time = e.time ?? now; return .runUpdate(e)
        case .stepStart(var e): e.time = e.time ?? now; return .stepStart(e)
        case .stepEnd(var e): e.time = e.time ?? now; return .stepEnd(e)
        case .stepError(var e): e.time = e.time ?? now; return .stepError(e)
        case .stepState(var e): e.time = e.time ?? now; return .stepState(e)
        case .event(var e): e.time = e.time ?? now; return .event(e)
        }
    }
}

/// One `chronicle_events` row: Rust Chronicle's columns plus usage, status, streaming and overhead.
public struct EventRow: Sendable, Codable, Hashable {
    public var id: UUID
    public var eventType: String
    public var organizationID: String?
    public var projectID: String?
    public var userID: String?
    /// JSON text; `null` for non-LLM events.
    public var chatRequest: String
    public var chatResponse: String
    public var error: String
    public var provider: String?
    /// `nil` (never `""`) for non-LLM events, which have no model.
    public var model: String?
    public var application: String?
    public var environment: String?
    public var requestOrganizationID: String?
    public var requestProjectID: String?
    public var requestUserID: String?
    public var workflowID: String?
    public var workflowName: String?
    public var runID: UUID?
    public var stepID: UUID?
    public var stepIndex: Int64?
    public var promptID: String?
    public var promptVersion: Int64?
    /// JSON text: metadata extras for calls, the data of generic events (any JSON type, not only objects).
    public var meta: String
    public var responseMeta: String?
    public var retries: Int64?
    public var rateLimited: Bool?
    public var requestLatencyMs: Int64?
    public var totalLatencyMs: Int64?
    public var createdAt: Date
    public var inputTokens: Int64?
    public var outputTokens: Int64?
    public var totalTokens: Int64?
    public var cachedTokens: Int64?
    public var reasoningTokens: Int64?
    public var httpStatus: Int64?
    public var streamed: Bool?
    public var overheadMs: Double?
    /// The name of the gateway key the call was made with.
    public var gatewayKey: String?
    /// What the call cost in US dollars; nil when its model has no price or it reported no usage.
    public var costUSD: Double?
    /// The replica that stored the row (`instance_id`); stamped by the store that writes it, so it is not
    /// part of the journal or spill formats.
    public var instanceID: String?

    static let null = "null"

    init(_ call: CallLogRecord, prices: PriceTable = .bundled) {
        let metadata = call.options.metadata
        let usage = call.usage
        id = call.id
        eventType = "chronicle_llm_request"
        organizationID = call.options.internalMetadata.organizationID
        projectID = call.options.internalMetadata.projectID
        userID = call.options.internalMetadata.userID
        switch call.request {
        case .typed(let request): chatRequest = Self.json(request) ?? Self.null
        case .wire(let request): chatRequest = request.recordedJSON
        // The client's Anthropic body as received: it holds no Chronicle members.
        case .messages, .embeddings: chatRequest = call.request.recordedJSON ?? Self.null
        // The client's Responses body as received: it holds no Chronicle members.
        case .responses: chatRequest = call.request.recordedJSON ?? Self.null
        }
        if case .response(let bytes) = call.relayedResponse {
            chatResponse = String(decoding: bytes, as: UTF8.self)
        } else if case .embeddings(let summary, let body) = call.relayedResponse {
            // The vectors only when the gateway keeps them; otherwise how many there were and how long.
            chatResponse = body.map { String(decoding: $0, as: UTF8.self) } ?? Self.json(summary.recordedJSON) ?? Self.null
        } else {
            chatResponse = call.response.flatMap(Self.json) ?? Self.null
        }
        error = call.error.flatMap(Self.json) ?? Self.null
        provider = call.provider
        model = call.responseModel ?? call.model ?? call.request.model
        application = metadata.application
        environment = metadata.environment
        requestOrganizationID = metadata.organizationID
        requestProjectID = metadata.projectID
        requestUserID = metadata.userID
        workflowID = metadata.workflowID
        workflowName = metadata.workflowName
        runID = metadata.runID
        stepID = metadata.stepID
        stepIndex = metadata.stepIndex.map(Int64.init)
        promptID = metadata.promptID
        promptVersion = metadata.promptVersion.map(Int64.init)
        var extra = metadata.extra
        // Which API the client spoke, when not OpenAI's chat completions (the default, left unsaid so
        // that existing rows and queries stay as they were).
        if let api = call.request.clientAPI { extra[CallRequest.clientAPIMetaKey] = .string(api) }
        meta = extra.isEmpty ? Self.null : (Self.json(extra) ?? Self.null)
        responseMeta = Self.responseMeta(call).flatMap(Self.json)
        retries = Int64(call.numRetries)
        rateLimited = call.wasRateLimited
        requestLatencyMs = call.upstreamLatency?.milliseconds
        totalLatencyMs = call.totalLatency.milliseconds
        createdAt = call.timestamp
        inputTokens = usage?.promptTokens.map(Int64.init)
        outputTokens = usage?.completionTokens.map(Int64.init)
        totalTokens = (usage?.totalTokens ?? usage.flatMap { u in u.promptTokens.flatMap { p in u.completionTokens.map { p + $0 } } })
            .map(Int64.init)
        cachedTokens = usage?.cachedTokens.map(Int64.init)
        reasoningTokens = usage?.reasoningTokens.map(Int64.init)
        httpStatus = Int64(call.httpStatus)
        streamed = call.streamed
        overheadMs = call.overhead?.fractionalMilliseconds
        gatewayKey = call.options.internalMetadata.gatewayKey
        costUSD = prices.cost(provider: provider, model: model, usage: usage, at: call.timestamp)
    }

    init(_ event: GenericEvent, now: Date) {
        id = event.id
        eventType = event.type
        chatRequest = Self.null
        chatResponse = Self.null
        error = event.error.flatMap(Self.json) ?? Self.null
        meta = event.data.flatMap(Self.json) ?? Self.null
        runID = event.runID
        stepID = event.stepID
        createdAt = event.time ?? now
    }

    /// The provider's response metadata, plus the attempts of a call that succeeded after a retry or a
    /// fallback (a failed call keeps them in its error), so that its detail can show what was tried.
    static func responseMeta(_ call: CallLogRecord) -> JSONValue? {
        guard call.error == nil, call.attempts.count > 1,
              let attempts = try? JSONCoding.decode(JSONValue.self, from: JSONCoding.encodeBytes(call.attempts))
        else { return call.responseMeta }
        switch call.responseMeta {
        case nil, .null?: return ["attempts": attempts]
        case .object(var object)?:
            object["attempts"] = attempts
            return .object(object)
        case let other?: return ["provider": other, "attempts": attempts]
        }
    }

    static func json(_ value: some Encodable) -> String? {
        try? JSONCoding.encodeToString(value)
    }
}
