/// Bedrock's `InvokeModel` bodies for its embedding models, both ways: Amazon Titan Text Embeddings (one
/// text per call; v2 takes `dimensions` and `normalize`) and Cohere Embed (`texts` with `input_type`).
extension EmbeddingsConversion {
    public enum Bedrock {
        /// The embedding model families Bedrock serves that the gateway translates to.
        public enum Family: Sendable, Hashable {
            case titanV1
            case titanV2
            case cohere
            /// Cohere Embed v4, which takes `output_dimension`.
            case cohereV4
        }

        /// The family of a Bedrock model id (inference-profile prefixes such as `us.` allowed).
        /// - Throws: a 400 naming the model when it is not one of them.
        public static func family(of model: String) throws(ProviderError) -> Family {
            if model.contains("titan-embed-text-v2") { return .titanV2 }
            if model.contains("titan-embed-text-v1") || model.contains("titan-embed-g1-text") { return .titanV1 }
            if model.contains("cohere.embed-v4") { return .cohereV4 }
            if model.contains("cohere.embed-") { return .cohere }
            throw EmbeddingsConversion.refusal(
                "Bedrock model '\(model)' is not an embedding model the gateway can call: use amazon.titan-embed-text-v1, amazon.titan-embed-text-v2:0 or a cohere.embed-* model")
        }

        /// The `InvokeModel` bodies for `request`, one per call: one per text for Titan, one for all texts
        /// for Cohere.
        public static func requests(_ request: EmbeddingsRequest, model: String, provider: String)
            throws(ProviderError) -> [JSONValue]
        {
            let texts = try EmbeddingsConversion.texts(of: request, provider: provider)
            let modelFamily = try family(of: model)
            switch modelFamily {
            case .titanV1:
                if request.dimensions != nil {
                    throw EmbeddingsConversion.refusal("Bedrock model '\(model)' has a fixed size: `dimensions` is accepted by amazon.titan-embed-text-v2:0 (256, 512 or 1024)")
                }
                return texts.map { ["inputText": .string($0)] }
            case .titanV2:
                return texts.map { text in
                    var body: [String: JSONValue] = ["inputText": .string(text)]
                    if let dimensions = request.dimensions { body["dimensions"] = .integer(Int64(dimensions)) }
                    if let normalize = request.normalize { body["normalize"] = .bool(normalize) }
                    return .object(body)
                }
            case .cohere, .cohereV4:
                let isV4 = modelFamily == .cohereV4
                if request.dimensions != nil, !isV4 {
                    throw EmbeddingsConversion.refusal("Bedrock model '\(model)' has a fixed size: `dimensions` is accepted by cohere.embed-v4 and amazon.titan-embed-text-v2:0")
                }
                var body: [String: JSONValue] = [
                    "texts": .array(texts.map(JSONValue.string)),
                    "input_type": .string(request.inputType ?? "search_document"),
                ]
                if let dimensions = request.dimensions { body["output_dimension"] = .integer(Int64(dimensions)) }
                if isV4 { body["embedding_types"] = ["float"] }
                return [.object(body)]
            }
        }

        /// The vectors of one `InvokeModel` answer: Titan's `{"embedding":[…],"inputTextTokenCount"}`, or
        /// Cohere's `{"embeddings":[[…]]}` (or `{"embeddings":{"float":[[…]]}}` when types were asked for).
        public static func vectors(_ answer: JSONValue, provider: String) throws(ProviderError) -> EmbeddingVectors {
            if let single = answer["embedding"] {
                return EmbeddingVectors(vectors: [try EmbeddingsConversion.vector(single, provider: provider)],
                                        promptTokens: answer["inputTextTokenCount"]?.intValue)
            }
            let items = answer["embeddings"]?.arrayValue ?? answer["embeddings"]?["float"]?.arrayValue
            guard let items else {
                throw ProviderError(kind: .parsingResponse, body: answer,
                                    message: "Provider '\(provider)' answered without `embedding` or `embeddings`")
            }
            var vectors: [[Float]] = []
            for item in items { vectors.append(try EmbeddingsConversion.vector(item, provider: provider)) }
            return EmbeddingVectors(vectors: vectors)
        }
    }
}
