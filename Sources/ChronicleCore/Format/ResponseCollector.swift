/// Folds streamed chunks into one complete response.
///
/// Content and tool-call arguments are concatenated; id, model, fingerprint and roles take the first
/// value seen; usage fields are overwritten by later chunks; `finish_reason` takes the last value seen.
public struct ResponseCollector: Sendable {
    private var response = ChatResponse(created: 0, choices: [])
    private var finishReasons: [FinishReason?] = []
    private var contents: [String?] = []
    private var reasoning: [String?] = []
    private var thinkingBlocks: [[ThinkingBlock]] = []
    /// Number of chunks folded in.
    public private(set) var chunkCount = 0
    private var replacedBySingle = false

    public init() {}

    /// Adds one streamed chunk (a relayed chunk's summary is decoded in full first).
    public mutating func add(_ chunk: ChatChunk) {
        // A summary that does not decode still counts; its content is lost, as a malformed chunk's would be.
        let chunk = chunk.isSummary ? (try? chunk.decoded()) ?? chunk : chunk
        chunkCount += 1
        if response.id == nil { response.id = chunk.id }
        if response.created == 0 { response.created = chunk.created }
        if response.model == nil { response.model = chunk.model }
        if response.systemFingerprint == nil { response.systemFingerprint = chunk.systemFingerprint }
        if let usage = chunk.usage {
            if response.usage == nil { response.usage = Usage() }
            response.usage?.merge(usage)
        }
        for (key, value) in chunk.unknownFields where response.unknownFields[key] == nil {
            response.unknownFields[key] = value
        }
        for choice in chunk.choices {
            guard choice.index >= 0 else { continue }
            growChoices(to: choice.index + 1)
            merge(choice, into: choice.index)
        }
    }

    /// Replaces everything collected so far with a complete response.
    public mutating func add(_ single: ChatResponse) {
        chunkCount += 1
        response = single
        replacedBySingle = true
    }

    /// The response folded so far.
    public var collected: ChatResponse {
        if replacedBySingle { return response }
        var result = response
        for index in result.choices.indices {
            if let content = contents[index] {
                result.choices[index].message.content = .text(content)
            }
            result.choices[index].message.reasoningContent = reasoning[index]
            result.choices[index].message.thinkingBlocks = thinkingBlocks[index].isEmpty ? nil : thinkingBlocks[index]
            result.choices[index].finishReason = finishReasons[index] ?? .stop
        }
        return result
    }

    private mutating func growChoices(to count: Int) {
        while response.choices.count < count {
            response.choices.append(
                ChatChoice(index: response.choices.count, message: ChatMessage(), finishReason: nil)
            )
            finishReasons.append(nil)
            contents.append(nil)
            reasoning.append(nil)
            thinkingBlocks.append([])
        }
    }

    private mutating func merge(_ choice: ChunkChoice, into index: Int) {
        let delta = choice.delta
        var message = response.choices[index].message
        if message.role == nil { message.role = delta.role }
        if message.name == nil { message.name = delta.name }
        if message.toolCallID == nil { message.toolCallID = delta.toolCallID }
        if let text = delta.content?.text {
            contents[index] = (contents[index] ?? "") + text
        }
        if let text = delta.reasoningContent {
            reasoning[index] = (reasoning[index] ?? "") + text
        }
        if let blocks = delta.thinkingBlocks { ThinkingBlock.append(blocks, to: &thinkingBlocks[index]) }
        for (key, value) in delta.unknownFields where message.unknownFields[key] == nil {
            message.unknownFields[key] = value
        }
        for call in delta.toolCalls ?? [] {
            // A fragment without an index cannot be placed; OpenAI-format streams always carry one.
            guard let callIndex = call.index, callIndex >= 0 else { continue }
            var calls = message.toolCalls ?? []
            while calls.count <= callIndex {
                calls.append(ToolCall(type: nil, function: FunctionCall()))
            }
            var merged = calls[callIndex]
            if merged.id == nil { merged.id = call.id }
            if merged.type == nil { merged.type = call.type }
            if merged.function.name == nil { merged.function.name = call.function.name }
            if let arguments = call.function.arguments {
                merged.function.arguments = (merged.function.arguments ?? "") + arguments
            }
            calls[callIndex] = merged
            message.toolCalls = calls
        }
        response.choices[index].message = message
        if let reason = choice.finishReason {
            finishReasons[index] = reason
        }
        for (key, value) in choice.unknownFields where !value.isNull {
            response.choices[index].unknownFields[key] = value
        }
    }
}
