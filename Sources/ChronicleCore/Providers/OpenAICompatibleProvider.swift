import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where a provider's own API key comes from.
public enum ProviderKey: Sendable, Hashable {
    /// No key: no `Authorization` header is sent (local servers).
    case none
    /// A literal key.
    case literal(String)
    /// An environment variable, read at each request so that a key set later is picked up.
    case environment(String)

    /// The key, or an error naming the variable when it is unset. Never returns the variable's name.
    func resolve(providerName: String) throws(ProviderError) -> String? {
        switch self {
        case .none: return nil
        case .literal(let key): return key
        case .environment(let variable):
            if let value = getenv(variable), let key = String(validatingCString: value), !key.isEmpty {
                return key
            }
            throw ProviderError(
                kind: .authMissing,
                message: "No API key for provider '\(providerName)': environment variable \(variable) is not set"
            )
        }
    }
}

/// How a request is adapted for an OpenAI-format upstream; custom providers set these with `transforms`.
public struct OpenAIRequestTransforms: Sendable, Hashable {
    /// When false, a message's `name` is folded into its content as `"name: content"`.
    public var supportsMessageName: Bool
    /// When true, a top-level `system` becomes a leading system message.
    public var systemInMessages: Bool
    /// Removed from the front of the model name before sending.
    public var stripModelPrefix: String?
    /// Ask for `stream_options.include_usage` when streaming so usage is always recorded.
    public var requestStreamUsage: Bool
    /// Request fields the upstream rejects, removed before sending.
    public var unsupportedFields: Set<String>
    /// The upstream reports streamed usage under `x_groq.usage` (Groq).
    public var usageInXGroq: Bool
    /// Turn Groq's `tool_use_failed` errors into the tool call the model meant, read from `failed_generation`.
    public var recoversToolUseFailures = false
    /// The upstream serves OpenAI's Responses API next to chat completions (OpenAI itself, or a proxy of
    /// it): `/v1/responses` requests then go to it as the client's bytes, at the chat URL with its
    /// `/chat/completions` replaced by `/responses`. Chat-only servers get them translated.
    public var servesResponses = false

    public init(supportsMessageName: Bool = true, systemInMessages: Bool = true, stripModelPrefix: String? = nil,
                requestStreamUsage: Bool = false, unsupportedFields: Set<String> = [], usageInXGroq: Bool = false) {
        self.supportsMessageName = supportsMessageName
        self.systemInMessages = systemInMessages
        self.stripModelPrefix = stripModelPrefix
        self.requestStreamUsage = requestStreamUsage
        self.unsupportedFields = unsupportedFields
        self.usageInXGroq = usageInXGroq
    }

    /// Whether a request kept as bytes can be forwarded with only its model replaced and members removed:
    /// not when message names must be folded into content or a top-level `system` moved into the messages.
    func canForward(_ request: WireChatRequest) -> Bool {
        (supportsMessageName || !request.hasMessageNames) && !(systemInMessages && request.hasSystem)
    }

    /// The model name sent upstream for the model string `model`.
    func upstreamModel(_ model: String) -> String {
        if let stripModelPrefix, model.hasPrefix(stripModelPrefix) { return String(model.dropFirst(stripModelPrefix.count)) }
        return model
    }

    /// Applies the transforms to a request before it is encoded.
    public func apply(to request: inout ChatRequest) {
        request.stripModelPrefix(stripModelPrefix)
        if !supportsMessageName {
            for index in request.messages.indices {
                guard let name = request.messages[index].name else { continue }
                if let text = request.messages[index].content?.text {
                    request.messages[index].content = .text("\(name): \(text)")
                }
                request.messages[index].name = nil
            }
        }
        if systemInMessages, let system = request.system {
            request.messages.insert(ChatMessage(role: "system", content: .text(system)), at: 0)
            request.system = nil
        }
        for field in unsupportedFields {
            switch field {
            case "logprobs": request.logprobs = nil
            case "top_logprobs": request.topLogprobs = nil
            case "logit_bias": request.logitBias = nil
            case "n": request.n = nil
            case "stream_options": request.streamOptions = nil
            default: request.unknownFields.removeValue(forKey: field)
            }
        }
        if requestStreamUsage, request.isStreaming {
            var options = request.streamOptions?.objectValue ?? [:]
            options["include_usage"] = true
            request.streamOptions = .object(options)
        }
    }
}

/// Where an OpenAI-format provider's requests go.
public enum OpenAIEndpoint: Sendable, Hashable {
    /// A fixed chat-completions URL.
    case url(String)
    /// Azure OpenAI: `{endpoint}/openai/deployments/{model}/chat/completions?api-version=…`, with the model
    /// name (prefix stripped) as the deployment and the key in an `api-key` header. The endpoint may come
    /// from an environment variable.
    case azure(endpoint: ProviderKey, apiVersion: String)
}

/// A provider speaking OpenAI's chat-completions API: OpenAI itself, the OpenAI-compatible built-ins, Azure
/// OpenAI, and custom endpoints from the configuration.
public struct OpenAICompatibleProvider: ChatModelProvider {
    public let name: String
    public let label: String
    public let endpoint: OpenAIEndpoint
    public let key: ProviderKey
    public let routingPrefixes: [String]
    public let transforms: OpenAIRequestTransforms
    /// Extra headers sent with every request, after `Authorization` (so they may replace it).
    public let headers: [(String, String)]
    /// The vendor's own endpoint, for which the key is required. A request sent anywhere else (an
    /// `override_url`, or this provider pointed at another server) may go without a key, since
    /// self-hosted OpenAI-compatible servers often take none: it then carries no `Authorization` header.
    /// When `nil`, a key that cannot be resolved always fails the request.
    public let keyRequiredOnlyAt: String?
    let transport: UpstreamHTTPClient

    /// Models listed by `GET /v1/models` while the provider's key is available.
    public var models: [String] = []

    public var advertisedModels: [String] {
        guard !models.isEmpty, (try? key.resolve(providerName: name)) ?? nil != nil else { return [] }
        return models
    }

    public init(name: String, label: String? = nil, url: String, key: ProviderKey, routingPrefixes: [String] = [],
                transforms: OpenAIRequestTransforms = OpenAIRequestTransforms(), headers: [(String, String)] = [],
                keyRequiredOnlyAt: String? = nil, transport: UpstreamHTTPClient) {
        self.init(name: name, label: label, endpoint: .url(url), key: key, routingPrefixes: routingPrefixes,
                  transforms: transforms, headers: headers, keyRequiredOnlyAt: keyRequiredOnlyAt, transport: transport)
    }

    public init(name: String, label: String? = nil, endpoint: OpenAIEndpoint, key: ProviderKey,
                routingPrefixes: [String] = [], transforms: OpenAIRequestTransforms = OpenAIRequestTransforms(),
                headers: [(String, String)] = [], keyRequiredOnlyAt: String? = nil, transport: UpstreamHTTPClient) {
        self.name = name
        self.label = label ?? name
        self.endpoint = endpoint
        self.key = key
        self.routingPrefixes = routingPrefixes
        self.transforms = transforms
        self.headers = headers
        self.keyRequiredOnlyAt = keyRequiredOnlyAt
        self.transport = transport
    }

    public var messagesTranslation: AnthropicIngress.Upstream { .openAICompatible }

    public func forwardsWire(_ request: WireChatRequest) -> Bool {
        transforms.canForward(request)
    }

    /// Azure OpenAI and upstreams configured as serving the Responses API take the client's bytes.
    public func forwardsResponses(_ request: ResponsesCall) -> Bool {
        if case .azure = endpoint { return true }
        return transforms.servesResponses
    }

    /// The Responses API endpoint next to the chat endpoint `chatURL`: its `/chat/completions` replaced by
    /// `/responses` (a URL without it is taken as the Responses endpoint itself).
    static func responsesURL(_ chatURL: String) -> String {
        let (path, query) = chatURL.firstIndex(of: "?").map { (String(chatURL[..<$0]), String(chatURL[$0...])) }
            ?? (chatURL, "")
        guard path.hasSuffix("/chat/completions") else { return chatURL }
        return String(path.dropLast("/chat/completions".count)) + "/responses" + query
    }

    /// The request's key, else the provider's; `nil` when there is none and the destination takes none.
    func resolveKey(_ request: ProviderRequest) throws(ProviderError) -> String? {
        if let key = request.apiKey { return key }
        do {
            return try key.resolve(providerName: name)
        } catch {
            guard let required = keyRequiredOnlyAt, case .url(let fixed) = endpoint,
                  (request.overrideURL ?? fixed) != required
            else { throw error }
            return nil
        }
    }

    public func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        let apiKey = try resolveKey(request)
        if let responses = request.responses {
            return try await relay(responses, apiKey: apiKey, request: request)
        }
        let requestedModel: String
        let isStreaming: Bool
        let payload: ByteBuffer
        if let wire = request.wire {
            requestedModel = transforms.upstreamModel(request.body.model ?? "")
            isStreaming = wire.isStreaming
            payload = wire.upstreamBody(model: requestedModel, requestStreamUsage: transforms.requestStreamUsage,
                                        removing: transforms.unsupportedFields)
        } else {
            var body = request.body
            transforms.apply(to: &body)
            requestedModel = body.model ?? ""
            isStreaming = body.isStreaming
            do {
                payload = ByteBuffer(bytes: try JSONCoding.encodeBytes(body))
            } catch {
                throw ProviderError(kind: .transformingRequest, message: "Could not encode the request: \(error)")
            }
        }

        var httpHeaders = HTTPHeaders()
        let url: String
        switch endpoint {
        case .url(let fixed):
            url = fixed
            if let apiKey { httpHeaders.add(name: "authorization", value: "Bearer \(apiKey)") }
        case .azure(let base, let apiVersion):
            url = try Self.azureURL(base: base, apiVersion: apiVersion, deployment: requestedModel, provider: name)
            if let apiKey { httpHeaders.add(name: "api-key", value: apiKey) }
        }
        httpHeaders.add(name: "accept", value: isStreaming ? "text/event-stream" : "application/json")
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }

        let response: UpstreamResponse
        do {
            response = try await transport.post(
                url: request.overrideURL ?? url, headers: httpHeaders, body: payload, timeout: request.timeout)
        } catch {
            guard transforms.recoversToolUseFailures,
                  let recovered = Self.recoverToolUse(from: error, model: requestedModel)
            else { throw error }
            return ChatEventStream(events: [.single(recovered), .responseInfo(ResponseInfo(model: requestedModel))])
        }

        // A request relayed as bytes gets its answer relayed as bytes: only a summary is read from it here.
        let relaysWire = request.wire != nil
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            return streamEvents(response, requestedModel: requestedModel, idleTimeout: request.streamIdleTimeout,
                                relaysWire: relaysWire)
        }
        let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
        if relaysWire, let summary = ChatResponse.summary(of: Array(bytes.readableBytesView)) {
            return ChatEventStream(events: [.single(summary), .responseInfo(ResponseInfo(model: summary.model ?? requestedModel))])
        }
        var decoded: ChatResponse
        do {
            decoded = try JSONCoding.decode(ChatResponse.self, from: bytes.readableBytesView)
        } catch {
            throw ProviderError(
                kind: .parsingResponse, status: Int(response.status.code),
                body: UpstreamHTTPClient.errorBody(bytes),
                message: "Could not parse the provider's response: \(describeDecodingError(error))")
        }
        if decoded.choices.isEmpty, let error = decoded.unknownFields["error"] {
            throw ProviderError(kind: .generic, status: Int(response.status.code), body: .object(["error": error]),
                                message: error["message"]?.stringValue)
        }
        if WireJSON.isForwardable(bytes.readableBytesView) { decoded.wireJSON = Array(bytes.readableBytesView) }
        return ChatEventStream(events: [
            .single(decoded), .responseInfo(ResponseInfo(model: decoded.model ?? requestedModel)),
        ])
    }

    /// Sends the client's Responses request with only `model` replaced and relays the upstream's answer as
    /// its bytes: a whole body, or the event stream part by part as it comes off the network.
    private func relay(_ responses: ResponsesCall, apiKey: String?, request: ProviderRequest) async throws
        -> ChatEventStream
    {
        let model = transforms.upstreamModel(request.body.model ?? responses.wire.model)
        let streaming = responses.wire.isStreaming
        var httpHeaders = HTTPHeaders()
        let url: String
        switch endpoint {
        case .url(let fixed):
            url = Self.responsesURL(request.overrideURL ?? fixed)
            if let apiKey { httpHeaders.add(name: "authorization", value: "Bearer \(apiKey)") }
        case .azure(let base, _):
            // Azure's Responses API is its v1 API: one endpoint, the deployment named by `model`.
            if let overrideURL = request.overrideURL {
                url = Self.responsesURL(overrideURL)
            } else {
                guard let resolved = try base.resolve(providerName: name) else {
                    throw ProviderError(kind: .authMissing, message: "No Azure OpenAI endpoint for provider '\(name)'")
                }
                var trimmed = resolved
                while trimmed.hasSuffix("/") { trimmed.removeLast() }
                url = trimmed + "/openai/v1/responses"
            }
            if let apiKey { httpHeaders.add(name: "api-key", value: apiKey) }
        }
        httpHeaders.add(name: "accept", value: streaming ? "text/event-stream" : "application/json")
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }
        let response = try await transport.post(url: url, headers: httpHeaders,
                                                body: responses.wire.upstreamBody(model: model), timeout: request.timeout)
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            return ChatEventStream.decoding(response, idleTimeout: request.streamIdleTimeout,
                                            decoder: RelayedEventStreamDecoder<ResponsesWireSummary> { .relayedResponses($0) })
        }
        let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
        let summary = ResponsesWireSummary.response(bytes.readableBytesView)
        // An error body with a success status is still the upstream's failure, and may be retried.
        if let error = summary?.providerError { throw error }
        return ChatEventStream(events: [
            .relayedResponses(RelayedResponsesPart(bytes: bytes, isEventStream: false, summary: summary, endsAnswer: true)),
            .responseInfo(ResponseInfo(model: summary?.model ?? model)),
        ])
    }

    private func streamEvents(_ response: UpstreamResponse, requestedModel: String, idleTimeout: Duration,
                              relaysWire: Bool) -> ChatEventStream
    {
        ChatEventStream.decoding(
            response, idleTimeout: idleTimeout,
            decoder: ServerSentEventDecoder(OpenAIStreamHandler(
                requestedModel: requestedModel, usageInXGroq: transforms.usageInXGroq, relaysWire: relaysWire)))
    }
}

/// OpenAI-format SSE: each `data:` is a chunk; `[DONE]` is skipped; `event: error` fails the stream.
struct OpenAIStreamHandler: ServerSentEventHandler {
    let requestedModel: String
    let usageInXGroq: Bool
    /// Chunks are relayed as they came, so only a summary of each is read (``ChatChunk/summary(of:)``).
    let relaysWire: Bool
    var providerModel: String?

    init(requestedModel: String, usageInXGroq: Bool, relaysWire: Bool = false) {
        self.requestedModel = requestedModel
        self.usageInXGroq = usageInXGroq
        self.relaysWire = relaysWire
    }

    mutating func handle(_ event: ServerSentEvent) throws(ProviderError) -> ChatStreamEvent? {
        if event.event == "error" {
            let body = UpstreamHTTPClient.errorBody(ByteBuffer(bytes: event.data))
            throw ProviderError(kind: .generic, body: body,
                                message: body["message"]?.stringValue ?? body["error"]?["message"]?.stringValue)
        }
        if event.data.elementsEqual("[DONE]".utf8) { return nil }
        if relaysWire, let summary = ChatChunk.summary(of: event.data, readsIdentity: providerModel == nil) {
            if providerModel == nil { providerModel = summary.model }
            return .chunk(summary)
        }
        var chunk = try decodeStreamedJSON(ChatChunk.self, event.data)
        if chunk.choices.isEmpty, let error = chunk.unknownFields["error"] {
            throw ProviderError(kind: .generic, body: .object(["error": error]), message: error["message"]?.stringValue)
        }
        if usageInXGroq, chunk.usage == nil, let usage = chunk.unknownFields["x_groq"]?["usage"],
            let data = try? JSONCoding.encode(usage)
        {
            chunk.usage = try? JSONCoding.decode(Usage.self, from: data)
        } else if WireJSON.isForwardable(event.data) {
            chunk.wireJSON = event.data
        }
        if providerModel == nil { providerModel = chunk.model }
        return .chunk(chunk)
    }

    mutating func finish() throws(ProviderError) -> [ChatStreamEvent] {
        [.responseInfo(ResponseInfo(model: providerModel ?? requestedModel))]
    }
}

extension OpenAICompatibleProvider {
    static func azureURL(base: ProviderKey, apiVersion: String, deployment: String, provider: String)
        throws(ProviderError) -> String
    {
        guard var endpoint = try base.resolve(providerName: provider), !endpoint.isEmpty else {
            throw ProviderError(kind: .authMissing, message: "No Azure OpenAI endpoint is configured for provider '\(provider)'")
        }
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        let encoded = deployment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? deployment
        return "\(endpoint)/openai/deployments/\(encoded)/chat/completions?api-version=\(apiVersion)"
    }

    /// Groq rejects a generation whose tool call it could not parse (`tool_use_failed`) but returns the
    /// text; the call is usually recoverable from it.
    static func recoverToolUse(from error: ProviderError, model: String) -> ChatResponse? {
        guard error.kind == .badInput, error.body?["error"]?["code"] == "tool_use_failed",
              let generation = error.body?["error"]?["failed_generation"]?.stringValue,
              let start = generation.firstIndex(of: "{"), let end = generation.lastIndex(of: "}"), start < end,
              let parsed = try? JSONCoding.decode(JSONValue.self, from: Array(generation[start...end].utf8)),
              let calls = parsed["tool_calls"]?.arrayValue, !calls.isEmpty
        else { return nil }
        let toolCalls = calls.map { call in
            let arguments = call["parameters"].flatMap { try? JSONCoding.encodeToString($0) } ?? "{}"
            return ToolCall(id: "call_" + UUID().uuidString.lowercased(), type: call["type"]?.stringValue ?? "function",
                            function: FunctionCall(name: call["function"]?["name"]?.stringValue, arguments: arguments))
        }
        return ChatResponse(
            id: "chatcmpl-" + UUID().uuidString.lowercased(), created: unixNow(), model: model,
            choices: [ChatChoice(message: ChatMessage(role: "assistant", toolCalls: toolCalls), finishReason: .toolCalls)])
    }
}

/// A one-line description of a decoding error that says where the problem is.
public func describeDecodingError(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return String(describing: error) }
    func path(_ codingPath: [any CodingKey]) -> String {
        var result = ""
        for key in codingPath {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return result.isEmpty ? "body" : result
    }
    switch error {
    case .typeMismatch(_, let context):
        return "\(path(context.codingPath)): \(context.debugDescription)"
    case .valueNotFound(_, let context):
        return "\(path(context.codingPath)): value is missing or null"
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath + [key])): required field is missing"
    case .dataCorrupted(let context):
        let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
        return "\(path(context.codingPath)): \(underlying ?? context.debugDescription)"
    @unknown default:
        return String(describing: error)
    }
}

