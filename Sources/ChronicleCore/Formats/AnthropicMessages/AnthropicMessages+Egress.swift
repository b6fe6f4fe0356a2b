/// Conversions for Anthropic-format upstreams: the gateway's internal request to a Messages API request,
/// and the upstream's answers back to the internal response and chunks.
enum AnthropicConversion {
    /// The Messages API request for an internal request (model prefix already stripped). Every system
    /// message goes to `system`, `stop` to `stop_sequences`.
    static func request(_ request: ChatRequest) throws(ProviderError) -> AnthropicMessagesRequest {
        var systemBlocks: [AnthropicContentBlock] = []
        if let system = request.system, !system.isEmpty { systemBlocks.append(.text(.init(text: system))) }
        var turns: [(role: String, blocks: [AnthropicContentBlock])] = []
        // Anthropic expects the roles to alternate, so consecutive turns of one role are merged.
        func append(_ role: String, _ blocks: [AnthropicContentBlock]) {
            guard !blocks.isEmpty else { return }
            if let last = turns.last, last.role == role {
                turns[turns.count - 1].blocks += blocks
            } else {
                turns.append((role, blocks))
            }
        }

        for message in request.messages {
            let role = message.role ?? "user"
            var blocks = try contentBlocks(message)
            if let cache = message.cacheControl, !blocks.isEmpty {
                // Anthropic marks cache breakpoints on content blocks, not messages.
                blocks[blocks.count - 1].setMember("cache_control", cache)
            }
            switch role {
            case "system", "developer":
                systemBlocks += blocks
            case "tool":
                append("user", [.toolResult(.init(
                    toolUseID: message.toolCallID ?? "", content: .blocks(blocks),
                    isError: message.unknownFields["is_error"] == true ? true : nil))])
            case "assistant":
                for call in message.toolCalls ?? [] {
                    let input: JSONValue
                    if let arguments = call.function.arguments, !arguments.trimmingCharacters(in: .whitespaces).isEmpty {
                        do {
                            input = try JSONCoding.decode(JSONValue.self, from: Array(arguments.utf8))
                        } catch {
                            throw ProviderError(kind: .transformingRequest,
                                                message: "Tool call \(call.id ?? "") has arguments that are not JSON")
                        }
                    } else {
                        input = [:]
                    }
                    blocks.append(.toolUse(.init(id: call.id ?? "", name: call.function.name ?? "", input: input)))
                }
                // Thinking goes back first and unchanged: Anthropic checks its signature and its place.
                let thinking = (message.thinkingBlocks ?? []).map(AnthropicContentBlock.thinking)
                append("assistant", thinking + blocks)
            default:
                append("user", blocks)
            }
        }

        var body = AnthropicMessagesRequest(
            model: request.model ?? "", messages: turns.map { AnthropicMessage(role: $0.role, content: .blocks($0.blocks)) },
            maxTokens: request.maxTokens ?? request.maxCompletionTokens ?? 4096)
        if !systemBlocks.isEmpty {
            let plain = systemBlocks.allSatisfy { $0.member("cache_control") == nil }
            body.system = plain
                ? .text(systemBlocks.compactMap { block in
                    if case .text(let text) = block { return text.text }
                    return nil
                }.joined(separator: "\n\n"))
                : .blocks(systemBlocks)
        }
        if request.isStreaming { body.stream = true }
        body.temperature = request.temperature
        body.topP = request.topP
        if let stop = request.stop, !stop.isEmpty { body.stopSequences = stop }
        if let user = request.user { body.metadata = .init(userID: user) }
        body.thinking = request.unknownFields["thinking"]
        for key in ["top_k", "service_tier"] {
            if let value = request.unknownFields[key] { body.unknownFields[key] = value }
        }
        if let tools = request.tools, !tools.isEmpty {
            body.tools = tools.map { tool in
                var converted = AnthropicTool(
                    name: tool.function.name, description: tool.function.description,
                    inputSchema: tool.function.parameters ?? ["type": "object", "properties": [:]])
                if let cache = tool.unknownFields["cache_control"] { converted.unknownFields["cache_control"] = cache }
                return converted
            }
        }
        var choice: AnthropicToolChoice?
        switch request.toolChoice {
        case .string("none")?: choice = .init(type: "none")
        case .string("auto")?: choice = .init(type: "auto")
        case .string("required")?: choice = .init(type: "any")
        case .object(let object)?:
            if let name = object["function"]?["name"]?.stringValue { choice = .init(type: "tool", name: name) }
        default: break
        }
        if request.unknownFields["parallel_tool_calls"] == false, body.tools != nil {
            choice = choice ?? .init(type: "auto")
            choice?.disableParallelToolUse = true
        }
        body.toolChoice = choice
        return body
    }

    /// Content blocks for a message: text (empty text left out, the speaker's name folded in), images, and
    /// Anthropic-native blocks (document, …) as they came.
    static func contentBlocks(_ message: ChatMessage) throws(ProviderError) -> [AnthropicContentBlock] {
        var blocks: [AnthropicContentBlock] = []
        for piece in message.contentPieces {
            switch piece {
            case .text(let text): blocks.append(.text(.init(text: text)))
            case .imageURL(let url): blocks.append(try image(url))
            case .other(let part): blocks.append(.other(part.fields))
            }
        }
        return blocks
    }

    /// An image block from a web URL or a base64 `data:` URL.
    static func image(_ url: String) throws(ProviderError) -> AnthropicContentBlock {
        guard url.hasPrefix("data:") else { return .image(.init(source: .url(url))) }
        guard let data = DataURL(url) else {
            throw ProviderError(kind: .transformingRequest, message: "Image data URLs must be base64 encoded")
        }
        return .image(.init(source: .base64(mediaType: data.mediaType, data: data.base64)))
    }

    /// The internal response for a Messages API response.
    static func response(_ message: AnthropicMessagesResponse, requestedModel: String) -> ChatResponse {
        var texts: [String] = []
        var thinking: [String] = []
        var thinkingBlocks: [ThinkingBlock] = []
        var calls: [ToolCall] = []
        for block in message.content {
            switch block {
            case .text(let text): texts.append(text.text)
            case .thinking(let block):
                if let text = block.thinking { thinking.append(text) }
                thinkingBlocks.append(block)
            case .toolUse(let call):
                let arguments = (try? JSONCoding.encodeToString(call.input)) ?? "{}"
                calls.append(ToolCall(id: call.id, type: "function", function: FunctionCall(name: call.name, arguments: arguments)))
            case .image, .toolResult, .document, .other:
                break
            }
        }
        var reply = ChatMessage(role: "assistant", content: texts.isEmpty ? nil : .text(texts.joined()),
                                toolCalls: calls.isEmpty ? nil : calls)
        if !thinking.isEmpty { reply.reasoningContent = thinking.joined() }
        if !thinkingBlocks.isEmpty { reply.thinkingBlocks = thinkingBlocks }
        var usage = message.usage.map(self.usage)
        if let counted = usage { usage?.totalTokens = (counted.promptTokens ?? 0) + (counted.completionTokens ?? 0) }
        return ChatResponse(
            id: message.id, created: unixNow(), model: message.model ?? requestedModel,
            choices: [ChatChoice(index: 0, message: reply, finishReason: message.stopReason.map(finishReason) ?? .stop)],
            usage: usage)
    }

    /// Usage in OpenAI's terms: prompt tokens include cache reads and writes, which are also detailed.
    static func usage(_ value: AnthropicUsage) -> Usage {
        let input = value.inputTokens
        let cacheRead = value.cacheReadInputTokens
        let cacheWrite = value.cacheCreationInputTokens
        var usage = Usage(completionTokens: value.outputTokens)
        if input != nil || cacheRead != nil || cacheWrite != nil {
            usage.promptTokens = (input ?? 0) + (cacheRead ?? 0) + (cacheWrite ?? 0)
        }
        if cacheRead != nil || cacheWrite != nil {
            usage.unknownFields["prompt_tokens_details"] = [
                "cached_tokens": .integer(Int64(cacheRead ?? 0)),
                "cache_creation_tokens": .integer(Int64(cacheWrite ?? 0)),
            ]
        }
        return usage
    }

    static func finishReason(_ reason: String) -> FinishReason {
        switch reason {
        case "end_turn", "stop_sequence", "pause_turn": return .stop
        case "max_tokens": return .length
        case "tool_use": return .toolCalls
        case "refusal": return .contentFilter
        default: return FinishReason(rawValue: reason)
        }
    }

    /// An upstream `error` (body or stream event): its type decides the kind.
    static func providerError(_ error: AnthropicError) -> ProviderError {
        let body: JSONValue = ["type": "error", "error": ["type": .string(error.type), "message": .string(error.message)]]
        switch error.type {
        case "invalid_request_error": return ProviderError(kind: .badInput, status: 400, body: body, message: error.message)
        case "authentication_error", "permission_error":
            return ProviderError(kind: .authRejected, status: 401, body: body, message: error.message)
        case "rate_limit_error": return ProviderError(kind: .rateLimit, status: 429, body: body, message: error.message)
        case "overloaded_error": return ProviderError(kind: .server, status: 529, body: body, message: error.message)
        default: return ProviderError(kind: .server, status: 500, body: body, message: error.message)
        }
    }
}

/// An upstream's non-streamed answer: the message, or an error body.
enum AnthropicReply: Decodable {
    case message(AnthropicMessagesResponse)
    case error(AnthropicError)

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        if try c.decodeIfPresent(String.self, "type") == "error" {
            self = .error(try c.decodeIfPresent(AnthropicError.self, "error")
                ?? AnthropicError(.api, message: "The provider returned an error"))
        } else {
            self = .message(try AnthropicMessagesResponse(from: decoder))
        }
    }
}

extension AnthropicContentBlock {
    /// A member the block carries beyond the modelled ones (`cache_control`, `citations`, …).
    func member(_ key: String) -> JSONValue? {
        switch self {
        case .text(let block): return block.unknownFields[key]
        case .image(let block): return block.unknownFields[key]
        case .toolUse(let block): return block.unknownFields[key]
        case .toolResult(let block): return block.unknownFields[key]
        case .thinking(let block): return block.fields[key]
        case .document(let fields), .other(let fields): return fields[key]
        }
    }

    /// Sets a member beyond the modelled ones (`cache_control`, …).
    mutating func setMember(_ key: String, _ value: JSONValue?) {
        switch self {
        case .text(var block): block.unknownFields[key] = value; self = .text(block)
        case .image(var block): block.unknownFields[key] = value; self = .image(block)
        case .toolUse(var block): block.unknownFields[key] = value; self = .toolUse(block)
        case .toolResult(var block): block.unknownFields[key] = value; self = .toolResult(block)
        case .thinking(var block): block.fields[key] = value; self = .thinking(block)
        case .document(var fields): fields[key] = value; self = .document(fields)
        case .other(var fields): fields[key] = value; self = .other(fields)
        }
    }
}
