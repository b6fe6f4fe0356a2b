import Foundation
import NIOCore

extension BedrockProvider {
    /// `InvokeModel` on a Titan Text Embeddings model (one call per text, in order) or a Cohere Embed model
    /// (one call for all texts); the answer written in OpenAI's format by the gateway, base64 included.
    /// Tokens are Titan's `inputTextTokenCount`, or Bedrock's `x-amzn-bedrock-input-token-count` header.
    public func embed(_ request: ProviderRequest) async throws -> EmbeddingsAnswer {
        guard let embeddings = request.embeddings else {
            throw ProviderError(kind: .transformingRequest, message: "No embeddings request to send")
        }
        var model = request.body.model ?? ""
        for prefix in stripModelPrefix.map({ [$0] }) ?? routingPrefixes where model.hasPrefix(prefix) {
            model = String(model.dropFirst(prefix.count))
            break
        }
        guard !model.isEmpty else { throw ProviderError(kind: .transformingRequest, message: "Bedrock needs a model id") }
        let bodies = try EmbeddingsConversion.Bedrock.requests(embeddings, model: model, provider: name)
        var vectors = EmbeddingVectors(vectors: [])
        for body in bodies {
            let response = try await signedPost(model: model, action: "invoke", payload: try JSONCoding.encode(body),
                                                accept: "application/json", request: request)
            let answer = try await transport.readJSON(response, idleTimeout: request.streamIdleTimeout)
            let part = try EmbeddingsConversion.Bedrock.vectors(answer, provider: name)
            vectors.vectors += part.vectors
            let tokens = part.promptTokens
                ?? response.headers.first(name: "x-amzn-bedrock-input-token-count").flatMap { Int($0) }
            if let tokens { vectors.promptTokens = (vectors.promptTokens ?? 0) + tokens }
        }
        try EmbeddingsConversion.checkCount(vectors, expected: embeddings.input.count, provider: name)
        return EmbeddingsAnswer(vectors, model: model, format: embeddings.encodingFormat)
    }
}
