import Foundation
import NIOCore
import NIOHTTP1

extension GeminiProvider {
    /// `embedContent` for one input, `batchEmbedContents` for several; the answer written in OpenAI's
    /// format by the gateway, base64 included.
    public func embed(_ request: ProviderRequest) async throws -> EmbeddingsAnswer {
        guard let embeddings = request.embeddings else {
            throw ProviderError(kind: .transformingRequest, message: "No embeddings request to send")
        }
        let apiKey = try request.apiKey ?? key.resolve(providerName: name)
        var model = request.body.model ?? ""
        if let stripModelPrefix, model.hasPrefix(stripModelPrefix) { model = String(model.dropFirst(stripModelPrefix.count)) }
        let body = try EmbeddingsConversion.Gemini.request(embeddings, model: model, provider: name)
        var headers = HTTPHeaders()
        if let apiKey { headers.add(name: "x-goog-api-key", value: apiKey) }
        for (name, value) in self.headers { headers.replaceOrAdd(name: name, value: value) }
        let path = model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? model
        let url = request.overrideURL
            ?? "\(baseURL)/models/\(path):\(EmbeddingsConversion.Gemini.method(for: embeddings))"
        let response = try await transport.post(url: url, headers: headers, body: ByteBuffer(bytes: try JSONCoding.encodeBytes(body)),
                                                timeout: request.timeout)
        let answer = try await transport.readJSON(response, idleTimeout: request.streamIdleTimeout)
        let vectors = try EmbeddingsConversion.Gemini.vectors(answer, provider: name)
        try EmbeddingsConversion.checkCount(vectors, expected: embeddings.input.count, provider: name)
        return EmbeddingsAnswer(vectors, model: model, format: embeddings.encodingFormat)
    }
}
