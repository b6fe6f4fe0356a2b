import Foundation

/// Conversions for clients that speak the Anthropic Messages API: their request to the gateway's internal
/// request, and the internal response back to theirs. The stream goes through ``AnthropicStreamTranslator``.
public enum AnthropicIngress {
    /// The kind of provider a converted request goes to, which decides what becomes of the members the
    /// internal request has no field for.
    public enum Upstream: Sendable, Hashable {
        /// A provider that forwards the internal request's unknown members as they are (OpenAI-compatible
        /// APIs, which reject members they do not know): `thinking` becomes `reasoning_effort`, other
        /// Anthropic-only members (`top_k`, `service_tier`, `container`, …) are left out, a failed tool result
        /// says so in its text, and thinking blocks in the history are left out.
        case openAICompatible
        /// A provider whose converter reads only what it knows (Anthropic, Bedrock, Gemini, Ollama): every
        /// member is kept, `thinking` and `top_k` where the Anthropic converter reads them.
        case converting
    }

    /// Decodes a Messages API request body.
    /// - Throws: an `invalid_request_error` ``AnthropicError`` naming the member that is wrong.
    public static func decode(_ body: some Collection<UInt8>) throws(AnthropicError) -> AnthropicMessagesRequest {
        let request: AnthropicMessagesRequest
        do {
            request = try JSONCoding.decode(AnthropicMessagesRequest.self, from: body)
        } catch {
            throw AnthropicError(.invalidRequest, message: describeDecodingError(error))
        }
        try validate(request)
        return request
    }

    /// The checks Anthropic makes before it looks at a request, so that a translated call fails the way a
    /// direct one would.
    static func validate(_ request: AnthropicMessagesRequest) throws(AnthropicError) {
        guard !request.model.isEmpty else { throw AnthropicError(.invalidRequest, message: "model: must not be empty") }
        guard request.maxTokens >= 1 else {
            throw AnthropicError(.invalidRequest, message: "max_tokens: must be at least 1")
        }
        for (index, message) in request.messages.enumerated() where message.role != "user" && message.role != "assistant" {
            throw AnthropicError(.invalidRequest,
                                 message: "messages[\(index)].role: must be \"user\" or \"assistant\", not \"\(message.role)\"")
        }
        if let choice = request.toolChoice {
            guard ["auto", "any", "tool", "none"].contains(choice.type) else {
                throw AnthropicError(.invalidRequest,
                                     message: "tool_choice.type: must be auto, any, tool or none, not \"\(choice.type)\"")
            }
            if choice.type == "tool", choice.name?.isEmpty ?? true {
                throw AnthropicError(.invalidRequest, message: "tool_choice.name: required when tool_choice.type is \"tool\"")
            }
        }
    }

    // MARK: Request

    /// The internal request for an Anthropic request. `metadata.user_id` becomes the request's `user`.
    /// - Throws: an `invalid_request_error` ``AnthropicError`` when the request holds something the
    ///   internal request cannot say (a server tool, a tool call in a user turn, …).
    public static func chatRequest(_ request: AnthropicMessagesRequest, for upstream: Upstream) throws(AnthropicError)
        -> ChatRequest
    {
        try validate(request)
        var messages: [ChatMessage] = []
        if let system = request.system, system != .text("") {
            var message = try userMessage(system.blocks, path: "system", upstream: upstream)
            message.role = "system"
            messages.append(message)
        }
        for (index, turn) in request.messages.enumerated() {
            let path = "messages[\(index)].content"
            if turn.role == "assistant" {
                messages.append(try assistantMessage(turn.content.blocks, path: path, upstream: upstream))
                continue
            }
            // Tool results become tool messages, which must directly follow the assistant's calls; the rest
            // of the turn follows them as one user message.
            var rest: [AnthropicContentBlock] = []
            for block in turn.content.blocks {
                if case .toolResult(let result) = block {
                    messages.append(try toolMessage(result, path: path, upstream: upstream))
                } else {
                    rest.append(block)
                }
            }
            if case .text(let text) = turn.content {
                messages.append(ChatMessage(role: "user", content: .text(text)))
            } else if !rest.isEmpty {
                messages.append(try userMessage(rest, path: path, upstream: upstream))
            }
        }

        var chat = ChatRequest(model: request.model, messages: messages, stream: request.stream,
                               maxTokens: request.maxTokens, temperature: request.temperature,
                               stop: request.stopSequences)
        chat.topP = request.topP
        chat.user = request.metadata?.userID
        if request.stream == true, upstream == .openAICompatible {
            // The closing message_delta needs the usage, which OpenAI-compatible APIs send only when asked.
            chat.streamOptions = ["include_usage": true]
        }
        if let tools = request.tools, !tools.isEmpty {
            chat.tools = try tools.enumerated().map { (index, tool) throws(AnthropicError) in
                guard tool.isClientTool else {
                    throw AnthropicError(.invalidRequest, message: "tools[\(index)]: \"\(tool.type ?? "")\" is a server tool "
                        + "that only Anthropic runs, and the model's provider is not Anthropic")
                }
                var converted = Tool(function: FunctionDefinition(
                    name: tool.name, description: tool.description,
                    parameters: tool.inputSchema ?? ["type": "object", "properties": [:]]))
                if upstream == .converting, let cache = tool.unknownFields["cache_control"] {
                    converted.unknownFields["cache_control"] = cache
                }
                return converted
            }
        }
        if let choice = request.toolChoice {
            switch choice.type {
            case "any": chat.toolChoice = "required"
            case "tool": chat.toolChoice = ["type": "function", "function": ["name": .string(choice.name ?? "")]]
            case "none": chat.toolChoice = "none"
            default: chat.toolChoice = "auto"
            }
            if choice.disableParallelToolUse == true { chat.unknownFields["parallel_tool_calls"] = false }
        }
        switch upstream {
        case .converting:
            for (key, value) in request.unknownFields { chat.unknownFields[key] = value }
            if let thinking = request.thinking { chat.unknownFields["thinking"] = thinking }
        case .openAICompatible:
            if let effort = reasoningEffort(request.thinking) { chat.unknownFields["reasoning_effort"] = .string(effort) }
        }
        return chat
    }

    /// OpenAI's `reasoning_effort` for Anthropic's thinking budget: under 4k tokens low, under 16k medium,
    /// more high; none when thinking is off.
    static func reasoningEffort(_ thinking: JSONValue?) -> String? {
        guard let thinking, thinking["type"]?.stringValue == "enabled" else { return nil }
        let budget = thinking["budget_tokens"]?.intValue ?? 0
        return budget < 4096 ? "low" : budget < 16384 ? "medium" : "high"
    }

    /// A user (or system) message: text, images and passed-through blocks as parts.
    static func userMessage(_ blocks: [AnthropicContentBlock], path: String, upstream: Upstream) throws(AnthropicError)
        -> ChatMessage
    {
        var message = ChatMessage(role: "user")
        var parts: [ContentPart] = []
        for block in blocks {
            if let cache = block.member("cache_control") { message.cacheControl = cache }
            switch block {
            case .text(let text): parts.append(.text(text.text))
            case .image(let image): parts.append(try imagePart(image, path: path))
            case .document, .other:
                parts.append(try passedThrough(block, path: path, upstream: upstream))
            case .toolUse, .thinking:
                throw AnthropicError(.invalidRequest, message: "\(path): \(block.type) blocks belong in assistant messages")
            case .toolResult:
                throw AnthropicError(.invalidRequest, message: "\(path): tool_result blocks belong in user messages")
            }
        }
        message.content = content(parts)
        return message
    }

    /// Plain text for a single text block (what every provider takes), parts otherwise, so that several
    /// blocks stay apart.
    static func content(_ parts: [ContentPart]) -> MessageContent {
        if parts.count == 1, let text = parts[0].text { return .text(text) }
        return .parts(parts)
    }

    /// A block the internal request has no part type for. A converting provider gets it whole (the
    /// Anthropic converter sends it on as it came). For an OpenAI-compatible provider a document becomes
    /// what OpenAI takes: a base64 document a `file` part, a plain-text one a text part; any other block is
    /// refused by name rather than sent to be refused there with a vaguer message.
    static func passedThrough(_ block: AnthropicContentBlock, path: String, upstream: Upstream) throws(AnthropicError)
        -> ContentPart
    {
        let fields: [String: JSONValue]
        switch block {
        case .document(let document): fields = document
        case .other(let other): fields = other
        default: fields = [:]
        }
        guard upstream == .openAICompatible else { return ContentPart(type: block.type, fields: fields) }
        guard case .document = block else {
            throw AnthropicError(.invalidRequest, message: "\(path): \(block.type) blocks can only be sent to Anthropic")
        }
        let source = fields["source"]
        switch source?["type"]?.stringValue {
        case "base64":
            let mediaType = source?["media_type"]?.stringValue ?? "application/pdf"
            let file: JSONValue = [
                "filename": .string(fields["title"]?.stringValue ?? "document"),
                "file_data": .string("data:\(mediaType);base64,\(source?["data"]?.stringValue ?? "")"),
            ]
            return ContentPart(type: "file", fields: ["file": file])
        case "text":
            return .text(source?["data"]?.stringValue ?? "")
        default:
            throw AnthropicError(.invalidRequest, message: "\(path): document source type "
                + "\"\(source?["type"]?.stringValue ?? "")\" can only be sent to Anthropic; use base64 or text")
        }
    }

    /// An image part: a web URL, or a base64 `data:` URL for inline bytes.
    static func imagePart(_ image: AnthropicContentBlock.Image, path: String) throws(AnthropicError) -> ContentPart {
        switch image.source {
        case .base64(let mediaType, let data): return .imageURL("data:\(mediaType);base64,\(data)")
        case .url(let url): return .imageURL(url)
        case .other(let fields):
            throw AnthropicError(.invalidRequest, message: "\(path): image source type \"\(fields["type"]?.stringValue ?? "")\" "
                + "can only be sent to Anthropic; use base64 or url")
        }
    }

    /// An assistant turn: its text, its tool calls, and its thinking blocks.
    static func assistantMessage(_ blocks: [AnthropicContentBlock], path: String, upstream: Upstream) throws(AnthropicError)
        -> ChatMessage
    {
        var message = ChatMessage(role: "assistant")
        var parts: [ContentPart] = []
        var calls: [ToolCall] = []
        var thinking: [ThinkingBlock] = []
        for block in blocks {
            if let cache = block.member("cache_control") { message.cacheControl = cache }
            switch block {
            case .text(let text): parts.append(.text(text.text))
            case .toolUse(let call):
                let arguments: String
                do {
                    arguments = try JSONCoding.encodeToString(call.input)
                } catch {
                    throw AnthropicError(.invalidRequest, message: "\(path): tool_use \(call.id) has an input that is not JSON")
                }
                calls.append(ToolCall(id: call.id, function: FunctionCall(name: call.name, arguments: arguments)))
            case .thinking(let block): thinking.append(block)
            case .document, .other: parts.append(try passedThrough(block, path: path, upstream: upstream))
            case .image:
                throw AnthropicError(.invalidRequest, message: "\(path): image blocks belong in user messages")
            case .toolResult:
                throw AnthropicError(.invalidRequest, message: "\(path): tool_result blocks belong in user messages")
            }
        }
        if !parts.isEmpty { message.content = content(parts) }
        if !calls.isEmpty { message.toolCalls = calls }
        if !thinking.isEmpty, upstream == .converting { message.thinkingBlocks = thinking }
        return message
    }

    /// A tool message for a tool result.
    static func toolMessage(_ result: AnthropicContentBlock.ToolResult, path: String, upstream: Upstream)
        throws(AnthropicError) -> ChatMessage
    {
        var message = ChatMessage(role: "tool", toolCallID: result.toolUseID)
        switch result.content {
        case .text(let text)?: message.content = .text(text)
        case .blocks(let blocks)?:
            var parts: [ContentPart] = []
            for block in blocks {
                switch block {
                case .text(let text): parts.append(.text(text.text))
                case .image(let image): parts.append(try imagePart(image, path: path))
                case .document, .other: parts.append(try passedThrough(block, path: path, upstream: upstream))
                case .toolUse, .toolResult, .thinking:
                    throw AnthropicError(.invalidRequest, message: "\(path): a tool_result cannot hold \(block.type) blocks")
                }
            }
            message.content = content(parts)
        case nil: message.content = .text("")
        }
        if let cache = result.unknownFields["cache_control"] { message.cacheControl = cache }
        if result.isError == true {
            switch upstream {
            case .converting:
                message.unknownFields["is_error"] = true
            case .openAICompatible:
                // OpenAI's tool messages have no error flag: the model reads it in the text instead.
                switch message.content {
                case .text(let text)?: message.content = .text("Error: " + text)
                case .parts(let parts)?: message.content = .parts([.text("Error:")] + parts)
                case nil: message.content = .text("Error")
                }
            }
        }
        return message
    }

    // MARK: Response

    /// The Anthropic response for an internal response (its first choice). A relayed response (a summary
    /// of an upstream's bytes) is decoded first.
    /// - Throws: an `api_error` ``AnthropicError`` when a relayed response does not decode.
    public static func response(_ relayed: ChatResponse, requestedModel: String) throws(AnthropicError)
        -> AnthropicMessagesResponse
    {
        let response: ChatResponse
        do {
            response = try relayed.decoded()
        } catch {
            throw AnthropicError(.api, message: "Could not read the provider's response: \(describeDecodingError(error))")
        }
        let choice = response.choices.first
        let message = choice?.message ?? ChatMessage(role: "assistant")
        var content: [AnthropicContentBlock] = []
        if let blocks = message.thinkingBlocks, !blocks.isEmpty {
            content += blocks.map(AnthropicContentBlock.thinking)
        } else if let reasoning = message.reasoningContent, !reasoning.isEmpty {
            content.append(.thinking(ThinkingBlock(fields: ["type": "thinking", "thinking": .string(reasoning), "signature": ""])))
        }
        if let text = message.text, !text.isEmpty { content.append(.text(.init(text: text))) }
        for call in message.toolCalls ?? [] {
            content.append(.toolUse(.init(id: toolUseID(call.id), name: call.function.name ?? "",
                                          input: toolInput(call.function.arguments))))
        }
        let stop = stopReason(choice?.finishReason, details: choice?.unknownFields ?? [:],
                              calledTools: !(message.toolCalls ?? []).isEmpty)
        return AnthropicMessagesResponse(
            id: messageID(response.id), model: response.model ?? requestedModel, content: content,
            stopReason: stop.reason, stopSequence: stop.sequence, usage: usage(response.usage))
    }

    /// A tool call's arguments as the `input` object; arguments that are not JSON become an empty object.
    static func toolInput(_ arguments: String?) -> JSONValue {
        guard let arguments, !arguments.trimmingCharacters(in: .whitespaces).isEmpty,
              let value = try? JSONCoding.decode(JSONValue.self, from: Array(arguments.utf8))
        else { return [:] }
        return value
    }

    /// An id in Anthropic's style: `msg_…`. An upstream id that already is one is kept; another keeps its
    /// characters after the prefix, so that the call can still be found by it; none gets a random one.
    public static func messageID(_ id: String?) -> String { prefixed("msg_", id) }

    /// A tool call id in Anthropic's style: `toolu_…`, made the same way as ``messageID(_:)``. The client
    /// sends it back in its `tool_result`, and the history it sends carries the same id on both sides.
    public static func toolUseID(_ id: String?) -> String { prefixed("toolu_", id) }

    static func prefixed(_ prefix: String, _ id: String?) -> String {
        if let id, id.hasPrefix(prefix) { return id }
        let kept = String(String.UnicodeScalarView((id ?? "").unicodeScalars.filter { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "_" || scalar == "-")
        }))
        if !kept.isEmpty { return prefix + kept }
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var generator = SystemRandomNumberGenerator()
        return prefix + String((0..<24).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    /// Anthropic's stop reason for a finish reason. A stop on one of the request's stop sequences is
    /// `stop_sequence` when the upstream said which one (its choice's `stop_sequence`, or vLLM's string
    /// `stop_reason`). An answer that calls tools stopped for `tool_use`, whatever the upstream said
    /// (OpenAI says `stop` when the request forced the call). Anthropic's own reasons pass through; anything
    /// unknown is an end of turn.
    public static func stopReason(_ finish: FinishReason?, details: [String: JSONValue] = [:], calledTools: Bool = false)
        -> (reason: String, sequence: String?)
    {
        let sequence = details["stop_sequence"]?.stringValue ?? details["stop_reason"]?.stringValue
        switch finish?.rawValue ?? "stop" {
        case "stop" where calledTools: return ("tool_use", nil)
        case "stop": return sequence.map { ("stop_sequence", $0) } ?? ("end_turn", nil)
        case "stop_sequence": return ("stop_sequence", sequence)
        case "length", "max_tokens": return ("max_tokens", nil)
        case "tool_calls", "function_call", "tool_use": return ("tool_use", nil)
        case "content_filter", "refusal": return ("refusal", nil)
        case "pause_turn": return ("pause_turn", nil)
        default: return ("end_turn", nil)
        }
    }

    /// Usage in Anthropic's terms: the internal prompt tokens include cache reads and writes, which
    /// Anthropic counts apart from `input_tokens`.
    public static func usage(_ usage: Usage?) -> AnthropicUsage {
        guard let usage else { return AnthropicUsage(inputTokens: 0, outputTokens: 0) }
        let details = usage.unknownFields["prompt_tokens_details"]
        let cacheRead = details?["cached_tokens"]?.intValue
        let cacheWrite = details?["cache_creation_tokens"]?.intValue
        let input = max(0, (usage.promptTokens ?? 0) - (cacheRead ?? 0) - (cacheWrite ?? 0))
        return AnthropicUsage(inputTokens: input, outputTokens: usage.completionTokens ?? 0,
                              cacheCreationInputTokens: cacheWrite, cacheReadInputTokens: cacheRead)
    }
}
