import ChronicleCore
import Foundation

extension EventRow {
    /// Whether the row is an LLM call (not a generic workflow event).
    public var isCall: Bool { eventType == "chronicle_llm_request" }

    /// The row as `GET /v1/calls` lists it (the same members as ``ReadColumns/callSummary``), built from the
    /// record rather than read back, so that the live tail can push a stored call without a query.
    public var summaryJSON: JSONValue {
        func uuid(_ id: UUID?) -> JSONValue { id.map { .string($0.uuidString.lowercased()) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func int(_ value: Int64?) -> JSONValue { value.map(JSONValue.integer) ?? .null }
        func json(_ text: String) -> JSONValue {
            (try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8))) ?? .string(text)
        }
        let object: [String: JSONValue] = [
            "id": uuid(id), "event_type": .string(eventType), "provider": text(provider), "model": text(model),
            "application": text(application), "environment": text(environment),
            "request_user_id": text(requestUserID), "workflow_id": text(workflowID),
            "workflow_name": text(workflowName), "run_id": uuid(runID), "step_id": uuid(stepID),
            "step_index": int(stepIndex), "prompt_id": text(promptID), "prompt_version": int(promptVersion),
            "retries": int(retries), "rate_limited": rateLimited.map(JSONValue.bool) ?? .null,
            "request_latency_ms": int(requestLatencyMs), "total_latency_ms": int(totalLatencyMs),
            "input_tokens": int(inputTokens), "output_tokens": int(outputTokens), "total_tokens": int(totalTokens),
            "cached_tokens": int(cachedTokens), "reasoning_tokens": int(reasoningTokens),
            "http_status": int(httpStatus), "streamed": streamed.map(JSONValue.bool) ?? .null,
            "overhead_ms": overheadMs.map(JSONValue.double) ?? .null, "gateway_key": text(gatewayKey),
            "cost_usd": costUSD.map(JSONValue.double) ?? .null,
            "error": json(error), "meta": json(meta), "created_at": .string(RFC3339.format(createdAt)),
        ]
        return .object(object)
    }
}
