import Foundation
import NIOCore

/// What a translating provider answered: one vector per input, in input order, and the tokens it counted.
public struct EmbeddingVectors: Sendable, Hashable {
    public var vectors: [[Float]]
    /// The input's tokens, when the provider counts them.
    public var promptTokens: Int?

    public init(vectors: [[Float]], promptTokens: Int? = nil) {
        self.vectors = vectors
        self.promptTokens = promptTokens
    }
}

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

/// An embeddings answer as the client gets it: OpenAI's body (the upstream's own from an OpenAI-format
/// provider, written by the gateway for the others) and what is recorded of it.
public struct EmbeddingsAnswer: Sendable, Hashable {
    public var body: ByteBuffer
    public var summary: EmbeddingsSummary

    public init(body: ByteBuffer, summary: EmbeddingsSummary) {
        self.body = body
        self.summary = summary
    }

    /// OpenAI's answer for vectors a translating provider returned, as `format` asks: numbers, or each
    /// vector's little-endian float32 bytes in base64, as OpenAI writes them.
    /// `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[…]}],"model":…,"usage":{…}}`.
    public init(_ vectors: EmbeddingVectors, model: String, format: EmbeddingsEncodingFormat) {
        var text = #"{"object":"list","data":["#
        text.reserveCapacity(64 + vectors.vectors.reduce(0) { $0 + $1.count * 12 })
        for (index, vector) in vectors.vectors.enumerated() {
            if index > 0 { text += "," }
            text += #"{"object":"embedding","index":\#(index),"embedding":"#
            switch format {
            case .float:
                text += "["
                for (position, value) in vector.enumerated() {
                    if position > 0 { text += "," }
                    // Shortest form that reads back as the same float32, as OpenAI writes them; a value
                    // JSON cannot hold (never sent by a provider) is written as 0.
                    text += value.isFinite ? value.description : "0"
                }
                text += "]"
            case .base64:
                text += "\"" + Self.base64(vector) + "\""
            }
            text += "}"
        }
        let encodedModel = (try? JSONCoding.encodeToString(model)) ?? "\"\""
        let tokens = vectors.promptTokens ?? 0
        text += #"],"model":\#(encodedModel),"usage":{"prompt_tokens":\#(tokens),"total_tokens":\#(tokens)}}"#
        self.body = ByteBuffer(string: text)
        self.summary = EmbeddingsSummary(
            model: model, count: vectors.vectors.count, dimensions: vectors.vectors.first?.count ?? 0,
            encodingFormat: format, promptTokens: vectors.promptTokens, totalTokens: vectors.promptTokens)
    }

    /// A vector's little-endian float32 bytes, base64-encoded.
    public static func base64(_ vector: [Float]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes).base64EncodedString()
    }

    /// The vectors of a base64 `embedding`, or `nil` when it is not base64 of whole float32 values.
    public static func floats(base64 text: String) -> [Float]? {
        guard let data = Data(base64Encoded: text), data.count % 4 == 0 else { return nil }
        return stride(from: 0, to: data.count, by: 4).map { offset in
            var bits: UInt32 = 0
            for shift in 0..<4 { bits |= UInt32(data[data.startIndex + offset + shift]) << (8 * shift) }
            return Float(bitPattern: bits)
        }
    }

    /// The summary of an OpenAI-format answer read from its bytes in one pass, without building its
    /// vectors: `model`, `usage`, how many `data` items there are and the length of the first embedding (a
    /// base64 one's decoded length in float32 values). `nil` when the bytes are not such an answer.
    public static func summary(ofOpenAIAnswer bytes: ByteBuffer, format: EmbeddingsEncodingFormat)
        -> EmbeddingsSummary?
    {
        bytes.withUnsafeReadableBytes { raw -> EmbeddingsSummary? in
            var scanner = JSONScanner(raw)
            typealias Malformed = JSONScanner.Malformed
            var summary = EmbeddingsSummary(model: nil, count: 0, dimensions: 0, encodingFormat: format)
            var sawData = false
            do {
                scanner.skipWhitespace()
                guard scanner.upcomingKind() == .object else { return nil }
                _ = try scanner.object(depth: 0) { (scanner: inout JSONScanner, key) throws(Malformed) in
                    switch scanner.stringValue(key) {
                    case "model":
                        let value = try scanner.value(depth: 1)
                        if value.kind == .string { summary.model = scanner.stringValue(value) }
                    case "usage" where scanner.upcomingKind() == .object:
                        _ = try scanner.object(depth: 1) { (scanner: inout JSONScanner, key) throws(Malformed) in
                            let name = scanner.stringValue(key)
                            let value = try scanner.value(depth: 2)
                            guard value.kind == .number, let number = scanner.integerValue(value) else { return }
                            if name == "prompt_tokens" { summary.promptTokens = Int(exactly: number) }
                            if name == "total_tokens" { summary.totalTokens = Int(exactly: number) }
                        }
                    case "data" where scanner.upcomingKind() == .array:
                        sawData = true
                        _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, index) throws(Malformed) in
                            summary.count += 1
                            guard index == 0, scanner.upcomingKind() == .object else {
                                _ = try scanner.value(depth: 2)
                                return
                            }
                            _ = try scanner.object(depth: 2) { (scanner: inout JSONScanner, key) throws(Malformed) in
                                guard scanner.stringValue(key) == "embedding" else {
                                    _ = try scanner.value(depth: 3)
                                    return
                                }
                                switch scanner.upcomingKind() {
                                case .array:
                                    var length = 0
                                    _ = try scanner.array(depth: 3) { (scanner: inout JSONScanner, _) throws(Malformed) in
                                        length += 1
                                        _ = try scanner.value(depth: 4)
                                    }
                                    summary.dimensions = length
                                case .string:
                                    let value = try scanner.value(depth: 3)
                                    summary.encodingFormat = .base64
                                    summary.dimensions = Self.base64FloatCount(scanner.stringValue(value))
                                default:
                                    _ = try scanner.value(depth: 3)
                                }
                            }
                        }
                    default:
                        _ = try scanner.value(depth: 1)
                    }
                }
                scanner.skipWhitespace()
                guard scanner.position == scanner.bytes.count else { return nil }
            } catch {
                return nil
            }
            return sawData ? summary : nil
        }
    }

    /// How many float32 values a base64 text holds, from its length alone.
    static func base64FloatCount(_ text: String) -> Int {
        var length = text.utf8.count
        var padding = 0
        for byte in text.utf8.reversed() {
            guard byte == UInt8(ascii: "="), padding < 2 else { break }
            padding += 1
        }
        length -= padding
        return (length * 3 / 4) / 4
    }
}
