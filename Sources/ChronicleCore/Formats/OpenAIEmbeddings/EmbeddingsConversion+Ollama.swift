/// Ollama's `/api/embed`, both ways.
extension EmbeddingsConversion {
    public enum Ollama {
        /// `{"model","input":"…"|["…"],"dimensions"}`.
        public static func request(_ request: EmbeddingsRequest, model: String, provider: String)
            throws(ProviderError) -> JSONValue
        {
            let texts = try EmbeddingsConversion.texts(of: request, provider: provider)
            var body: [String: JSONValue] = ["model": .string(model)]
            if case .text(let text) = request.input {
                body["input"] = .string(text)
            } else {
                body["input"] = .array(texts.map(JSONValue.string))
            }
            if let dimensions = request.dimensions { body["dimensions"] = .integer(Int64(dimensions)) }
            return .object(body)
        }

        /// The vectors of `{"model","embeddings":[[…]],"prompt_eval_count"}`.
        public static func vectors(_ answer: JSONValue, provider: String) throws(ProviderError) -> EmbeddingVectors {
            if let error = answer["error"] {
                throw ProviderError(kind: .generic, body: ["error": error], message: error.stringValue)
            }
            guard let items = answer["embeddings"]?.arrayValue else {
                throw ProviderError(kind: .parsingResponse, body: answer,
                                    message: "Provider '\(provider)' answered without `embeddings`")
            }
            var vectors: [[Float]] = []
            for item in items { vectors.append(try EmbeddingsConversion.vector(item, provider: provider)) }
            return EmbeddingVectors(vectors: vectors, promptTokens: answer["prompt_eval_count"]?.intValue)
        }

        /// The embed endpoint beside a chat endpoint: `…/api/chat` becomes `…/api/embed`.
        public static func url(forChatURL chat: String) -> String {
            var base = chat
            while base.hasSuffix("/") { base.removeLast() }
            if base.hasSuffix("/api/chat") { return String(base.dropLast("/api/chat".count)) + "/api/embed" }
            if base.hasSuffix("/api/embed") { return base }
            return base + "/api/embed"
        }
    }
}
