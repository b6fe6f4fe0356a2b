import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /event`, `/v1/event` (one event) and `/events`, `/v1/events` (`{"events": [...]}`).
///
/// Every event is validated before any is queued: a malformed one rejects the request (and the whole
/// batch) with a message naming the field and, in a batch, the event's index. Accepted events answer 202.
struct EventRoutes<Context: RequestContext>: Sendable {
    let gateway: Gateway
    let maxBodySize: Int

    func register(on router: Router<Context>) {
        let single: @Sendable (Request, Context) async throws -> Response = { request, _ in
            try await self.accept(request, batch: false)
        }
        let batch: @Sendable (Request, Context) async throws -> Response = { request, _ in
            try await self.accept(request, batch: true)
        }
        router.post("/event", use: single)
        router.post("/v1/event", use: single)
        router.post("/events", use: batch)
        router.post("/v1/events", use: batch)
        router.postOnly(["/event", "/v1/event", "/events", "/v1/events"])
    }

    func accept(_ request: Request, batch: Bool) async throws -> Response {
        guard gateway.isRecording else {
            throw APIError(status: 503, kind: "recording_disabled",
                           message: "Event recording is off (log_to_database = false): the events were not stored")
        }
        let bytes: ByteBuffer
        do {
            bytes = try await request.body.collect(upTo: maxBodySize)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw ChatRoutes<ChronicleRequestContext>.tooLarge(maxBodySize)
        }
        var events = try RequestDecoding.events(bytes, batch: batch)
        if events.contains(where: { if case .runStart = $0 { return true } else { return false } }) {
            var metadata = RequestOptions()
            try ChronicleHeaders.merge(request.headers, into: &metadata, agentSessions: nil)
            let trace = Self.traceContext(HTTPField.Name("traceparent").flatMap { request.headers[$0] })
            events = events.map { Self.merge(metadata.metadata, trace: trace, into: $0) }
        }
        gateway.recordEvents(events)
        return Response(status: .accepted, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"accepted","count":\#(events.count)}"#)))
    }


    /// The trace and parent span ids of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if valid.
    static func traceContext(_ header: String?) -> (traceID: String, spanID: String)? {
        guard let parts = header?.trimmingCharacters(in: .whitespaces).lowercased().split(separator: "-"),
              parts.count >= 4, parts[1].count == 32, parts[2].count == 16,
              parts[1].allSatisfy(\.isHexDigit), parts[2].allSatisfy(\.isHexDigit),
              parts[1] != String(repeating: "0", count: 32), parts[2] != String(repeating: "0", count: 16)
        else { return nil }
        return (String(parts[1]), String(parts[2]))
    }

    /// Header metadata merged into a `run:start`: application and environment fill in what the event leaves
    /// out; the other header fields and extra-meta keys are written into `info`, replacing its own.
    static func merge(_ metadata: RequestMetadata, trace: (traceID: String, spanID: String)? = nil,
                      into event: WorkflowEvent) -> WorkflowEvent {
        guard case .runStart(var start) = event else { return event }
        // A run started inside a traced request joins that trace unless the event names its own.
        if start.traceID == nil, start.spanID == nil, let trace {
            start.traceID = trace.traceID
            start.spanID = trace.spanID
        }
        start.application = start.application ?? metadata.application
        start.environment = start.environment ?? metadata.environment
        var info = start.info ?? [:]
        let fields: [(String, JSONValue?)] = [
            ("organization_id", metadata.organizationID.map(JSONValue.string)),
            ("project_id", metadata.projectID.map(JSONValue.string)),
            ("user_id", metadata.userID.map(JSONValue.string)),
            ("workflow_id", metadata.workflowID.map(JSONValue.string)),
            ("workflow_name", metadata.workflowName.map(JSONValue.string)),
            ("step_index", metadata.stepIndex.map { .integer(Int64($0)) }),
            ("prompt_id", metadata.promptID.map(JSONValue.string)),
            ("prompt_version", metadata.promptVersion.map { .integer(Int64($0)) }),
        ]
        for (key, value) in fields { if let value { info[key] = value } }
        for (key, value) in metadata.extra { info[key] = value }
        start.info = info
        return .runStart(start)
    }
}
