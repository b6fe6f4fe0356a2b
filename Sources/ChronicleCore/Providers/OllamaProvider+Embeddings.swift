import Foundation
import NIOCore
import NIOHTTP1

extension OllamaProvider {
    /// `/api/embed`, beside the configured chat endpoint; the answer written in OpenAI's format by the
    /// gateway, base64 included.
    public func embed(_ request: ProviderRequest) async throws -> EmbeddingsAnswer {
        guard let embeddings = request.embeddings else {
            throw ProviderError(kind: .transformingRequest, message: "No embeddings request to send")
        }
        let apiKey = try request.apiKey ?? key.resolve(providerName: name)
        var model = request.body.model ?? ""
        if let stripModelPrefix, model.hasPrefix(stripModelPrefix) { model = String(model.dropFirst(stripModelPrefix.count)) }
        guard !model.isEmpty else { throw ProviderError(kind: .transformingRequest, message: "Ollama needs a model name") }
        let body = try EmbeddingsConversion.Ollama.request(embeddings, model: model, provider: name)
        var headers = HTTPHeaders()
        if let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        for (name, value) in self.headers { headers.replaceOrAdd(name: name, value: value) }
        let response = try await transport.post(
            url: EmbeddingsConversion.Ollama.url(forChatURL: request.overrideURL ?? url), headers: headers,
            body: ByteBuffer(bytes: try JSONCoding.encodeBytes(body)), timeout: request.timeout)
        let answer = try await transport.readJSON(response, idleTimeout: request.streamIdleTimeout)
        let vectors = try EmbeddingsConversion.Ollama.vectors(answer, provider: name)
        try EmbeddingsConversion.checkCount(vectors, expected: embeddings.input.count, provider: name)
        return EmbeddingsAnswer(vectors, model: answer["model"]?.stringValue ?? model, format: embeddings.encodingFormat)
    }
}
