/// What is recorded of an embeddings answer instead of its vectors, which would be megabytes of floats:
/// how many there are and how long each is, with the model and usage.
public struct EmbeddingsSummary: Sendable, Hashable, Codable {
    /// The model the answer names.
    public var model: String?
    /// How many vectors the answer holds.
    public var count: Int
    /// The length of each vector (of the first, should they differ); 0 when there is none.
    public var dimensions: Int
    public var encodingFormat: EmbeddingsEncodingFormat
    public var promptTokens: Int?
    public var totalTokens: Int?

    public init(model: String?, count: Int, dimensions: Int, encodingFormat: EmbeddingsEncodingFormat,
                promptTokens: Int? = nil, totalTokens: Int? = nil) {
        self.model = model
        self.count = count
        self.dimensions = dimensions
        self.encodingFormat = encodingFormat
        self.promptTokens = promptTokens
        self.totalTokens = totalTokens
    }

    enum CodingKeys: String, CodingKey {
        case model, count, dimensions
        case encodingFormat = "encoding_format"
        case promptTokens = "prompt_tokens"
        case totalTokens = "total_tokens"
    }

    /// The usage as the gateway records and charges it.
    public var usage: Usage? {
        guard promptTokens != nil || totalTokens != nil else { return nil }
        return Usage(promptTokens: promptTokens, totalTokens: totalTokens ?? promptTokens)
    }

    /// The object stored as a call's response when vectors are not kept: OpenAI's envelope with the
    /// vectors replaced by their count and dimension,
    /// `{"object":"list","model":…,"data":{"count":…,"dimensions":…,"encoding_format":…},"usage":{…}}`.
    public var recordedJSON: JSONValue {
        var data: [String: JSONValue] = [
            "count": .integer(Int64(count)), "dimensions": .integer(Int64(dimensions)),
            "encoding_format": .string(encodingFormat.rawValue),
        ]
        data["vectors"] = "not stored"
        var usage: [String: JSONValue] = [:]
        if let promptTokens { usage["prompt_tokens"] = .integer(Int64(promptTokens)) }
        if let totalTokens { usage["total_tokens"] = .integer(Int64(totalTokens)) }
        return [
            "object": "list", "model": model.map(JSONValue.string) ?? .null, "data": .object(data),
            "usage": usage.isEmpty ? .null : .object(usage),
        ]
    }
}
