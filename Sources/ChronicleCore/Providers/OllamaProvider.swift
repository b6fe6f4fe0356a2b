import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Ollama's native `/api/chat`: NDJSON streaming, tools with arguments as JSON objects (not strings),
/// images, and Ollama's durations in the response metadata.
public struct OllamaProvider: ChatModelProvider {
    public let name: String
    public let label: String
    /// The chat endpoint, `http://localhost:11434/api/chat` by default.
    public let url: String
    public let key: ProviderKey
    public let routingPrefixes: [String]
    public let stripModelPrefix: String?
    public let headers: [(String, String)]
    /// Where skipped stream lines are reported.
    public let logger: Logger
    let transport: UpstreamHTTPClient

    public static let defaultURL = "http://localhost:11434/api/chat"

    public init(name: String = "ollama", label: String? = nil, url: String = OllamaProvider.defaultURL,
                key: ProviderKey = .none, routingPrefixes: [String] = ["ollama/"], stripModelPrefix: String? = "ollama/",
                headers: [(String, String)] = [], logger: Logger = Logger(label: "chronicle.ollama"),
                transport: UpstreamHTTPClient) {
        self.logger = logger
        self.name = name
        self.label = label ?? (name == "ollama" ? "Ollama" : name)
        self.url = url
        self.key = key
        self.routingPrefixes = routingPrefixes
        self.stripModelPrefix = stripModelPrefix
        self.headers = headers
        self.transport = transport
    }

    public func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        let apiKey = try request.apiKey ?? key.resolve(providerName: name)
        var body = try await ImageFetcher(policy: transport.imageFetchPolicy).inlineImages(in: request.body)
        body.stripModelPrefix(stripModelPrefix)
        guard let model = body.model, !model.isEmpty else {
            throw ProviderError(kind: .transformingRequest, message: "Ollama needs a model name")
        }
        // Ollama does not stream tool calls reliably, so a request with tools is sent unstreamed; a client
        // that asked for a stream gets the whole answer as its one chunk.
        let streamsUpstream = body.isStreaming && (body.tools ?? []).isEmpty
        let payload: ByteBuffer
        do {
            payload = ByteBuffer(bytes: try JSONCoding.encodeBytes(try OllamaConversion.request(body, stream: streamsUpstream)))
        } catch let error as ProviderError {
            throw error
        } catch {
            throw ProviderError(kind: .transformingRequest, message: "Could not encode the request: \(error)")
        }
        var httpHeaders = HTTPHeaders()
        if let apiKey { httpHeaders.add(name: "authorization", value: "Bearer \(apiKey)") }
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }
        let sentAt = unixNow()
        let response = try await transport.post(
            url: request.overrideURL ?? url, headers: httpHeaders, body: payload, timeout: request.timeout)

        if !streamsUpstream {
            let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
            let line: JSONValue
            do {
                line = try JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView)
            } catch {
                throw ProviderError(kind: .parsingResponse, status: Int(response.status.code),
                                    body: UpstreamHTTPClient.errorBody(bytes),
                                    message: "Could not parse the provider's response: \(describeDecodingError(error))")
            }
            if let error = line["error"] { throw ProviderError(kind: .generic, body: ["error": error], message: error.stringValue) }
            var state = OllamaStreamState(model: model, created: sentAt)
            let reply = state.response(line)
            return ChatEventStream(events: [
                .single(reply), .responseInfo(ResponseInfo(model: reply.model ?? model, meta: OllamaConversion.durations(line))),
            ])
        }
        return ChatEventStream.decoding(
            response, idleTimeout: request.streamIdleTimeout,
            decoder: OllamaStreamDecoder(state: OllamaStreamState(model: model, created: sentAt), logger: logger))
    }
}

/// Ollama's NDJSON stream: one JSON object a line, the last with `done: true`.
///
/// A line that is not JSON is skipped with a warning, so that one corrupt line does not lose the rest of
/// the answer; a stream with nothing but such lines is a parsing error.
struct OllamaStreamDecoder: ResponseStreamDecoder {
    var lines = LineSplitter()
    var state: OllamaStreamState
    let logger: Logger
    var done = false
    var readLines = 0
    /// The first unreadable line's error, reported if no line can be read.
    var firstUnreadable: ProviderError?

    init(state: OllamaStreamState, logger: Logger) {
        self.state = state
        self.logger = logger
    }

    mutating func decode(_ bytes: ByteBufferView, into events: inout [ChatStreamEvent]) throws(ProviderError) {
        let split: [[UInt8]]
        do {
            split = try lines.split(bytes)
        } catch {
            throw ProviderError(kind: .parsingResponse, message: "A streamed line is too large")
        }
        for line in split where !done { events += try handle(line) }
    }

    mutating func finish(into events: inout [ChatStreamEvent]) throws(ProviderError) {
        if let rest = lines.finish(), !done { events += try handle(rest) }
        if readLines == 0, let firstUnreadable { throw firstUnreadable }
        guard done else {
            throw ProviderError(kind: .connectionClosed, message: "Ollama's stream ended before it was done")
        }
    }

    mutating func handle(_ line: [UInt8]) throws(ProviderError) -> [ChatStreamEvent] {
        let value: JSONValue
        do {
            value = try decodeStreamedJSON(JSONValue.self, line)
        } catch {
            // The line's text is not logged: it is the model's answer.
            logger.warning("skipped an unreadable line of Ollama's stream", metadata: [
                "bytes": "\(line.count)", "error.message": "\(error.message)",
            ])
            if firstUnreadable == nil { firstUnreadable = error }
            return []
        }
        readLines += 1
        if let error = value["error"] {
            throw ProviderError(kind: .generic, body: ["error": error], message: error.stringValue)
        }
        var events: [ChatStreamEvent] = [.chunk(state.chunk(value))]
        if value["done"] == true {
            events.append(.responseInfo(ResponseInfo(model: state.model, meta: OllamaConversion.durations(value))))
            done = true
        }
        return events
    }
}

/// Splits newline-delimited JSON as bytes arrive; memory is bounded by `maxLineSize`.
public struct LineSplitter: Sendable {
    public struct LineTooLong: Error, Sendable {}
    private var partial: [UInt8] = []
    private let maxLineSize: Int

    public init(maxLineSize: Int = 16 * 1024 * 1024) {
        self.maxLineSize = maxLineSize
    }

    /// The complete, non-blank lines `bytes` finishes.
    public mutating func split(_ bytes: some Collection<UInt8>) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if partial.last == UInt8(ascii: "\r") { partial.removeLast() }
                if partial.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) { lines.append(partial) }
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
                if partial.count > maxLineSize { throw LineTooLong() }
            }
        }
        return lines
    }

    /// A last line without its newline, if any.
    public mutating func finish() -> [UInt8]? {
        defer { partial = [] }
        return partial.contains(where: { $0 != UInt8(ascii: " ") }) ? partial : nil
    }
}

/// Converts Ollama lines to OpenAI-format chunks and responses.
struct OllamaStreamState {
    var model: String
    let created: Int64
    let id = "chatcmpl-" + UUID().uuidString.lowercased()
    var toolCount = 0

    init(model: String, created: Int64) {
        self.model = model
        self.created = created
    }

    mutating func calls(_ message: JSONValue) -> [ToolCall]? {
        guard let calls = message["tool_calls"]?.arrayValue, !calls.isEmpty else { return nil }
        return calls.map { call in
            defer { toolCount += 1 }
            let arguments = call["function"]?["arguments"]
            let text = arguments?.stringValue ?? arguments.flatMap { try? JSONCoding.encodeToString($0) } ?? "{}"
            return ToolCall(index: toolCount, id: call["id"]?.stringValue ?? "call_\(toolCount)", type: "function",
                            function: FunctionCall(name: call["function"]?["name"]?.stringValue, arguments: text))
        }
    }

    func usage(_ line: JSONValue) -> Usage? {
        let prompt = line["prompt_eval_count"]?.intValue
        let completion = line["eval_count"]?.intValue
        guard prompt != nil || completion != nil else { return nil }
        return Usage(promptTokens: prompt, completionTokens: completion, totalTokens: (prompt ?? 0) + (completion ?? 0))
    }

    func finishReason(_ line: JSONValue, sawTools: Bool) -> FinishReason? {
        guard line["done"] == true else { return nil }
        if sawTools { return .toolCalls }
        return line["done_reason"]?.stringValue.map { FinishReason(rawValue: $0) } ?? .stop
    }

    mutating func chunk(_ line: JSONValue) -> ChatChunk {
        if let reported = line["model"]?.stringValue { model = reported }
        let message = line["message"] ?? .null
        var delta = ChatMessage(role: message["role"]?.stringValue, content: message["content"]?.stringValue.map(MessageContent.text))
        delta.toolCalls = calls(message)
        if let thinking = message["thinking"]?.stringValue, !thinking.isEmpty { delta.reasoningContent = thinking }
        return ChatChunk(id: id, created: created, model: model,
                         choices: [ChunkChoice(index: 0, delta: delta, finishReason: finishReason(line, sawTools: toolCount > 0))],
                         usage: line["done"] == true ? usage(line) : nil)
    }

    mutating func response(_ line: JSONValue) -> ChatResponse {
        if let reported = line["model"]?.stringValue { model = reported }
        let message = line["message"] ?? .null
        var reply = ChatMessage(role: message["role"]?.stringValue ?? "assistant",
                                content: message["content"]?.stringValue.map(MessageContent.text))
        reply.toolCalls = calls(message)?.map { var call = $0; call.index = nil; return call }
        if let thinking = message["thinking"]?.stringValue, !thinking.isEmpty { reply.reasoningContent = thinking }
        var finish = finishReason(line, sawTools: toolCount > 0) ?? .stop
        if line["done"] == nil { finish = toolCount > 0 ? .toolCalls : .stop }
        return ChatResponse(id: id, created: created, model: model,
                            choices: [ChatChoice(message: reply, finishReason: finish)], usage: usage(line))
    }
}

enum OllamaConversion {
    static func request(_ request: ChatRequest, stream: Bool? = nil) throws -> JSONValue {
        var messages: [JSONValue] = []
        if let system = request.system { messages.append(["role": "system", "content": .string(system)]) }
        for message in request.messages {
            var converted: [String: JSONValue] = ["role": .string(message.role ?? "user")]
            var text = message.content?.text ?? ""
            if let name = message.name, !text.isEmpty { text = "\(name): \(text)" }
            converted["content"] = .string(text)
            if case .parts(let parts)? = message.content {
                let images = try parts.compactMap(\.imageURL).map { url -> JSONValue in
                    guard let data = DataURL(url) else {
                        throw ProviderError(kind: .transformingRequest, message: "Ollama takes images as base64 data URLs or fetchable http(s) URLs")
                    }
                    return .string(data.base64)
                }
                if !images.isEmpty { converted["images"] = .array(images) }
            }
            if let calls = message.toolCalls, !calls.isEmpty {
                converted["tool_calls"] = .array(try calls.map { call in
                    let arguments: JSONValue
                    do {
                        arguments = try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "{}").utf8))
                    } catch {
                        throw ProviderError(kind: .transformingRequest, message: "Tool call arguments are not JSON")
                    }
                    // Ollama wants the arguments as an object, not JSON text.
                    return ["function": ["name": .string(call.function.name ?? ""), "arguments": arguments]]
                })
            }
            messages.append(.object(converted))
        }
        var options: [String: JSONValue] = [:]
        if let value = request.temperature { options["temperature"] = .double(value) }
        if let value = request.topP { options["top_p"] = .double(value) }
        if let stop = request.stop, !stop.isEmpty { options["stop"] = .array(stop.map(JSONValue.string)) }
        if let value = request.maxTokens ?? request.maxCompletionTokens { options["num_predict"] = .integer(Int64(value)) }
        if let value = request.frequencyPenalty { options["frequency_penalty"] = .double(value) }
        if let value = request.presencePenalty { options["presence_penalty"] = .double(value) }
        if let value = request.seed { options["seed"] = .integer(value) }
        var body: [String: JSONValue] = [
            "model": .string(request.model ?? ""), "messages": .array(messages), "stream": .bool(stream ?? request.isStreaming),
        ]
        if !options.isEmpty { body["options"] = .object(options) }
        if let tools = request.tools, !tools.isEmpty { body["tools"] = try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(tools)) }
        if request.responseFormat?["type"] == "json_object" { body["format"] = "json" }
        if let schema = request.responseFormat?["json_schema"]?["schema"] { body["format"] = schema }
        for key in ["keep_alive", "think"] {
            if let value = request.unknownFields[key] { body[key] = value }
        }
        return .object(body)
    }

    /// Ollama's timings (nanoseconds), kept as response metadata.
    static func durations(_ line: JSONValue) -> JSONValue? {
        var meta: [String: JSONValue] = [:]
        for key in ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] {
            if let value = line[key] { meta[key] = value }
        }
        return meta.isEmpty ? nil : .object(meta)
    }
}
