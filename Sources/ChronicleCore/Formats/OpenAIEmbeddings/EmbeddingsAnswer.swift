import Foundation
import NIOCore

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
}
