import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// AWS Bedrock's Converse and ConverseStream APIs over HTTPS with SigV4:
/// errors retry and fall back like other providers, streams carry finish_reason, created and model, tools
/// without parameters work, and the timeout is honoured. AWS credentials are read only when Bedrock is used.
public struct BedrockProvider: ChatModelProvider {
    public let name: String
    public let label: String
    public let routingPrefixes: [String]
    public let stripModelPrefix: String?
    /// Overrides `https://bedrock-runtime.{region}.amazonaws.com` (VPC endpoints, tests).
    public let endpoint: String?
    /// Fixed credentials and region; when nil they are read from the environment and AWS files per request.
    public let credentials: AWSCredentials?
    public let region: String?
    let transport: UpstreamHTTPClient

    /// Models listed by `GET /v1/models` while AWS credentials are available.
    public var models: [String] = []

    public var advertisedModels: [String] {
        guard !models.isEmpty, credentials != nil || AWSEnvironment.credentials() != nil else { return [] }
        return models
    }

    public init(name: String = "aws-bedrock", label: String? = nil, routingPrefixes: [String] = ["aws-bedrock/", "bedrock/"],
                stripModelPrefix: String? = nil, endpoint: String? = nil, credentials: AWSCredentials? = nil,
                region: String? = nil, transport: UpstreamHTTPClient) {
        self.name = name
        self.label = label ?? "AWS Bedrock"
        self.routingPrefixes = routingPrefixes
        self.stripModelPrefix = stripModelPrefix
        self.endpoint = endpoint
        self.credentials = credentials
        self.region = region
        self.transport = transport
    }

    /// The Converse API has no `response_format`: structured output is asked for with a forced tool.
    public var supportsResponseFormat: Bool { false }

    public func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        var body = try await ImageFetcher(policy: transport.imageFetchPolicy).inlineImages(in: request.body)
        for prefix in stripModelPrefix.map({ [$0] }) ?? routingPrefixes where body.model?.hasPrefix(prefix) == true {
            body.model = body.model.map { String($0.dropFirst(prefix.count)) }
            break
        }
        guard let model = body.model, !model.isEmpty else {
            throw ProviderError(kind: .transformingRequest, message: "Bedrock needs a model id")
        }
        let payload = try JSONCoding.encode(try BedrockConversion.request(body))
        let response = try await signedPost(model: model, action: body.isStreaming ? "converse-stream" : "converse",
                                            payload: payload,
                                            accept: body.isStreaming ? "application/vnd.amazon.eventstream" : "application/json",
                                            request: request)
        let state = BedrockState(model: model)
        if !body.isStreaming {
            let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
            let value: JSONValue
            do {
                value = try JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView)
            } catch {
                throw ProviderError(kind: .parsingResponse, status: Int(response.status.code),
                                    body: UpstreamHTTPClient.errorBody(bytes),
                                    message: "Could not parse the provider's response: \(describeDecodingError(error))")
            }
            let reply = try state.response(value)
            return ChatEventStream(events: [
                .single(reply), .responseInfo(ResponseInfo(model: model, meta: value["additionalModelResponseFields"])),
            ])
        }
        return ChatEventStream.decoding(response, idleTimeout: request.streamIdleTimeout,
                                        decoder: BedrockStreamDecoder(state: state))
    }

    /// POSTs `payload` to `/model/{model}/{action}`, signed with SigV4; the region and credentials are read
    /// now, so that they are needed only when Bedrock is used.
    func signedPost(model: String, action: String, payload: Data, accept: String, request: ProviderRequest)
        async throws(ProviderError) -> UpstreamResponse
    {
        guard let region = region ?? AWSEnvironment.region() else {
            throw ProviderError(kind: .authMissing, message: "No AWS region: set AWS_REGION or a region in ~/.aws/config")
        }
        guard let credentials = credentials ?? AWSEnvironment.credentials() else {
            throw ProviderError(kind: .authMissing,
                                message: "No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile in ~/.aws/credentials")
        }
        let base = request.overrideURL ?? endpoint ?? "https://bedrock-runtime.\(region).amazonaws.com"
        let path = "/model/\(SigV4Signer.encodePathSegment(model))/\(action)"
        guard let url = URL(string: base + path), let host = url.host else {
            throw ProviderError(kind: .transformingRequest, message: "Invalid Bedrock endpoint \(base)")
        }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        var headers = HTTPHeaders()
        headers.add(name: "host", value: hostHeader)
        headers.add(name: "accept", value: accept)
        // The path is signed as sent: Bedrock model ids are encoded once, and SigV4 encodes them again.
        let signer = SigV4Signer(credentials: credentials, region: region, service: "bedrock")
        let signedPath = "/model/\(SigV4Signer.encode(SigV4Signer.encodePathSegment(model)))/\(action)"
        for (name, value) in signer.sign(method: "POST", path: signedPath,
                                         headers: [("host", hostHeader), ("content-type", "application/json")], body: payload) {
            headers.add(name: name, value: value)
        }
        return try await transport.post(url: base + path, headers: headers, body: ByteBuffer(bytes: payload),
                                        timeout: request.timeout)
    }
}

/// ConverseStream's binary event-stream frames, each one event.
struct BedrockStreamDecoder: ResponseStreamDecoder {
    var frames = EventStreamDecoder()
    var state: BedrockState

    mutating func decode(_ bytes: ByteBufferView, into events: inout [ChatStreamEvent]) throws(ProviderError) {
        let messages: [EventStreamMessage]
        do {
            messages = try frames.decode(bytes)
        } catch {
            throw ProviderError(kind: .parsingResponse, message: "Bad event-stream frame: \(error)")
        }
        for message in messages {
            if let chunk = try state.handle(message) { events.append(.chunk(chunk)) }
        }
    }

    mutating func finish(into events: inout [ChatStreamEvent]) throws(ProviderError) {
        if frames.hasPartialFrame {
            throw ProviderError(kind: .connectionClosed, message: "Bedrock's stream ended inside a frame")
        }
        events.append(.responseInfo(ResponseInfo(model: state.model, meta: state.additionalFields)))
    }
}

/// Converts Converse responses and ConverseStream events to OpenAI-format chunks.
struct BedrockState {
    let model: String
    let id = "chatcmpl-" + UUID().uuidString.lowercased()
    let created = unixNow()
    var toolIndexes: [Int: Int] = [:]
    var additionalFields: JSONValue?
    var finish: FinishReason?

    init(model: String) { self.model = model }

    func chunk(_ delta: ChatMessage, finishReason: FinishReason? = nil, usage: Usage? = nil, empty: Bool = false) -> ChatChunk {
        ChatChunk(id: id, created: created, model: model,
                  choices: empty ? [] : [ChunkChoice(index: 0, delta: delta, finishReason: finishReason)], usage: usage)
    }

    mutating func handle(_ message: EventStreamMessage) throws(ProviderError) -> ChatChunk? {
        let data = (try? JSONCoding.decode(JSONValue.self, from: message.payload)) ?? .null
        if message.headers[":message-type"] == "exception" || message.headers[":message-type"] == "error" {
            let type = message.headers[":exception-type"] ?? message.headers[":error-code"] ?? "unknown"
            throw BedrockConversion.exception(type: type, body: data)
        }
        switch message.headers[":event-type"] {
        case "messageStart":
            return chunk(ChatMessage(role: data["role"]?.stringValue ?? "assistant", content: .text("")))
        case "contentBlockStart":
            guard let tool = data["start"]?["toolUse"] else { return nil }
            let ordinal = toolIndexes.count
            toolIndexes[data["contentBlockIndex"]?.intValue ?? ordinal] = ordinal
            return chunk(ChatMessage(toolCalls: [ToolCall(
                index: ordinal, id: tool["toolUseId"]?.stringValue, type: "function",
                function: FunctionCall(name: tool["name"]?.stringValue, arguments: ""))]))
        case "contentBlockDelta":
            let delta = data["delta"] ?? .null
            if let text = delta["text"]?.stringValue { return chunk(ChatMessage(content: .text(text))) }
            if let input = delta["toolUse"]?["input"]?.stringValue,
               let ordinal = toolIndexes[data["contentBlockIndex"]?.intValue ?? -1] {
                return chunk(ChatMessage(toolCalls: [ToolCall(index: ordinal, type: nil, function: FunctionCall(arguments: input))]))
            }
            if let reasoning = delta["reasoningContent"] {
                var message = ChatMessage()
                if let text = reasoning["text"]?.stringValue {
                    message.reasoningContent = text
                    message.thinkingBlocks = [.thinking(text)]
                } else if let signature = reasoning["signature"]?.stringValue {
                    // A reasoning block's last part: the client needs it to send the block back.
                    message.thinkingBlocks = [.thinking("", signature: signature)]
                } else if let redacted = reasoning["redactedContent"]?.stringValue {
                    message.thinkingBlocks = [.redacted(redacted)]
                } else {
                    return nil
                }
                return chunk(message)
            }
            return nil
        case "messageStop":
            additionalFields = data["additionalModelResponseFields"]
            let reason = BedrockConversion.finishReason(data["stopReason"]?.stringValue ?? "end_turn")
            return chunk(ChatMessage(), finishReason: reason)
        case "metadata":
            guard let usage = data["usage"] else { return nil }
            return chunk(ChatMessage(), usage: BedrockConversion.usage(usage), empty: true)
        default:
            return nil
        }
    }

    func response(_ value: JSONValue) throws(ProviderError) -> ChatResponse {
        guard let message = value["output"]?["message"] else {
            throw ProviderError(kind: .parsingResponse, body: value, message: "Bedrock's response has no output message")
        }
        var texts: [String] = []
        var calls: [ToolCall] = []
        var reasoning: [String] = []
        var thinkingBlocks: [ThinkingBlock] = []
        for block in message["content"]?.arrayValue ?? [] {
            if let text = block["text"]?.stringValue { texts.append(text) }
            if let tool = block["toolUse"] {
                calls.append(ToolCall(id: tool["toolUseId"]?.stringValue, type: "function", function: FunctionCall(
                    name: tool["name"]?.stringValue, arguments: (try? JSONCoding.encodeToString(tool["input"] ?? [:])) ?? "{}")))
            }
            if let content = block["reasoningContent"] {
                if let text = content["reasoningText"]?["text"]?.stringValue {
                    reasoning.append(text)
                    thinkingBlocks.append(.thinking(text, signature: content["reasoningText"]?["signature"]?.stringValue))
                } else if let redacted = content["redactedContent"]?.stringValue {
                    thinkingBlocks.append(.redacted(redacted))
                }
            }
        }
        var reply = ChatMessage(role: "assistant", content: texts.isEmpty ? nil : .text(texts.joined()),
                                toolCalls: calls.isEmpty ? nil : calls)
        if !reasoning.isEmpty { reply.reasoningContent = reasoning.joined() }
        if !thinkingBlocks.isEmpty { reply.thinkingBlocks = thinkingBlocks }
        return ChatResponse(
            id: id, created: created, model: model,
            choices: [ChatChoice(message: reply, finishReason: BedrockConversion.finishReason(value["stopReason"]?.stringValue ?? "end_turn"))],
            usage: value["usage"].map(BedrockConversion.usage))
    }
}

enum BedrockConversion {
    static func request(_ request: ChatRequest) throws(ProviderError) -> JSONValue {
        var system: [JSONValue] = []
        if let text = request.system { system.append(["text": .string(text)]) }
        var turns = ConversationTurns()
        for message in request.messages {
            let role = message.role ?? "user"
            switch role {
            case "system", "developer":
                // Every system message, wherever it is, goes to `system`: turns are only user or assistant.
                if let text = message.text, !text.isEmpty { system.append(["text": .string(text)]) }
            case "tool":
                guard let id = message.toolCallID else {
                    throw ProviderError(kind: .transformingRequest, message: "A tool message needs tool_call_id for Bedrock")
                }
                var result: [String: JSONValue] = ["toolUseId": .string(id), "content": [["text": .string(message.text ?? "")]]]
                if message.unknownFields["is_error"] == true { result["status"] = "error" }
                turns.append("user", [["toolResult": .object(result)]])
            default:
                var content = try blocks(message)
                if role == "assistant" {
                    // Reasoning goes back first and unchanged: Bedrock checks its signature.
                    content = (message.thinkingBlocks ?? []).compactMap(reasoningContent) + content
                    for call in message.toolCalls ?? [] {
                        let input: JSONValue
                        do {
                            input = try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "{}").utf8))
                        } catch {
                            throw ProviderError(kind: .transformingRequest, message: "Tool call arguments are not JSON")
                        }
                        content.append(["toolUse": ["toolUseId": .string(call.id ?? ""), "name": .string(call.function.name ?? ""), "input": input]])
                    }
                }
                turns.append(role == "assistant" ? "assistant" : "user", content)
            }
        }
        var body: [String: JSONValue] = [
            "messages": turns.json(contentKey: "content"),
        ]
        if !system.isEmpty { body["system"] = .array(system) }
        var inference: [String: JSONValue] = [:]
        if let value = request.maxTokens ?? request.maxCompletionTokens { inference["maxTokens"] = .integer(Int64(value)) }
        if let value = request.temperature { inference["temperature"] = .double(value) }
        if let value = request.topP { inference["topP"] = .double(value) }
        if let stop = request.stop, !stop.isEmpty { inference["stopSequences"] = .array(stop.map(JSONValue.string)) }
        if !inference.isEmpty { body["inferenceConfig"] = .object(inference) }
        if let tools = request.tools, !tools.isEmpty {
            var config: [String: JSONValue] = ["tools": .array(tools.map { tool in
                var spec: [String: JSONValue] = [
                    "name": .string(tool.function.name),
                    // A tool without parameters still needs a schema.
                    "inputSchema": ["json": tool.function.parameters ?? ["type": "object", "properties": [:]]],
                ]
                if let description = tool.function.description { spec["description"] = .string(description) }
                return ["toolSpec": .object(spec)]
            })]
            switch request.toolChoice {
            case .string("auto")?: config["toolChoice"] = ["auto": [:]]
            case .string("required")?: config["toolChoice"] = ["any": [:]]
            case .object(let choice)?:
                if let name = choice["function"]?["name"] { config["toolChoice"] = ["tool": ["name": name]] }
            default: break
            }
            // tool_choice "none": Bedrock has no such mode, so the tools are not offered at all.
            if request.toolChoice != .string("none") { body["toolConfig"] = .object(config) }
        }
        if let fields = request.unknownFields["additionalModelRequestFields"] { body["additionalModelRequestFields"] = fields }
        return .object(body)
    }

    static func blocks(_ message: ChatMessage) throws(ProviderError) -> [JSONValue] {
        var blocks: [JSONValue] = []
        for piece in message.contentPieces {
            switch piece {
            case .text(let text):
                blocks.append(["text": .string(text)])
            case .imageURL(let url):
                guard let data = DataURL(url), data.mediaType.hasPrefix("image/") else {
                    throw ProviderError(kind: .transformingRequest, message: "Bedrock takes images as base64 data URLs only")
                }
                let format = String(data.mediaType.dropFirst("image/".count))
                blocks.append(["image": ["format": .string(format), "source": ["bytes": .string(data.base64)]]])
            case .other:
                continue
            }
        }
        return blocks
    }

    /// A `reasoningContent` block for a thinking block from an earlier answer.
    static func reasoningContent(_ block: ThinkingBlock) -> JSONValue? {
        switch block.type {
        case "thinking":
            var text: [String: JSONValue] = ["text": .string(block.thinking ?? "")]
            if let signature = block.signature { text["signature"] = .string(signature) }
            return ["reasoningContent": ["reasoningText": .object(text)]]
        case "redacted_thinking":
            return block.data.map { ["reasoningContent": ["redactedContent": .string($0)]] }
        default:
            return nil
        }
    }

    static func finishReason(_ reason: String) -> FinishReason {
        switch reason {
        case "end_turn", "stop_sequence": return .stop
        case "max_tokens": return .length
        case "tool_use": return .toolCalls
        case "content_filtered", "guardrail_intervened": return .contentFilter
        default: return FinishReason(rawValue: reason)
        }
    }

    /// Usage in OpenAI's terms: Bedrock's `inputTokens` leaves out cache reads and writes, which the
    /// gateway's prompt tokens include (and details), so that a cached prompt is priced like OpenAI's.
    static func usage(_ value: JSONValue) -> Usage {
        let input = value["inputTokens"]?.intValue
        let cacheRead = value["cacheReadInputTokens"]?.intValue
        let cacheWrite = value["cacheWriteInputTokens"]?.intValue
        var usage = Usage(completionTokens: value["outputTokens"]?.intValue, totalTokens: value["totalTokens"]?.intValue)
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

    /// A stream exception, with the kind its type calls for.
    static func exception(type: String, body: JSONValue) -> ProviderError {
        let message = body["message"]?.stringValue ?? body["Message"]?.stringValue
        switch type {
        case "validationException": return ProviderError(kind: .badInput, status: 400, body: body, message: message)
        case "throttlingException", "serviceUnavailableException":
            return ProviderError(kind: type == "throttlingException" ? .rateLimit : .server,
                                 status: type == "throttlingException" ? 429 : 503, body: body, message: message)
        case "modelStreamErrorException":
            return ProviderError(kind: .connectionClosed, status: body["originalStatusCode"]?.intValue ?? 500, body: body,
                                 message: body["originalMessage"]?.stringValue ?? message)
        case "accessDeniedException": return ProviderError(kind: .authRejected, status: 403, body: body, message: message)
        default: return ProviderError(kind: .server, status: 500, body: body, message: message)
        }
    }
}
