/// Turns the gateway's internal chunks into an OpenAI Responses API answer, for clients that speak the
/// Responses API to a provider that does not. It does no I/O: each call returns the events to write, in
/// order (``ResponsesStreamEvent/serverSentEvent()`` gives their bytes), and ``response`` is the answer
/// as a whole, for a client that did not stream.
///
/// The events form the sequence OpenAI's SDKs accumulate: `response.created` and `response.in_progress`
/// first; then each output item opened with `response.output_item.added` (a message also with
/// `response.content_part.added`), filled with `response.output_text.delta` or
/// `response.function_call_arguments.delta`, and closed with the matching `.done` events; then
/// `response.completed` (or `response.incomplete` when the output limit or a content filter cut the answer
/// short) holding the whole response with its usage. A failure after the start ends the stream with
/// `response.failed`. Every event carries the next `sequence_number`.
///
/// ```swift
/// var translator = ResponsesStreamTranslator(echo: requestMembers, requestedModel: "claude-sonnet-4-5",
///                                            idSeed: "0f3a", createdAt: 1_717_000_000)
/// for chunk in chunks { write(translator.receive(chunk)) }
/// write(translator.finish())
/// ```
public struct ResponsesStreamTranslator: Sendable {
    /// Where the stream is.
    public enum State: Sendable, Hashable {
        /// Nothing written yet: a failure now can still be an HTTP error status.
        case idle
        /// `response.created` is written.
        case streaming
        /// `response.completed`, `response.incomplete` or `response.failed` is written; nothing follows.
        case finished
    }

    /// One output item as far as it has come.
    enum Item: Sendable, Hashable {
        case message(id: String, text: String, done: Bool)
        case functionCall(id: String, callID: String, name: String, arguments: String, done: Bool)
        /// The provider's reasoning text, with the signature that lets it be sent back (Anthropic's).
        case reasoning(id: String, text: String, signature: String?, done: Bool)

        var isDone: Bool {
            switch self {
            case .message(_, _, let done), .functionCall(_, _, _, _, let done), .reasoning(_, _, _, let done): return done
            }
        }
    }

    /// Marks a reasoning item's `encrypted_content` as the gateway's: the provider's signature, which the
    /// client sends back with the item so that the next turn can carry the signed thinking (see
    /// ``ResponsesIngress/chatRequest(_:for:nativeResponseFormat:)``).
    public static let signaturePrefix = "chronicle.thinking.v1:"

    public private(set) var state = State.idle
    /// The request's members, echoed in the response as OpenAI does.
    let echo: [String: JSONValue]
    let requestedModel: String
    let idSeed: String
    let createdAt: Int64
    var model: String?
    var sequence = 0
    var items: [Item] = []
    /// Tool-call ordinal → its item's index; the structured-output stand-in maps to the message instead.
    var toolItems: [Int: Int] = [:]
    /// The open message's item index.
    var openMessage: Int?
    /// The open reasoning item's index.
    var openReasoning: Int?
    var finishReason: FinishReason?
    var usage: Usage?
    var failure: ResponsesError?

    /// - Parameters:
    ///   - echo: the request's members (`instructions`, `tools`, `text`, …), echoed in the response.
    ///   - requestedModel: the model named in the answer when the chunks name none.
    ///   - idSeed: makes the response's and items' ids (`resp_SEED`, `msg_SEED_1`, …).
    ///   - createdAt: the response's `created_at`, in Unix seconds.
    public init(echo: [String: JSONValue], requestedModel: String, idSeed: String, createdAt: Int64) {
        self.echo = echo
        self.requestedModel = requestedModel
        self.idSeed = idSeed
        self.createdAt = createdAt
    }

    /// Whether a call to ``ResponsesIngress/structuredOutputTool`` is the stand-in for `text.format`: the
    /// client asked for structured output and has no tool of that name itself (whose calls stay calls).
    private var structuredOutputIsStandIn: Bool {
        guard echo["text"]?["format"]?["type"]?.stringValue?.hasPrefix("json") == true else { return false }
        let tools = echo["tools"]?.arrayValue ?? []
        return !tools.contains { $0["name"]?.stringValue == ResponsesIngress.structuredOutputTool }
    }

    /// The events for one chunk. Only the first choice is translated: a response has one answer.
    public mutating func receive(_ received: ChatChunk) -> [ResponsesStreamEvent] {
        guard state != .finished else { return [] }
        let chunk = (try? received.decoded()) ?? received
        var events: [ResponsesStreamEvent] = []
        if model == nil, let named = chunk.model, !named.isEmpty { model = named }
        start(into: &events)
        if let chunkUsage = chunk.usage {
            if usage == nil { usage = chunkUsage } else { usage?.merge(chunkUsage) }
        }
        guard let choice = chunk.choices.first(where: { $0.index == 0 }) else { return events }
        if let blocks = choice.delta.thinkingBlocks, !blocks.isEmpty {
            for block in blocks where block.type == "thinking" {
                if let text = block.thinking, !text.isEmpty { appendReasoning(text, into: &events) }
                if let signature = block.signature, !signature.isEmpty { sign(signature, into: &events) }
            }
        } else if let reasoning = choice.delta.reasoningContent, !reasoning.isEmpty {
            appendReasoning(reasoning, into: &events)
        }
        if let text = choice.delta.content?.text, !text.isEmpty {
            appendText(text, into: &events)
        }
        for (position, call) in (choice.delta.toolCalls ?? []).enumerated() {
            toolCall(call, ordinal: call.index ?? position, into: &events)
        }
        if let reason = choice.finishReason { finishReason = reason }
        return events
    }

    /// The closing events: every open item closed, then `response.completed` or `response.incomplete`.
    public mutating func finish() -> [ResponsesStreamEvent] {
        guard state != .finished else { return [] }
        var events: [ResponsesStreamEvent] = []
        start(into: &events)
        closeAll(into: &events)
        state = .finished
        let snapshot = response
        let type = snapshot["status"]?.stringValue == "incomplete" ? "response.incomplete" : "response.completed"
        events.append(event(type, ["response": snapshot]))
        return events
    }

    /// The events that end the stream after a failure: `response.failed` holding the error (with
    /// `response.created` first if nothing was written yet).
    public mutating func fail(_ error: ResponsesError) -> [ResponsesStreamEvent] {
        guard state != .finished else { return [] }
        var events: [ResponsesStreamEvent] = []
        start(into: &events)
        failure = error
        state = .finished
        events.append(event("response.failed", ["response": response]))
        return events
    }

    // MARK: The response

    /// The response as it stands: `in_progress` while streaming, then `completed`, `incomplete` (with
    /// the reason) or `failed` (with the error), its output items and its usage.
    public var response: JSONValue {
        var object = echoed
        object["id"] = .string("resp_\(idSeed)")
        object["object"] = "response"
        object["created_at"] = .integer(createdAt)
        object["model"] = .string(model ?? requestedModel)
        object["output"] = .array(items.map(itemJSON))
        object["error"] = failure.map { ["code": .string($0.code ?? "server_error"), "message": .string($0.message)] } ?? .null
        object["incomplete_details"] = .null
        if failure != nil {
            object["status"] = "failed"
        } else if state != .finished {
            object["status"] = "in_progress"
        } else if let reason = incompleteReason {
            object["status"] = "incomplete"
            object["incomplete_details"] = ["reason": .string(reason)]
        } else {
            object["status"] = "completed"
        }
        object["usage"] = state == .finished ? usageJSON : .null
        return .object(object)
    }

    /// Why the answer is incomplete, in OpenAI's words, if it is.
    var incompleteReason: String? {
        switch finishReason?.rawValue {
        case "length"?: return "max_output_tokens"
        case "content_filter"?: return "content_filter"
        default: return nil
        }
    }

    /// The request's settings as OpenAI echoes them in a response, with its defaults where absent.
    var echoed: [String: JSONValue] {
        func member(_ name: String, _ fallback: JSONValue) -> JSONValue {
            guard let value = echo[name], !value.isNull else { return fallback }
            return value
        }
        return [
            "instructions": member("instructions", .null),
            "max_output_tokens": member("max_output_tokens", .null),
            "metadata": member("metadata", [:]),
            "parallel_tool_calls": member("parallel_tool_calls", true),
            "previous_response_id": .null,
            "reasoning": member("reasoning", ["effort": .null, "summary": .null]),
            "store": false,
            "temperature": member("temperature", 1.0),
            "text": member("text", ["format": ["type": "text"]]),
            "tool_choice": member("tool_choice", "auto"),
            "tools": member("tools", []),
            "top_p": member("top_p", 1.0),
            "truncation": "disabled",
            "user": member("user", .null),
        ]
    }

    var usageJSON: JSONValue {
        guard let usage else { return .null }
        let input = usage.promptTokens ?? 0
        let output = usage.completionTokens ?? 0
        return [
            "input_tokens": .integer(Int64(input)),
            "input_tokens_details": ["cached_tokens": .integer(Int64(usage.cachedTokens ?? 0))],
            "output_tokens": .integer(Int64(output)),
            "output_tokens_details": ["reasoning_tokens": .integer(Int64(usage.reasoningTokens ?? 0))],
            "total_tokens": .integer(Int64(usage.totalTokens ?? input + output)),
        ]
    }

    func itemJSON(_ item: Item) -> JSONValue {
        switch item {
        case .message(let id, let text, let done):
            return [
                "id": .string(id), "type": "message", "role": "assistant",
                "status": done ? "completed" : "in_progress",
                "content": done || !text.isEmpty ? [Self.textPart(text)] : [],
            ]
        case .functionCall(let id, let callID, let name, let arguments, let done):
            return [
                "id": .string(id), "type": "function_call", "call_id": .string(callID), "name": .string(name),
                "arguments": .string(arguments), "status": done ? "completed" : "in_progress",
            ]
        case .reasoning(let id, let text, let signature, let done):
            return [
                "id": .string(id), "type": "reasoning", "summary": [],
                "content": done || !text.isEmpty ? [["type": "reasoning_text", "text": .string(text)]] : [],
                "encrypted_content": signature.map { .string(Self.signaturePrefix + $0) } ?? .null,
                "status": done ? "completed" : "in_progress",
            ]
        }
    }

    static func textPart(_ text: String) -> JSONValue {
        ["type": "output_text", "text": .string(text), "annotations": [], "logprobs": []]
    }

    // MARK: Steps

    private mutating func event(_ type: String, _ members: [String: JSONValue]) -> ResponsesStreamEvent {
        defer { sequence += 1 }
        return ResponsesStreamEvent(type: type, sequenceNumber: sequence, members: members)
    }

    private mutating func start(into events: inout [ResponsesStreamEvent]) {
        guard state == .idle else { return }
        state = .streaming
        let snapshot = response
        events.append(event("response.created", ["response": snapshot]))
        events.append(event("response.in_progress", ["response": snapshot]))
    }

    private mutating func appendText(_ text: String, into events: inout [ResponsesStreamEvent]) {
        let index = ensureMessage(into: &events)
        guard case .message(let id, let sofar, _) = items[index] else { return }
        items[index] = .message(id: id, text: sofar + text, done: false)
        events.append(event("response.output_text.delta", [
            "item_id": .string(id), "output_index": .integer(Int64(index)), "content_index": 0,
            "delta": .string(text), "logprobs": [],
        ]))
    }

    private mutating func appendReasoning(_ text: String, into events: inout [ResponsesStreamEvent]) {
        let index: Int
        if let openReasoning {
            index = openReasoning
        } else {
            closeAll(into: &events)
            index = items.count
            items.append(.reasoning(id: "rs_\(idSeed)_\(index + 1)", text: "", signature: nil, done: false))
            openReasoning = index
            events.append(event("response.output_item.added", ["output_index": .integer(Int64(index)), "item": itemJSON(items[index])]))
        }
        guard case .reasoning(let id, let sofar, let signature, _) = items[index] else { return }
        items[index] = .reasoning(id: id, text: sofar + text, signature: signature, done: false)
        events.append(event("response.reasoning_text.delta", [
            "item_id": .string(id), "output_index": .integer(Int64(index)), "content_index": 0, "delta": .string(text),
        ]))
    }

    /// A signature ends the reasoning it signs: more reasoning opens a new item.
    private mutating func sign(_ signature: String, into events: inout [ResponsesStreamEvent]) {
        guard let index = openReasoning, case .reasoning(let id, let text, _, _) = items[index] else { return }
        items[index] = .reasoning(id: id, text: text, signature: signature, done: false)
        closeReasoning(into: &events)
    }

    private mutating func closeReasoning(into events: inout [ResponsesStreamEvent]) {
        guard let index = openReasoning, case .reasoning(let id, let text, let signature, _) = items[index] else { return }
        openReasoning = nil
        items[index] = .reasoning(id: id, text: text, signature: signature, done: true)
        events.append(event("response.reasoning_text.done", [
            "item_id": .string(id), "output_index": .integer(Int64(index)), "content_index": 0, "text": .string(text),
        ]))
        events.append(event("response.output_item.done", ["output_index": .integer(Int64(index)), "item": itemJSON(items[index])]))
    }

    /// The open message's index, opening one (and closing the calls before it) if none is open.
    private mutating func ensureMessage(into events: inout [ResponsesStreamEvent]) -> Int {
        if let openMessage { return openMessage }
        closeAll(into: &events)
        let index = items.count
        let id = "msg_\(idSeed)_\(index + 1)"
        items.append(.message(id: id, text: "", done: false))
        openMessage = index
        events.append(event("response.output_item.added", ["output_index": .integer(Int64(index)), "item": itemJSON(items[index])]))
        events.append(event("response.content_part.added", [
            "item_id": .string(id), "output_index": .integer(Int64(index)), "content_index": 0, "part": Self.textPart(""),
        ]))
        return index
    }

    private mutating func toolCall(_ call: ToolCall, ordinal: Int, into events: inout [ResponsesStreamEvent]) {
        let arguments = call.function.arguments ?? ""
        if let index = toolItems[ordinal] {
            guard !arguments.isEmpty else { return }
            switch items[index] {
            case .message, .reasoning:
                appendText(arguments, into: &events)
            case .functionCall(let id, let callID, let name, let sofar, let done):
                items[index] = .functionCall(id: id, callID: callID, name: name, arguments: sofar + arguments, done: done)
                events.append(event("response.function_call_arguments.delta", [
                    "item_id": .string(id), "output_index": .integer(Int64(index)), "delta": .string(arguments),
                ]))
            }
            return
        }
        let name = call.function.name ?? ""
        if name == ResponsesIngress.structuredOutputTool, structuredOutputIsStandIn {
            // The stand-in for structured output: its arguments are the answer's text.
            toolItems[ordinal] = ensureMessage(into: &events)
            if !arguments.isEmpty { appendText(arguments, into: &events) }
            return
        }
        closeMessage(into: &events)
        closeReasoning(into: &events)
        let index = items.count
        let id = "fc_\(idSeed)_\(index + 1)"
        let callID = call.id ?? "call_\(idSeed)_\(index + 1)"
        items.append(.functionCall(id: id, callID: callID, name: name, arguments: "", done: false))
        toolItems[ordinal] = index
        events.append(event("response.output_item.added", ["output_index": .integer(Int64(index)), "item": itemJSON(items[index])]))
        if !arguments.isEmpty {
            items[index] = .functionCall(id: id, callID: callID, name: name, arguments: arguments, done: false)
            events.append(event("response.function_call_arguments.delta", [
                "item_id": .string(id), "output_index": .integer(Int64(index)), "delta": .string(arguments),
            ]))
        }
    }

    private mutating func closeMessage(into events: inout [ResponsesStreamEvent]) {
        guard let index = openMessage, case .message(let id, let text, _) = items[index] else { return }
        openMessage = nil
        items[index] = .message(id: id, text: text, done: true)
        let position: [String: JSONValue] = ["item_id": .string(id), "output_index": .integer(Int64(index)), "content_index": 0]
        events.append(event("response.output_text.done", position.merging(["text": .string(text), "logprobs": []]) { $1 }))
        events.append(event("response.content_part.done", position.merging(["part": Self.textPart(text)]) { $1 }))
        events.append(event("response.output_item.done", ["output_index": .integer(Int64(index)), "item": itemJSON(items[index])]))
    }

    /// Closes every open item, in output order.
    private mutating func closeAll(into events: inout [ResponsesStreamEvent]) {
        for index in items.indices where !items[index].isDone {
            switch items[index] {
            case .message:
                closeMessage(into: &events)
            case .reasoning:
                closeReasoning(into: &events)
            case .functionCall(let id, let callID, let name, let arguments, _):
                items[index] = .functionCall(id: id, callID: callID, name: name, arguments: arguments, done: true)
                events.append(event("response.function_call_arguments.done", [
                    "item_id": .string(id), "output_index": .integer(Int64(index)), "name": .string(name),
                    "arguments": .string(arguments),
                ]))
                events.append(event("response.output_item.done", ["output_index": .integer(Int64(index)), "item": itemJSON(items[index])]))
            }
        }
    }
}
