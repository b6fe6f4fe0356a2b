import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Anthropic's Messages API: internal requests are converted to messages with content blocks, and answers
/// and streams are converted back, by the conversions in `Formats/AnthropicMessages`.
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

    /// Anthropic requests go up as the client wrote them.
    public func forwardsMessages(_ request: MessagesCall) -> Bool { true }

    /// The Messages API has no `response_format`: structured output is asked for with a forced tool.
    public var supportsResponseFormat: Bool { false }

    public func send(_ request: ProviderRequest) async throws -> ChatEventStream {
        guard let apiKey = try request.apiKey ?? key.resolve(providerName: name) else {
            throw ProviderError(kind: .authMissing, message: "No API key for provider '\(name)'")
        }
        if let messages = request.messages {
            return try await relay(messages, model: request.body.model ?? messages.wire.model, apiKey: apiKey,
                                   request: request)
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
        let httpHeaders = upstreamHeaders(apiKey: apiKey, streaming: body.isStreaming)

        let response = try await transport.post(
            url: request.overrideURL ?? url, headers: httpHeaders, body: payload, timeout: request.timeout)
        let requestedModel = body.model ?? ""
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            return streamEvents(response, requestedModel: requestedModel, idleTimeout: request.streamIdleTimeout)
        }
        let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
        let reply: AnthropicReply
        do {
            reply = try JSONCoding.decode(AnthropicReply.self, from: bytes.readableBytesView)
        } catch {
            throw ProviderError(kind: .parsingResponse, status: Int(response.status.code),
                                body: UpstreamHTTPClient.errorBody(bytes),
                                message: "Could not parse the provider's response: \(describeDecodingError(error))")
        }
        switch reply {
        case .error(let error):
            throw AnthropicConversion.providerError(error)
        case .message(let message):
            let converted = AnthropicConversion.response(message, requestedModel: requestedModel)
            return ChatEventStream(events: [
                .single(converted), .responseInfo(ResponseInfo(model: converted.model ?? requestedModel)),
            ])
        }
    }

    /// The headers of a request to the upstream: the key, the API version, the client's betas.
    func upstreamHeaders(apiKey: String, streaming: Bool, version: String? = nil, beta: String? = nil) -> HTTPHeaders {
        var httpHeaders = HTTPHeaders()
        httpHeaders.add(name: "x-api-key", value: apiKey)
        httpHeaders.add(name: "anthropic-version", value: version ?? Self.apiVersion)
        if let beta { httpHeaders.add(name: "anthropic-beta", value: beta) }
        httpHeaders.add(name: "accept", value: streaming ? "text/event-stream" : "application/json")
        for (name, value) in headers { httpHeaders.replaceOrAdd(name: name, value: value) }
        return httpHeaders
    }

    /// The model name sent upstream for the model string `model`.
    func upstreamModel(_ model: String) -> String {
        if let stripModelPrefix, model.hasPrefix(stripModelPrefix) { return String(model.dropFirst(stripModelPrefix.count)) }
        return model
    }

    /// Sends the client's Anthropic request with only `model` replaced and relays the upstream's answer
    /// as its bytes: a whole body, or the event stream part by part as it comes off the network.
    private func relay(_ messages: MessagesCall, model: String, apiKey: String, request: ProviderRequest)
        async throws -> ChatEventStream
    {
        let streaming = messages.wire.isStreaming
        let response = try await transport.post(
            url: request.overrideURL ?? url,
            headers: upstreamHeaders(apiKey: apiKey, streaming: streaming, version: messages.anthropicVersion,
                                     beta: messages.anthropicBeta),
            body: messages.wire.upstreamBody(model: upstreamModel(model)), timeout: request.timeout)
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if contentType.hasPrefix("text/event-stream") {
            return ChatEventStream.decoding(response, idleTimeout: request.streamIdleTimeout,
                                            decoder: RelayedEventStreamDecoder<AnthropicWireSummary> { .relayedMessages($0) })
        }
        let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
        let summary = AnthropicWireSummary.message(bytes.readableBytesView)
        // An error body with a success status is still the upstream's failure, and may be retried.
        if let error = summary?.providerError { throw error }
        return ChatEventStream(events: [
            .relayedMessages(RelayedMessagesPart(bytes: bytes, isEventStream: false, summary: summary, endsAnswer: true)),
            .responseInfo(ResponseInfo(model: summary?.model ?? model)),
        ])
    }

    private func streamEvents(_ response: UpstreamResponse, requestedModel: String, idleTimeout: Duration)
        -> ChatEventStream
    {
        ChatEventStream.decoding(response, idleTimeout: idleTimeout,
                                 decoder: ServerSentEventDecoder(AnthropicStreamState(requestedModel: requestedModel)))
    }
}

