import Foundation
import NIOCore
import NIOHTTP1

extension OpenAICompatibleProvider {
    /// Forwards the client's embeddings body with only `model` replaced, and relays the upstream's answer
    /// as it came, reading only its summary.
    public func embed(_ request: ProviderRequest) async throws -> EmbeddingsAnswer {
        guard let embeddings = request.embeddings else {
            throw ProviderError(kind: .transformingRequest, message: "No embeddings request to send")
        }
        let apiKey = try resolveKey(request)
        let model = transforms.upstreamModel(request.body.model ?? "")
        var headers = HTTPHeaders()
        let url: String
        switch endpoint {
        case .url(let fixed):
            url = Self.embeddingsURL(forChatURL: request.overrideURL ?? fixed)
            if let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        case .azure(let base, let apiVersion):
            let chat = try Self.azureURL(base: base, apiVersion: apiVersion, deployment: model, provider: name)
            url = Self.embeddingsURL(forChatURL: request.overrideURL ?? chat)
            if let apiKey { headers.add(name: "api-key", value: apiKey) }
        }
        headers.add(name: "accept", value: "application/json")
        for (name, value) in self.headers { headers.replaceOrAdd(name: name, value: value) }
        let response = try await transport.post(url: url, headers: headers, body: embeddings.upstreamBody(model: model),
                                                timeout: request.timeout)
        let bytes = try await transport.readBody(response, idleTimeout: request.streamIdleTimeout)
        guard let summary = EmbeddingsAnswer.summary(ofOpenAIAnswer: bytes, format: embeddings.encodingFormat) else {
            let body = UpstreamHTTPClient.errorBody(bytes)
            if let error = body["error"] {
                throw ProviderError(kind: .generic, status: Int(response.status.code), body: body,
                                    message: error["message"]?.stringValue ?? error.stringValue)
            }
            throw ProviderError(kind: .parsingResponse, status: Int(response.status.code), body: body,
                                message: "Could not parse the provider's response: not an embeddings list")
        }
        return EmbeddingsAnswer(body: bytes, summary: summary)
    }

    /// The embeddings endpoint beside a chat-completions endpoint: `…/chat/completions` becomes
    /// `…/embeddings` (the query, such as Azure's `api-version`, kept); a URL that names no chat endpoint
    /// gets `/embeddings` appended to its path.
    public static func embeddingsURL(forChatURL chat: String) -> String {
        var path = chat
        var query = ""
        if let mark = chat.firstIndex(of: "?") {
            path = String(chat[..<mark])
            query = String(chat[mark...])
        }
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/chat/completions") {
            path = String(path.dropLast("/chat/completions".count)) + "/embeddings"
        } else if !path.hasSuffix("/embeddings") {
            path += "/embeddings"
        }
        return path + query
    }
}
