/// What the translations of an embeddings request share: reading texts and vectors, and refusing clearly
/// what a provider's API cannot say.
public enum EmbeddingsConversion {
    /// The texts to embed for a provider that takes only text.
    /// - Throws: a 400 naming the provider when the input is token ids.
    static func texts(of request: EmbeddingsRequest, provider: String) throws(ProviderError) -> [String] {
        guard let texts = request.input.texts else {
            throw refusal("Provider '\(provider)' takes text only: `input` as token ids is accepted only by OpenAI-format providers")
        }
        return texts
    }

    /// A request the provider's API cannot express: the client's mistake, answered with a 400.
    static func refusal(_ message: String) -> ProviderError {
        ProviderError(kind: .transformingRequest, status: 400,
                      body: ["error": ["type": "invalid_request_error", "message": .string(message)]], message: message)
    }

    /// A vector read from a JSON array of numbers.
    static func vector(_ value: JSONValue?, provider: String) throws(ProviderError) -> [Float] {
        guard let items = value?.arrayValue else {
            throw ProviderError(kind: .parsingResponse, body: value,
                                message: "Provider '\(provider)' answered without an embedding vector")
        }
        var vector: [Float] = []
        vector.reserveCapacity(items.count)
        for item in items {
            guard let number = item.doubleValue else {
                throw ProviderError(kind: .parsingResponse, message: "Provider '\(provider)' answered with a vector holding a non-number")
            }
            vector.append(Float(number))
        }
        return vector
    }

    /// Checks that the provider answered with one vector per input.
    static func checkCount(_ vectors: EmbeddingVectors, expected: Int, provider: String) throws(ProviderError) {
        guard vectors.vectors.count == expected else {
            throw ProviderError(kind: .parsingResponse,
                                message: "Provider '\(provider)' answered with \(vectors.vectors.count) vectors for \(expected) inputs")
        }
    }
}
