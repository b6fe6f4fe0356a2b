extension Gateway {
    /// Sends an embeddings request with routing, retries and fallback, and returns OpenAI's answer:
    /// an OpenAI-format provider's own body, or the gateway's translation of another provider's.
    ///
    /// ```swift
    /// let request = try EmbeddingsRequest.decode(ByteBuffer(string: #"{"model":"gemini/text-embedding-004","input":["a","b"]}"#))
    /// let answer = try await gateway.embed(request)
    /// print(answer.summary.count, answer.summary.dimensions)
    /// ```
    /// - Parameter call: the call, when the caller created it on accepting the request (the HTTP server
    ///   does, and finishes it itself); by default a new one, finished before this returns.
    /// - Throws: ``GatewayError`` when the request cannot be routed or every attempt failed.
    public func embed(_ request: EmbeddingsRequest, options: RequestOptions = RequestOptions(),
                      call: GatewayCall? = nil) async throws -> EmbeddingsAnswer {
        let stream = try await send(call: .embeddings(request), options: options, call: call)
        var answer: EmbeddingsAnswer?
        for try await event in stream {
            if case .embeddings(let embeddings) = event { answer = embeddings }
        }
        guard let answer else {
            throw ProviderError(kind: .parsingResponse, message: "The provider gave no embeddings answer")
        }
        return answer
    }
}
