import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Anthropic's Messages API: OpenAI-format requests are converted to messages with content blocks (every
/// system message goes to `system`, `stop` to `stop_sequences`), and answers and streams are converted back.
public struct AnthropicProvider: ChatModelProvider {
    public let name: String
    public let label: String
    /// The messages endpoint, `https://api.anthropic.com/v1/messages` by default.
    public let url: String
    public let key: ProviderKey
    public let routingPrefixes: [String]
    public let stripModelPrefix: String?
    public let headers: [(String, String)]
    let transport: UpstreamHTTPClient

    /// Models listed by `GET /v1/models` while the provider's key is available.
    public var models: [String] = []

    public var advertisedModels: [String] {
        guard !models.isEmpty, (try? key.resolve(providerName: name)) ?? nil != nil else { return [] }
        return models
    }

    public static let defaultURL = "https://api.anthropic.com/v1/messages"
    public static let apiVersion = "2023-06-01"

    public init(name: String = "anthropic", label: String? = nil, url: String = AnthropicProvider.defaultURL,
                key: ProviderKey = .environment("ANTHROPIC_API_KEY"), routingPrefixes: [String] = ["anthropic/", "claude"],
                stripModelPrefix: String? = "anthropic/", headers: [(String, String)] = [],
                transport: UpstreamHTTPClient) {
        self.name = name
        self.label = label ?? (name == "anthropic" ? "Anthropic" : name)
        self.url = url
        self.key = key
        self.routingPrefixes = routingPrefixes
        self.stripModelPrefix = stripModelPrefix
        self.headers = headers
        self.transport = transport
    }

    public func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        guard let apiKey = try request.apiKey ?? key.resolve(providerName: name) else {
            throw ProviderError(kind: .authMissing, message: "No API key for provider '\(name)'")
        }
        var body = request.body
        body.stripModelPrefix(stripModelPrefix)
        let converted = try AnthropicConversion.request(body)
        let payload: ByteBuffer
        do {
            payload = ByteBuffer(bytes: try JSONCoding.encodeBytes(converted))
        } catch {
            throw ProviderError(kind: .transformingRequest, message: "Could not encode the request: \(error)")
        }
        var httpHeaders = HTTPHeaders()
        httpHeaders.add(name: "x-api-key", value: apiKey)
        httpHeaders.add(name: "anthropic-version", value: Self.apiVersion)
        httpHeaders.add(name: "accept", value: body.isStreaming ? "text/event-stream" : "application/json")
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }

        let response = try await transport.post(
            url: request.overrideURL ?? url, headers: httpHeaders, body: payload, timeout: request.timeout)
        let requestedModel = body.model ?? ""
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            return streamEvents(response, requestedModel: requestedModel, idleTimeout: request.streamIdleTimeout)
        }
        let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
        let message: JSONValue
        do {
            message = try JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView)
        } catch {
            throw ProviderError(kind: .parsingResponse, status: Int(response.status.code),
                                body: UpstreamHTTPClient.errorBody(bytes),
                                message: "Could not parse the provider's response: \(describeDecodingError(error))")
        }
        if message["type"] == "error" { throw AnthropicConversion.streamError(message) }
        let reply = AnthropicConversion.response(message, requestedModel: requestedModel)
        return ChatEventStream(events: [
            .single(reply), .responseInfo(ResponseInfo(model: reply.model ?? requestedModel)),
        ])
    }

    private func streamEvents(_ response: UpstreamResponse, requestedModel: String, idleTimeout: Duration)
        -> ChatEventStream
    {
        ChatEventStream.decoding(response, idleTimeout: idleTimeout,
                                 decoder: ServerSentEventDecoder(AnthropicStreamState(requestedModel: requestedModel)))
    }
}

/// Folds Anthropic stream events into OpenAI-format chunks.
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

    mutating func convert(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk? {
        let data = try decodeStreamedJSON(JSONValue.self, event.data)
        switch data["type"]?.stringValue ?? event.event ?? "" {
        case "message_start":
            let message = data["message"] ?? .null
            id = message["id"]?.stringValue
            model = message["model"]?.stringValue
            if let start = message["usage"] { usage = AnthropicConversion.usage(start) }
            return chunk(ChatMessage(role: "assistant", content: .text("")))
        case "content_block_start":
            let block = data["content_block"] ?? .null
            let index = data["index"]?.intValue ?? 0
            switch block["type"]?.stringValue {
            case "tool_use":
                let ordinal = toolIndexes.count
                toolIndexes[index] = ordinal
                let call = ToolCall(index: ordinal, id: block["id"]?.stringValue, type: "function",
                                    function: FunctionCall(name: block["name"]?.stringValue, arguments: ""))
                return chunk(ChatMessage(toolCalls: [call]))
            case "text":
                guard let text = block["text"]?.stringValue, !text.isEmpty else { return nil }
                return chunk(ChatMessage(content: .text(text)))
            case "redacted_thinking":
                guard case .object(let fields) = block else { return nil }
                var message = ChatMessage()
                message.thinkingBlocks = [ThinkingBlock(fields: fields)]
                return chunk(message)
            default:
                // A thinking block starts empty; its text and signature follow as deltas.
                return nil
            }
        case "content_block_delta":
            let delta = data["delta"] ?? .null
            switch delta["type"]?.stringValue {
            case "text_delta":
                return chunk(ChatMessage(content: .text(delta["text"]?.stringValue ?? "")))
            case "input_json_delta":
                guard let ordinal = toolIndexes[data["index"]?.intValue ?? -1] else { return nil }
                let call = ToolCall(index: ordinal, type: nil,
                                    function: FunctionCall(arguments: delta["partial_json"]?.stringValue ?? ""))
                return chunk(ChatMessage(toolCalls: [call]))
            case "thinking_delta":
                let text = delta["thinking"]?.stringValue ?? ""
                var message = ChatMessage()
                message.reasoningContent = text
                message.thinkingBlocks = [.thinking(text)]
                return chunk(message)
            case "signature_delta":
                // A thinking block's last part: the client needs it to send the block back.
                var message = ChatMessage()
                message.thinkingBlocks = [.thinking("", signature: delta["signature"]?.stringValue ?? "")]
                return chunk(message)
            default:
                return nil
            }
        case "message_delta":
            let later = data["usage"].map(AnthropicConversion.usage) ?? Usage()
            usage.merge(later)
            usage.totalTokens = (usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)
            let reason = data["delta"]?["stop_reason"]?.stringValue
            return chunk(ChatMessage(), finishReason: reason.map(AnthropicConversion.finishReason) ?? .stop, usage: usage)
        case "error":
            throw AnthropicConversion.streamError(data)
        default:
            // ping, content_block_stop, message_stop, and event types added later.
            return nil
        }
    }
}

/// Conversions between the OpenAI chat format and Anthropic's Messages API.
enum AnthropicConversion {
    /// The Messages API request for an OpenAI-format request (model prefix already stripped).
    static func request(_ request: ChatRequest) throws(ProviderError) -> JSONValue {
        var systemBlocks: [JSONValue] = []
        if let system = request.system, !system.isEmpty { systemBlocks.append(["type": "text", "text": .string(system)]) }
        var turns = ConversationTurns()

        for message in request.messages {
            let role = message.role ?? "user"
            var blocks = try contentBlocks(message)
            if let cache = message.cacheControl, !blocks.isEmpty, case .object(var last) = blocks[blocks.count - 1] {
                // Anthropic marks cache breakpoints on content blocks, not messages.
                last["cache_control"] = cache
                blocks[blocks.count - 1] = .object(last)
            }
            switch role {
            case "system", "developer":
                systemBlocks += blocks
            case "tool":
                var result: [String: JSONValue] = [
                    "type": "tool_result", "tool_use_id": .string(message.toolCallID ?? ""),
                    "content": .array(blocks),
                ]
                if message.unknownFields["is_error"] == true { result["is_error"] = true }
                turns.append("user", [.object(result)])
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
                    blocks.append([
                        "type": "tool_use", "id": .string(call.id ?? ""), "name": .string(call.function.name ?? ""),
                        "input": input,
                    ])
                }
                // Thinking goes back first and unchanged: Anthropic checks its signature and its place.
                let thinking = (message.thinkingBlocks ?? []).map { JSONValue.object($0.fields) }
                turns.append("assistant", thinking + blocks)
            default:
                turns.append("user", blocks)
            }
        }

        var body: [String: JSONValue] = [
            "model": .string(request.model ?? ""),
            "max_tokens": .integer(Int64(request.maxTokens ?? request.maxCompletionTokens ?? 4096)),
            "messages": turns.json(contentKey: "content"),
        ]
        if !systemBlocks.isEmpty {
            let plain = systemBlocks.allSatisfy { $0["cache_control"] == nil }
            body["system"] = plain
                ? .string(systemBlocks.compactMap { $0["text"]?.stringValue }.joined(separator: "\n\n"))
                : .array(systemBlocks)
        }
        if request.isStreaming { body["stream"] = true }
        if let value = request.temperature { body["temperature"] = .double(value) }
        if let value = request.topP { body["top_p"] = .double(value) }
        if let stop = request.stop, !stop.isEmpty { body["stop_sequences"] = .array(stop.map(JSONValue.string)) }
        if let user = request.user { body["metadata"] = ["user_id": .string(user)] }
        for key in ["top_k", "thinking", "service_tier"] {
            if let value = request.unknownFields[key] { body[key] = value }
        }
        if let tools = request.tools, !tools.isEmpty {
            body["tools"] = .array(tools.map { tool in
                var converted: [String: JSONValue] = [
                    "name": .string(tool.function.name),
                    "input_schema": tool.function.parameters ?? ["type": "object", "properties": [:]],
                ]
                if let description = tool.function.description { converted["description"] = .string(description) }
                if let cache = tool.unknownFields["cache_control"] { converted["cache_control"] = cache }
                return .object(converted)
            })
        }
        var choice: [String: JSONValue]?
        switch request.toolChoice {
        case .string("none")?: choice = ["type": "none"]
        case .string("auto")?: choice = ["type": "auto"]
        case .string("required")?: choice = ["type": "any"]
        case .object(let object)?:
            if let name = object["function"]?["name"]?.stringValue { choice = ["type": "tool", "name": .string(name)] }
        default: break
        }
        if request.unknownFields["parallel_tool_calls"] == false, body["tools"] != nil {
            choice = choice ?? ["type": "auto"]
            choice?["disable_parallel_tool_use"] = true
        }
        if let choice { body["tool_choice"] = .object(choice) }
        return .object(body)
    }

    /// Content blocks for a message: text (empty text left out), images, and the name folded in.
    static func contentBlocks(_ message: ChatMessage) throws(ProviderError) -> [JSONValue] {
        var blocks: [JSONValue] = []
        for piece in message.contentPieces {
            switch piece {
            case .text(let text): blocks.append(["type": "text", "text": .string(text)])
            case .imageURL(let url): blocks.append(try image(url))
            // Anthropic-native blocks (document, …) pass through.
            case .other(let part): blocks.append(.object(part.fields))
            }
        }
        return blocks
    }

    /// An image block from a web URL or a base64 `data:` URL.
    static func image(_ url: String) throws(ProviderError) -> JSONValue {
        guard url.hasPrefix("data:") else {
            return ["type": "image", "source": ["type": "url", "url": .string(url)]]
        }
        guard let data = DataURL(url) else {
            throw ProviderError(kind: .transformingRequest, message: "Image data URLs must be base64 encoded")
        }
        return ["type": "image", "source": [
            "type": "base64", "media_type": .string(data.mediaType), "data": .string(data.base64),
        ]]
    }

    /// The OpenAI-format response for a Messages API response.
    static func response(_ message: JSONValue, requestedModel: String) -> ChatResponse {
        var texts: [String] = []
        var thinking: [String] = []
        var thinkingBlocks: [ThinkingBlock] = []
        var calls: [ToolCall] = []
        for block in message["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text": texts.append(block["text"]?.stringValue ?? "")
            case "thinking", "redacted_thinking":
                if let text = block["thinking"]?.stringValue { thinking.append(text) }
                if case .object(let fields) = block { thinkingBlocks.append(ThinkingBlock(fields: fields)) }
            case "tool_use":
                let arguments = (try? JSONCoding.encodeToString(block["input"] ?? [:])) ?? "{}"
                calls.append(ToolCall(id: block["id"]?.stringValue, type: "function",
                                      function: FunctionCall(name: block["name"]?.stringValue, arguments: arguments)))
            default: break
            }
        }
        var reply = ChatMessage(role: "assistant", content: texts.isEmpty ? nil : .text(texts.joined()),
                                toolCalls: calls.isEmpty ? nil : calls)
        if !thinking.isEmpty { reply.reasoningContent = thinking.joined() }
        if !thinkingBlocks.isEmpty { reply.thinkingBlocks = thinkingBlocks }
        var usage = message["usage"].map(self.usage)
        if let counted = usage { usage?.totalTokens = (counted.promptTokens ?? 0) + (counted.completionTokens ?? 0) }
        return ChatResponse(
            id: message["id"]?.stringValue, created: unixNow(), model: message["model"]?.stringValue ?? requestedModel,
            choices: [ChatChoice(index: 0, message: reply,
                                 finishReason: message["stop_reason"]?.stringValue.map(finishReason) ?? .stop)],
            usage: usage)
    }

    /// Usage in OpenAI's terms: prompt tokens include cache reads and writes, which are also detailed.
    static func usage(_ value: JSONValue) -> Usage {
        let input = value["input_tokens"]?.intValue
        let cacheRead = value["cache_read_input_tokens"]?.intValue
        let cacheWrite = value["cache_creation_input_tokens"]?.intValue
        var usage = Usage(completionTokens: value["output_tokens"]?.intValue)
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

    /// An `error` event or body: its type decides the kind.
    static func streamError(_ data: JSONValue) -> ProviderError {
        let error = data["error"] ?? .null
        let message = error["message"]?.stringValue
        switch error["type"]?.stringValue {
        case "invalid_request_error": return ProviderError(kind: .badInput, status: 400, body: data, message: message)
        case "authentication_error", "permission_error":
            return ProviderError(kind: .authRejected, status: 401, body: data, message: message)
        case "rate_limit_error": return ProviderError(kind: .rateLimit, status: 429, body: data, message: message)
        case "overloaded_error": return ProviderError(kind: .server, status: 529, body: data, message: message)
        default: return ProviderError(kind: .server, status: 500, body: data, message: message)
        }
    }
}
