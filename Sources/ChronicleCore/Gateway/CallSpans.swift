import Foundation
import Tracing

/// Span attributes for a call: Rust Chronicle's `llm.*` names beside the OpenTelemetry GenAI semantic
/// conventions (`gen_ai.*`). Never an API key: options are described field by field, not dumped.
enum CallSpans {
    static let requestSpanName = "llm.send_request"
    static let attemptSpanName = "llm.attempt"

    /// Attributes known when the call arrives.
    static func recordStart(_ span: any Span, id: UUID, request callRequest: CallRequest, options: RequestOptions,
                            tracePayloads: Bool) {
        guard span.isRecording else { return }
        if case .embeddings(let embeddings) = callRequest {
            return recordStart(span, id: id, embeddings: embeddings, options: options, tracePayloads: tracePayloads)
        }
        // A request kept as bytes is decoded only for a span that records its attributes.
        guard span.isRecording, let request = (try? callRequest.typed()) ?? untranslated(callRequest) else { return }
        span.updateAttributes { attributes in
            attributes["llm.item_id"] = id.uuidString.lowercased()
            attributes["gen_ai.operation.name"] = "chat"
            let model = options.model ?? request.model
            attributes["llm.request.model"] = model
            attributes["gen_ai.request.model"] = model
            attributes["llm.request.max_tokens"] = request.maxTokens ?? request.maxCompletionTokens
            attributes["gen_ai.request.max_tokens"] = request.maxTokens ?? request.maxCompletionTokens
            attributes["llm.temperature"] = request.temperature
            attributes["gen_ai.request.temperature"] = request.temperature
            attributes["llm.top_p"] = request.topP
            attributes["gen_ai.request.top_p"] = request.topP
            attributes["llm.frequency_penalty"] = request.frequencyPenalty
            attributes["gen_ai.request.frequency_penalty"] = request.frequencyPenalty
            attributes["llm.presence_penalty"] = request.presencePenalty
            attributes["gen_ai.request.presence_penalty"] = request.presencePenalty
            attributes["llm.user"] = request.user
            attributes["llm.stream"] = request.isStreaming
            if let stop = request.stop, !stop.isEmpty {
                attributes["gen_ai.request.stop_sequences"] = stop
                attributes["llm.chat.stop_sequences"] = json(stop)
            }
            recordMetadata(options.metadata, into: &attributes)
            if tracePayloads {
                attributes["llm.prompts"] = promptText(request.messages)
                attributes["llm.prompts.raw"] = json(request.messages)
            }
        }
    }

    /// Attributes of an embeddings call when it arrives: the GenAI `embeddings` operation, its model,
    /// input count, dimensions and encoding; the texts only with `trace_payloads`.
    private static func recordStart(_ span: any Span, id: UUID, embeddings: EmbeddingsRequest, options: RequestOptions,
                                    tracePayloads: Bool) {
        span.updateAttributes { attributes in
            attributes["llm.item_id"] = id.uuidString.lowercased()
            attributes["gen_ai.operation.name"] = "embeddings"
            let model = options.model ?? embeddings.model
            attributes["llm.request.model"] = model
            attributes["gen_ai.request.model"] = model
            attributes["gen_ai.request.encoding_formats"] = [embeddings.encodingFormat.rawValue]
            attributes["llm.embeddings.input_count"] = embeddings.input.count
            attributes["llm.embeddings.dimensions"] = embeddings.dimensions
            attributes["llm.user"] = embeddings.user
            attributes["llm.stream"] = false
            recordMetadata(options.metadata, into: &attributes)
            if tracePayloads, let texts = embeddings.input.texts { attributes["llm.prompts"] = texts.joined(separator: "\n\n") }
        }
    }

    /// The call's metadata as `llm.meta.*` attributes.
    private static func recordMetadata(_ meta: RequestMetadata, into attributes: inout SpanAttributes) {
        attributes["llm.meta.application"] = meta.application
        attributes["llm.meta.environment"] = meta.environment
        attributes["llm.meta.organization_id"] = meta.organizationID
        attributes["llm.meta.project_id"] = meta.projectID
        attributes["llm.meta.user_id"] = meta.userID
        attributes["llm.meta.workflow_id"] = meta.workflowID
        attributes["llm.meta.workflow_name"] = meta.workflowName
        attributes["llm.meta.run_id"] = meta.runID?.uuidString.lowercased()
        attributes["llm.meta.step"] = meta.stepID?.uuidString.lowercased()
        attributes["llm.meta.step_index"] = meta.stepIndex.map(Int.init)
        attributes["llm.meta.prompt_id"] = meta.promptID
        attributes["llm.meta.prompt_version"] = meta.promptVersion.map(Int.init)
        if !meta.extra.isEmpty { attributes["llm.meta.extra"] = json(JSONValue.object(meta.extra)) }
    }

    /// What a span can say of a Responses request that no translation carries (it asks for OpenAI's stored
    /// state or built-in tools, and so passes through): its model, settings and stream flag.
    static func untranslated(_ callRequest: CallRequest) -> ChatRequest? {
        guard case .responses(let call) = callRequest,
              let members = (try? JSONCoding.decode(JSONValue.self, from: call.wire.body.readableBytesView))?.objectValue
        else { return nil }
        var request = ChatRequest(model: call.wire.model, messages: [], stream: call.wire.isStreaming)
        request.maxTokens = members["max_output_tokens"]?.intValue
        request.temperature = members["temperature"]?.doubleValue
        request.topP = members["top_p"]?.doubleValue
        request.user = call.wire.userID
        return request
    }

    /// Attributes of a call that got an answer (possibly cut short by `error`).
    static func recordFinish(_ span: any Span, record: CallLogRecord, timeToFirstToken: Duration?, tracePayloads: Bool) {
        guard span.isRecording else { return }
        span.updateAttributes { attributes in
            attributes["llm.vendor"] = record.provider
            attributes["gen_ai.system"] = record.provider
            attributes["llm.retries"] = record.numRetries
            attributes["llm.rate_limited"] = record.wasRateLimited
            attributes["llm.total_latency"] = Int(record.totalLatency.milliseconds)
            if let upstream = record.upstreamLatency { attributes["llm.latency"] = Int(upstream.milliseconds) }
            if let overhead = record.overhead { attributes["chronicle.overhead_ms"] = overhead.fractionalMilliseconds }
            if let firstToken = timeToFirstToken {
                attributes["chronicle.time_to_first_token_ms"] = firstToken.fractionalMilliseconds
            }
            attributes["llm.status_code"] = record.httpStatus
            attributes["http.response.status_code"] = record.httpStatus
            // A relayed answer is decoded only for a span that records it.
            if let response = record.response {
                attributes["llm.response.model"] = response.model
                attributes["gen_ai.response.model"] = response.model
                attributes["gen_ai.response.id"] = response.id
                if let usage = response.usage {
                    attributes["llm.usage.prompt_tokens"] = usage.promptTokens
                    attributes["llm.usage.completion_tokens"] = usage.completionTokens
                    let total = usage.totalTokens ?? ((usage.promptTokens ?? 0) + (usage.completionTokens ?? 0))
                    attributes["llm.usage.total_tokens"] = total
                    attributes["gen_ai.usage.input_tokens"] = usage.promptTokens
                    attributes["gen_ai.usage.output_tokens"] = usage.completionTokens
                }
                let reasons = response.choices.compactMap { $0.finishReason?.rawValue }
                attributes["llm.finish_reason"] = reasons.first
                if !reasons.isEmpty { attributes["gen_ai.response.finish_reasons"] = reasons }
                if tracePayloads {
                    attributes["llm.completions"] = response.choices.compactMap { $0.message.text }.joined(separator: "\n\n")
                    attributes["llm.completions.raw"] = json(response.choices.map(\.message))
                }
            }
        }
        if let error = record.error { recordError(span, kind: error.kind, message: error.message) }
    }

    /// Marks a span failed with a structured kind (`error.type`) and message.
    static func recordError(_ span: any Span, kind: String, message: String) {
        guard span.isRecording else { return }
        span.attributes["error.type"] = kind
        span.attributes["error"] = message
        span.setStatus(SpanStatus(code: .error, message: message))
    }

    /// Rust Chronicle's `llm.prompts`: several messages as "name or role: content", blank-line separated.
    static func promptText(_ messages: [ChatMessage]) -> String? {
        if messages.count == 1 { return messages[0].text }
        let parts = messages.compactMap { message -> String? in
            guard let text = message.text else { return nil }
            return "\(message.name ?? message.role ?? "user"): \(text)"
        }
        return parts.joined(separator: "\n\n")
    }

    static func json(_ value: some Encodable) -> String? {
        try? JSONCoding.encodeToString(value)
    }
}
