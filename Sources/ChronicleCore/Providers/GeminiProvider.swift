import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Google Gemini (`generateContent` / `streamGenerateContent?alt=sse`) with API-key auth.
public struct GeminiProvider: ChatModelProvider {
    public let name: String
    public let label: String
    /// The API base, `https://generativelanguage.googleapis.com/v1beta` by default; `/models/{model}:…` is appended.
    public let baseURL: String
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

    public static let defaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

    public init(name: String = "gemini", label: String? = nil, baseURL: String = GeminiProvider.defaultBaseURL,
                key: ProviderKey = .environment("GEMINI_API_KEY"), routingPrefixes: [String] = ["gemini/"],
                stripModelPrefix: String? = "gemini/", headers: [(String, String)] = [], transport: UpstreamHTTPClient) {
        self.name = name
        self.label = label ?? (name == "gemini" ? "Google Gemini" : name)
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.key = key
        self.routingPrefixes = routingPrefixes
        self.stripModelPrefix = stripModelPrefix
        self.headers = headers
        self.transport = transport
    }

    public func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        let apiKey = try request.apiKey ?? key.resolve(providerName: name)
        var body = request.body
        body.stripModelPrefix(stripModelPrefix)
        let model = body.model ?? ""
        let payload = ByteBuffer(bytes: try JSONCoding.encodeBytes(try GeminiConversion.request(body)))
        var httpHeaders = HTTPHeaders()
        if let apiKey { httpHeaders.add(name: "x-goog-api-key", value: apiKey) }
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }
        let path = model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? model
        let url = request.overrideURL
            ?? (body.isStreaming ? "\(baseURL)/models/\(path):streamGenerateContent?alt=sse" : "\(baseURL)/models/\(path):generateContent")
        let response = try await transport.post(url: url, headers: httpHeaders, body: payload, timeout: request.timeout)
        var state = GeminiState(model: model)

        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if !contentType.hasPrefix("text/event-stream") {
            let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
            let value: JSONValue
            do {
                value = try JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView)
            } catch {
                throw ProviderError(kind: .parsingResponse, status: Int(response.status.code),
                                    body: UpstreamHTTPClient.errorBody(bytes),
                                    message: "Could not parse the provider's response: \(describeDecodingError(error))")
            }
            // A streamed request answered with a JSON array of chunks is folded too.
            let parts = value.arrayValue ?? [value]
            var collector = ResponseCollector()
            for part in parts { collector.add(try state.chunk(part)) }
            let reply = collector.collected
            return ChatEventStream(events: [.single(reply), .responseInfo(ResponseInfo(model: reply.model ?? model))])
        }
        return ChatEventStream.decoding(response, idleTimeout: request.streamIdleTimeout,
                                        decoder: ServerSentEventDecoder(state))
    }
}

/// Converts Gemini responses (whole or streamed) into OpenAI-format chunks.
struct GeminiState: ServerSentEventHandler {
    var model: String
    var id: String?
    let created = unixNow()
    var toolCount = 0

    init(model: String) { self.model = model }

    mutating func handle(_ event: ServerSentEvent) throws(ProviderError) -> ChatStreamEvent? {
        .chunk(try chunk(try decodeStreamedJSON(JSONValue.self, event.data)))
    }

    mutating func finish() throws(ProviderError) -> [ChatStreamEvent] {
        [.responseInfo(ResponseInfo(model: model))]
    }

    mutating func chunk(_ value: JSONValue) throws(ProviderError) -> ChatChunk {
        if let error = value["error"] {
            throw ProviderError.upstream(status: error["code"]?.intValue ?? 500, body: value, retryAfter: nil)
        }
        if let version = value["modelVersion"]?.stringValue { model = version }
        if id == nil { id = value["responseId"]?.stringValue.map { "chatcmpl-\($0)" } ?? "chatcmpl-" + UUID().uuidString.lowercased() }
        var choices: [ChunkChoice] = []
        for (position, candidate) in (value["candidates"]?.arrayValue ?? []).enumerated() {
            var text = ""
            var thoughts = ""
            var calls: [ToolCall] = []
            for part in candidate["content"]?["parts"]?.arrayValue ?? [] {
                if let call = part["functionCall"] {
                    let arguments = (try? JSONCoding.encodeToString(call["args"] ?? [:])) ?? "{}"
                    calls.append(ToolCall(index: toolCount, id: call["id"]?.stringValue ?? "call_\(toolCount)", type: "function",
                                          function: FunctionCall(name: call["name"]?.stringValue, arguments: arguments)))
                    toolCount += 1
                } else if let piece = part["text"]?.stringValue {
                    if part["thought"] == true { thoughts += piece } else { text += piece }
                }
            }
            var delta = ChatMessage(role: "assistant", content: text.isEmpty && !calls.isEmpty ? nil : .text(text))
            if !calls.isEmpty { delta.toolCalls = calls }
            if !thoughts.isEmpty { delta.reasoningContent = thoughts }
            let finish = candidate["finishReason"]?.stringValue.map { GeminiConversion.finishReason($0, sawTools: toolCount > 0) }
            choices.append(ChunkChoice(index: candidate["index"]?.intValue ?? position, delta: delta, finishReason: finish))
        }
        return ChatChunk(id: id, created: created, model: model, choices: choices,
                         usage: value["usageMetadata"].map(GeminiConversion.usage))
    }
}

enum GeminiConversion {
    static func request(_ request: ChatRequest) throws(ProviderError) -> JSONValue {
        var system: [JSONValue] = []
        if let text = request.system { system.append(["text": .string(text)]) }
        var turns = ConversationTurns()
        var toolNames: [String: String] = [:]
        for message in request.messages {
            switch message.role ?? "user" {
            case "system", "developer":
                if let text = message.text { system.append(["text": .string(text)]) }
            case "assistant":
                var parts: [JSONValue] = []
                if let text = message.text, !text.isEmpty { parts.append(["text": .string(text)]) }
                for call in message.toolCalls ?? [] {
                    let args: JSONValue
                    do {
                        args = try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "{}").utf8))
                    } catch {
                        throw ProviderError(kind: .transformingRequest, message: "Tool call arguments are not JSON")
                    }
                    if let id = call.id, let name = call.function.name { toolNames[id] = name }
                    parts.append(["functionCall": ["name": .string(call.function.name ?? ""), "args": args]])
                }
                turns.append("model", parts)
            case "tool":
                let text = message.text ?? ""
                let result = (try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8))).flatMap { $0.objectValue.map(JSONValue.object) }
                    ?? ["content": .string(text)]
                let name = message.name ?? message.toolCallID.flatMap { toolNames[$0] } ?? ""
                turns.append("user", [["functionResponse": ["name": .string(name), "response": result]]])
            default:
                turns.append("user", parts(message))
            }
        }
        var body: [String: JSONValue] = [
            "contents": turns.json(contentKey: "parts"),
        ]
        if !system.isEmpty { body["systemInstruction"] = ["parts": .array(system)] }
        var generation: [String: JSONValue] = [:]
        if let value = request.temperature { generation["temperature"] = .double(value) }
        if let value = request.topP { generation["topP"] = .double(value) }
        if let value = request.maxTokens ?? request.maxCompletionTokens { generation["maxOutputTokens"] = .integer(Int64(value)) }
        if let stop = request.stop, !stop.isEmpty { generation["stopSequences"] = .array(stop.map(JSONValue.string)) }
        if let value = request.n { generation["candidateCount"] = .integer(Int64(value)) }
        if let value = request.seed { generation["seed"] = .integer(value) }
        if let value = request.presencePenalty { generation["presencePenalty"] = .double(value) }
        if let value = request.frequencyPenalty { generation["frequencyPenalty"] = .double(value) }
        switch request.responseFormat?["type"]?.stringValue {
        case "json_object": generation["responseMimeType"] = "application/json"
        case "json_schema":
            generation["responseMimeType"] = "application/json"
            if let schema = request.responseFormat?["json_schema"]?["schema"] { generation["responseSchema"] = cleanSchema(schema) }
        default: break
        }
        if !generation.isEmpty { body["generationConfig"] = .object(generation) }
        if let tools = request.tools, !tools.isEmpty {
            body["tools"] = [["functionDeclarations": .array(tools.map { tool in
                var declaration: [String: JSONValue] = ["name": .string(tool.function.name)]
                if let description = tool.function.description { declaration["description"] = .string(description) }
                if let parameters = tool.function.parameters { declaration["parameters"] = cleanSchema(parameters) }
                return .object(declaration)
            })]]
        }
        switch request.toolChoice {
        case .string("none")?: body["toolConfig"] = ["functionCallingConfig": ["mode": "NONE"]]
        case .string("auto")?: body["toolConfig"] = ["functionCallingConfig": ["mode": "AUTO"]]
        case .string("required")?: body["toolConfig"] = ["functionCallingConfig": ["mode": "ANY"]]
        case .object(let choice)?:
            if let name = choice["function"]?["name"] {
                body["toolConfig"] = ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": [name]]]
            }
        default: break
        }
        return .object(body)
    }

    static func parts(_ message: ChatMessage) -> [JSONValue] {
        message.contentPieces.compactMap { piece -> JSONValue? in
            switch piece {
            case .text(let text):
                return ["text": .string(text)]
            case .imageURL(let url):
                if let data = DataURL(url) {
                    return ["inlineData": ["mimeType": .string(data.mediaType), "data": .string(data.base64)]]
                }
                return ["fileData": ["fileUri": .string(url), "mimeType": .string(mimeType(for: url))]]
            case .other:
                return nil
            }
        }
    }

    static func mimeType(for url: String) -> String {
        let lower = url.lowercased()
        if lower.hasSuffix(".png") { return "image/png" }
        if lower.hasSuffix(".gif") { return "image/gif" }
        if lower.hasSuffix(".webp") { return "image/webp" }
        return "image/jpeg"
    }

    /// JSON Schema keywords Gemini rejects are removed, recursively.
    static func cleanSchema(_ schema: JSONValue) -> JSONValue {
        switch schema {
        case .object(let object):
            var cleaned: [String: JSONValue] = [:]
            for (key, value) in object where key != "$schema" && key != "additionalProperties" {
                cleaned[key] = cleanSchema(value)
            }
            return .object(cleaned)
        case .array(let items):
            return .array(items.map(cleanSchema))
        default:
            return schema
        }
    }

    static func finishReason(_ reason: String, sawTools: Bool) -> FinishReason {
        switch reason {
        case "STOP": return sawTools ? .toolCalls : .stop
        case "MAX_TOKENS": return .length
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": return .contentFilter
        default: return FinishReason(rawValue: reason.lowercased())
        }
    }

    static func usage(_ value: JSONValue) -> Usage {
        let thoughts = value["thoughtsTokenCount"]?.intValue
        let candidates = value["candidatesTokenCount"]?.intValue
        var usage = Usage(promptTokens: value["promptTokenCount"]?.intValue,
                          completionTokens: candidates.map { $0 + (thoughts ?? 0) } ?? thoughts,
                          totalTokens: value["totalTokenCount"]?.intValue)
        if let cached = value["cachedContentTokenCount"]?.intValue {
            usage.unknownFields["prompt_tokens_details"] = ["cached_tokens": .integer(Int64(cached))]
        }
        if let thoughts { usage.unknownFields["completion_tokens_details"] = ["reasoning_tokens": .integer(Int64(thoughts))] }
        return usage
    }
}
