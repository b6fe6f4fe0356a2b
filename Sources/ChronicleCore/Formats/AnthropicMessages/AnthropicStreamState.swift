/// Folds an Anthropic-format upstream's stream events into the gateway's internal chunks.
struct AnthropicStreamState: ServerSentEventHandler {
    let requestedModel: String
    var id: String?
    var model: String?
    let created = unixNow()
    var usage = Usage()
    /// Content block index → tool-call ordinal, for tool_use blocks.
    var toolIndexes: [Int: Int] = [:]

    init(requestedModel: String) {
        self.requestedModel = requestedModel
    }

    func chunk(_ delta: ChatMessage, finishReason: FinishReason? = nil, usage: Usage? = nil) -> ChatChunk {
        ChatChunk(id: id, created: created, model: model ?? requestedModel,
                  choices: [ChunkChoice(index: 0, delta: delta, finishReason: finishReason)], usage: usage)
    }

    mutating func handle(_ event: ServerSentEvent) throws(ProviderError) -> ChatStreamEvent? {
        try convert(event).map(ChatStreamEvent.chunk)
    }

    mutating func finish() throws(ProviderError) -> [ChatStreamEvent] {
        [.responseInfo(ResponseInfo(model: model ?? requestedModel))]
    }

    /// The event's data, typed. Data without a `type` takes it from the SSE event name.
    static func decode(_ event: ServerSentEvent) throws(ProviderError) -> AnthropicStreamEvent {
        do {
            return try JSONCoding.decode(AnthropicStreamEvent.self, from: event.data)
        } catch {
            guard let name = event.event, var object = (try? JSONCoding.decode(JSONValue.self, from: event.data))?.objectValue,
                  object["type"] == nil
            else { return try decodeStreamedJSON(AnthropicStreamEvent.self, event.data) }
            object["type"] = .string(name)
            let bytes = (try? JSONCoding.encodeBytes(JSONValue.object(object))) ?? event.data
            return try decodeStreamedJSON(AnthropicStreamEvent.self, bytes)
        }
    }

    mutating func convert(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk? {
        switch try Self.decode(event) {
        case .messageStart(let message):
            id = message.id
            model = message.model
            if let start = message.usage { usage = AnthropicConversion.usage(start) }
            return chunk(ChatMessage(role: "assistant", content: .text("")))
        case .contentBlockStart(let index, let block):
            switch block {
            case .toolUse(let call):
                let ordinal = toolIndexes.count
                toolIndexes[index] = ordinal
                let toolCall = ToolCall(index: ordinal, id: call.id, type: "function",
                                        function: FunctionCall(name: call.name, arguments: ""))
                return chunk(ChatMessage(toolCalls: [toolCall]))
            case .text(let text):
                guard !text.text.isEmpty else { return nil }
                return chunk(ChatMessage(content: .text(text.text)))
            case .thinking(let thinking) where thinking.type == "redacted_thinking":
                var message = ChatMessage()
                message.thinkingBlocks = [thinking]
                return chunk(message)
            default:
                // A thinking block starts empty; its text and signature follow as deltas.
                return nil
            }
        case .contentBlockDelta(let index, let delta):
            switch delta {
            case .text(let text):
                return chunk(ChatMessage(content: .text(text)))
            case .inputJSON(let json):
                guard let ordinal = toolIndexes[index] else { return nil }
                let call = ToolCall(index: ordinal, type: nil, function: FunctionCall(arguments: json))
                return chunk(ChatMessage(toolCalls: [call]))
            case .thinking(let text):
                var message = ChatMessage()
                message.reasoningContent = text
                message.thinkingBlocks = [.thinking(text)]
                return chunk(message)
            case .signature(let signature):
                // A thinking block's last part: the client needs it to send the block back.
                var message = ChatMessage()
                message.thinkingBlocks = [.thinking("", signature: signature)]
                return chunk(message)
            case .other:
                return nil
            }
        case .messageDelta(let stopReason, _, let later):
            usage.merge(AnthropicConversion.usage(later))
            usage.totalTokens = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)
            return chunk(ChatMessage(), finishReason: stopReason.map(AnthropicConversion.finishReason) ?? .stop, usage: usage)
        case .error(let error):
            throw AnthropicConversion.providerError(error)
        case .contentBlockStop, .messageStop, .ping, .other:
            return nil
        }
    }
}
