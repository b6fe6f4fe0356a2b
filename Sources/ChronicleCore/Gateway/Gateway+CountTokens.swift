import NIOCore

/// What ``Gateway/countTokens(_:options:)`` got.
public enum TokenCount: Sendable {
    /// The upstream's answer, relayed as it came: its status and body.
    case counted(status: Int, body: ByteBuffer)
    /// The provider the model routes to has no token-counting endpoint. Chronicle never makes a number up.
    case unsupported(provider: String)
}

extension Gateway {
    /// Forwards an Anthropic `count_tokens` request to the provider its model routes to (the first
    /// choice: counting is not worth retrying elsewhere), when that provider speaks Anthropic's format;
    /// the body goes up with only `model` replaced. Nothing is recorded: no model is called.
    /// - Throws: ``GatewayError`` when the model cannot be routed or the upstream cannot be reached.
    public func countTokens(_ request: MessagesCall, options: RequestOptions = RequestOptions()) async throws
        -> TokenCount
    {
        let route: Route
        do {
            route = try resolve(.messages(request), options: options)
        } catch {
            throw GatewayError.lookup(error)
        }
        guard let choice = route.choices.first else { throw GatewayError.lookup(.modelNotSpecified) }
        guard let provider = choice.provider as? AnthropicProvider else {
            return .unsupported(provider: choice.provider.name)
        }
        do {
            let apiKey = try choice.key?.resolve(providerName: provider.name) ?? options.apiKey
            let (status, body) = try await provider.countTokens(
                request, model: choice.model, apiKey: apiKey, overrideURL: options.overrideURL,
                timeout: options.timeout ?? .seconds(60))
            return .counted(status: status, body: body)
        } catch {
            let failure = error as? ProviderError ?? ProviderError(kind: .generic, message: "Counting failed: \(error)")
            throw GatewayError.provider(failure, numRetries: 0, wasRateLimited: failure.kind == .rateLimit, attempts: [])
        }
    }
}

extension AnthropicProvider {
    /// The `count_tokens` endpoint beside the provider's messages endpoint.
    static func countTokensURL(_ messagesURL: String) -> String {
        let (base, query) = messagesURL.firstIndex(of: "?").map {
            (String(messagesURL[..<$0]), String(messagesURL[$0...]))
        } ?? (messagesURL, "")
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        return trimmed + "/count_tokens" + query
    }

    /// Sends a `count_tokens` request and returns the upstream's status and body.
    /// - Throws: ``ProviderError`` for an error status, as for a chat call.
    func countTokens(_ request: MessagesCall, model: String, apiKey: String?, overrideURL: String?, timeout: Duration)
        async throws -> (Int, ByteBuffer)
    {
        let resolved: String?
        if let apiKey { resolved = apiKey } else { resolved = try key.resolve(providerName: name) }
        guard let apiKey = resolved else {
            throw ProviderError(kind: .authMissing, message: "No API key for provider '\(name)'")
        }
        let response = try await transport.post(
            url: Self.countTokensURL(overrideURL ?? url),
            headers: upstreamHeaders(apiKey: apiKey, streaming: false, version: request.anthropicVersion,
                                     beta: request.anthropicBeta),
            body: request.wire.upstreamBody(model: upstreamModel(model)), timeout: timeout)
        return (Int(response.status.code), try await transport.readBody(response, idleTimeout: timeout))
    }
}
