/// Gemini's `embedContent` (one input) and `batchEmbedContents` (several), both ways.
extension EmbeddingsConversion {
    public enum Gemini {
        /// The method to call for `request`: `embedContent` for one input, `batchEmbedContents` for several.
        public static func method(for request: EmbeddingsRequest) -> String {
            request.input.count == 1 ? "embedContent" : "batchEmbedContents"
        }

        /// The request body for `model` (without `models/`): `{"model","content":{"parts":[{"text"}]},
        /// "outputDimensionality","taskType"}` for one input, `{"requests":[…]}` of those for several.
        public static func request(_ request: EmbeddingsRequest, model: String, provider: String)
            throws(ProviderError) -> JSONValue
        {
            let texts = try EmbeddingsConversion.texts(of: request, provider: provider)
            let items = texts.map { text -> JSONValue in
                var item: [String: JSONValue] = [
                    "model": .string("models/\(model)"),
                    "content": ["parts": [["text": .string(text)]]],
                ]
                if let dimensions = request.dimensions { item["outputDimensionality"] = .integer(Int64(dimensions)) }
                if let taskType = request.inputType.flatMap(taskType) { item["taskType"] = .string(taskType) }
                return .object(item)
            }
            if method(for: request) == "embedContent", let only = items.first { return only }
            return ["requests": .array(items)]
        }

        /// Gemini's `taskType` for Cohere's input types, which the gateway also accepts; a task type of
        /// Gemini's own is passed as given.
        static func taskType(_ inputType: String) -> String? {
            switch inputType {
            case "search_document": return "RETRIEVAL_DOCUMENT"
            case "search_query": return "RETRIEVAL_QUERY"
            case "classification": return "CLASSIFICATION"
            case "clustering": return "CLUSTERING"
            default: return inputType.uppercased() == inputType ? inputType : nil
            }
        }

        /// The vectors of an answer: `{"embedding":{"values":[…]}}` or `{"embeddings":[{"values":[…]}]}`,
        /// with `usageMetadata.promptTokenCount` when Gemini counts.
        public static func vectors(_ answer: JSONValue, provider: String) throws(ProviderError) -> EmbeddingVectors {
            var vectors: [[Float]] = []
            if let single = answer["embedding"] {
                vectors = [try EmbeddingsConversion.vector(single["values"], provider: provider)]
            } else if let many = answer["embeddings"]?.arrayValue {
                for item in many { vectors.append(try EmbeddingsConversion.vector(item["values"], provider: provider)) }
            } else {
                throw ProviderError(kind: .parsingResponse, body: answer,
                                    message: "Provider '\(provider)' answered without `embedding` or `embeddings`")
            }
            return EmbeddingVectors(vectors: vectors, promptTokens: answer["usageMetadata"]?["promptTokenCount"]?.intValue)
        }
    }
}
