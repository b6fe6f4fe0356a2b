import NIOCore

/// An OpenAI `POST /v1/embeddings` request as the client sent it: its bytes, forwarded to OpenAI-format
/// upstreams with only `model` replaced, and the members the gateway reads to translate it for the others.
///
/// ```swift
/// let request = try EmbeddingsRequest.decode(ByteBuffer(string: #"{"model":"text-embedding-3-small","input":"hi"}"#))
/// request.input        // .text("hi")
/// ```
public struct EmbeddingsRequest: Sendable {
    /// The client's body, as received.
    public let body: ByteBuffer
    /// The model string, as the client sent it.
    public let model: String
    /// Where the `model` value (quotes included) lies in ``body``.
    let modelRange: Range<Int>
    public let input: EmbeddingsInput
    /// The number of dimensions asked for, when the client asked.
    public let dimensions: Int?
    /// The encoding asked for; `float` when the client did not say.
    public let encodingFormat: EmbeddingsEncodingFormat
    /// OpenAI's end-user id.
    public let user: String?
    /// What the texts are for (`search_document`, `search_query`, `classification`, `clustering`): Cohere's
    /// `input_type`, also mapped to Gemini's `taskType`. Not an OpenAI member; OpenAI-format upstreams get
    /// it as sent.
    public let inputType: String?
    /// Whether Titan Text Embeddings v2 normalizes its vectors (Bedrock's `normalize`; on by default there).
    public let normalize: Bool?

    /// The body for an OpenAI-format upstream: the client's bytes with the `model` value replaced, every
    /// other byte as it came.
    public func upstreamBody(model: String) -> ByteBuffer {
        let encodedModel = (try? JSONCoding.encodeBytes(model)) ?? Array("\"\"".utf8)
        var output = ByteBuffer()
        output.reserveCapacity(body.readableBytes - modelRange.count + encodedModel.count)
        body.withUnsafeReadableBytes { bytes in
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<modelRange.lowerBound]))
            output.writeBytes(encodedModel)
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[modelRange.upperBound...]))
        }
        return output
    }

    /// Reads a request body in one pass, checking every member the gateway acts on.
    /// - Throws: ``EmbeddingsRequestError`` naming what is wrong.
    public static func decode(_ body: ByteBuffer) throws(EmbeddingsRequestError) -> EmbeddingsRequest {
        let result: Result<EmbeddingsRequest, EmbeddingsRequestError> = body.withUnsafeReadableBytes { bytes in
            var reader = EmbeddingsRequestReader(scanner: JSONScanner(bytes))
            do throws(EmbeddingsRequestError) {
                let fields = try reader.read()
                return .success(EmbeddingsRequest(
                    body: body, model: fields.model, modelRange: fields.modelRange, input: fields.input,
                    dimensions: fields.dimensions, encodingFormat: fields.encodingFormat, user: fields.user,
                    inputType: fields.inputType, normalize: fields.normalize))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
