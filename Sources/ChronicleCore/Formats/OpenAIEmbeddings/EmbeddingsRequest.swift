import NIOCore

/// What an embeddings request asks to embed: OpenAI's `input`, as a string, a list of strings, or tokens.
public enum EmbeddingsInput: Sendable, Hashable {
    /// One text.
    case text(String)
    /// Several texts, one vector each.
    case texts([String])
    /// One input given as token ids.
    case tokens([Int])
    /// Several inputs given as token ids.
    case tokenLists([[Int]])

    /// How many vectors the answer holds.
    public var count: Int {
        switch self {
        case .text, .tokens: return 1
        case .texts(let texts): return texts.count
        case .tokenLists(let lists): return lists.count
        }
    }

    /// The texts to embed, in order; `nil` when the input is token ids, which only OpenAI-format upstreams
    /// read.
    public var texts: [String]? {
        switch self {
        case .text(let text): return [text]
        case .texts(let texts): return texts
        case .tokens, .tokenLists: return nil
        }
    }
}

/// How the vectors of an answer are written: OpenAI's `encoding_format`.
public enum EmbeddingsEncodingFormat: String, Sendable, Hashable, Codable {
    /// JSON arrays of numbers.
    case float
    /// Each vector's little-endian float32 bytes, base64-encoded.
    case base64
}

/// A bad embeddings request: what is wrong, and the member at fault. Answered with a 400.
public struct EmbeddingsRequestError: Error, Sendable, Hashable {
    public var message: String
    /// The member at fault (`input`, `input[2]`, `dimensions`, …), when one is.
    public var param: String?
    /// Whether the body is not JSON at all, as opposed to JSON of the wrong shape.
    public var isMalformedJSON: Bool

    public init(_ message: String, param: String? = nil, isMalformedJSON: Bool = false) {
        self.message = message
        self.param = param
        self.isMalformedJSON = isMalformedJSON
    }
}

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

/// The one-pass reader behind ``EmbeddingsRequest/decode(_:)``: validates the whole body as JSON and reads
/// each member the gateway acts on, refusing a wrong type, an empty input or a repeated member by name.
private struct EmbeddingsRequestReader {
    typealias Malformed = JSONScanner.Malformed

    struct Fields {
        var model: String
        var modelRange: Range<Int>
        var input: EmbeddingsInput
        var dimensions: Int?
        var encodingFormat: EmbeddingsEncodingFormat
        var user: String?
        var inputType: String?
        var normalize: Bool?
    }

    var scanner: JSONScanner

    init(scanner: JSONScanner) {
        self.scanner = scanner
    }

    mutating func read() throws(EmbeddingsRequestError) -> Fields {
        var model: (String, Range<Int>)?
        var input: EmbeddingsInput?
        var dimensions: Int?
        var encodingFormat = EmbeddingsEncodingFormat.float
        var user: String?
        var inputType: String?
        var normalize: Bool?
        var seen = Set<String>()
        // The scanner's callbacks may throw only `Malformed`: a refusal is kept here and thrown after.
        var problem: EmbeddingsRequestError?
        scanner.skipWhitespace()
        guard scanner.upcomingKind() == .object else {
            // Tell malformed JSON from JSON of the wrong shape.
            if (try? scanner.document()) == nil {
                throw EmbeddingsRequestError("Request body is not valid JSON", isMalformedJSON: true)
            }
            throw EmbeddingsRequestError("The body must be a JSON object")
        }
        do {
            _ = try scanner.object(depth: 0) { (scanner: inout JSONScanner, key) throws(Malformed) in
                func refuse(_ message: String, _ param: String) throws(Malformed) -> Never {
                    problem = EmbeddingsRequestError(message, param: param)
                    throw Malformed(offset: 0)
                }
                let name = scanner.stringValue(key)
                guard seen.insert(name).inserted else { try refuse("`\(name)` appears more than once", name) }
                let value: JSONScanner.Value
                switch name {
                case "model":
                    value = try scanner.value(depth: 1)
                    guard value.kind == .string else { try refuse("`model` must be a string", "model") }
                    let text = scanner.stringValue(value)
                    guard !text.isEmpty else { try refuse("`model` must not be empty", "model") }
                    model = (text, value.range)
                case "input":
                    input = try Self.readInput(&scanner, refuse: refuse)
                case "dimensions":
                    value = try scanner.value(depth: 1)
                    guard value.kind == .number, value.isInteger, let number = scanner.integerValue(value),
                          number > 0, number <= Int64(Int32.max)
                    else { try refuse("`dimensions` must be a positive integer", "dimensions") }
                    dimensions = Int(number)
                case "encoding_format":
                    value = try scanner.value(depth: 1)
                    guard value.kind == .string,
                          let format = EmbeddingsEncodingFormat(rawValue: scanner.stringValue(value))
                    else { try refuse("`encoding_format` must be \"float\" or \"base64\"", "encoding_format") }
                    encodingFormat = format
                case "user":
                    value = try scanner.value(depth: 1)
                    guard value.kind == .string else { try refuse("`user` must be a string", "user") }
                    user = scanner.stringValue(value)
                case "input_type":
                    value = try scanner.value(depth: 1)
                    guard value.kind == .string else { try refuse("`input_type` must be a string", "input_type") }
                    inputType = scanner.stringValue(value)
                case "normalize":
                    value = try scanner.value(depth: 1)
                    guard value.kind == .bool else { try refuse("`normalize` must be true or false", "normalize") }
                    normalize = scanner.isTrue(value)
                default:
                    _ = try scanner.value(depth: 1)
                }
            }
            scanner.skipWhitespace()
            guard scanner.position == scanner.bytes.count else { throw Malformed(offset: scanner.position) }
        } catch {
            throw problem ?? EmbeddingsRequestError("Request body is not valid JSON", isMalformedJSON: true)
        }
        guard let model else { throw EmbeddingsRequestError("`model` is required", param: "model") }
        guard let input else { throw EmbeddingsRequestError("`input` is required", param: "input") }
        return Fields(model: model.0, modelRange: model.1, input: input, dimensions: dimensions,
                      encodingFormat: encodingFormat, user: user, inputType: inputType, normalize: normalize)
    }

    /// `input`: a non-empty string, or a non-empty list of non-empty strings, of token ids, or of non-empty
    /// lists of token ids.
    private static func readInput(
        _ scanner: inout JSONScanner, refuse: (String, String) throws(Malformed) -> Never
    ) throws(Malformed) -> EmbeddingsInput {
        let shape = "`input` must be a string, a list of strings, a list of token ids or a list of lists of token ids"
        switch scanner.upcomingKind() {
        case .string:
            let value = try scanner.value(depth: 1)
            let text = scanner.stringValue(value)
            guard !text.isEmpty else { try refuse("`input` must not be an empty string", "input") }
            return .text(text)
        case .array:
            var texts: [String] = []
            var tokens: [Int] = []
            var lists: [[Int]] = []
            var kind: JSONScanner.Kind?
            _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, index) throws(Malformed) in
                let element = scanner.upcomingKind()
                if kind == nil { kind = element }
                guard element == kind else {
                    try refuse("`input[\(index)]` is not of the same kind as `input[0]`: \(shape)", "input[\(index)]")
                }
                switch element {
                case .string:
                    let value = try scanner.value(depth: 2)
                    let text = scanner.stringValue(value)
                    guard !text.isEmpty else { try refuse("`input[\(index)]` must not be an empty string", "input[\(index)]") }
                    texts.append(text)
                case .number:
                    tokens.append(try readToken(&scanner, depth: 2, param: "input[\(index)]", refuse: refuse))
                case .array:
                    var list: [Int] = []
                    _ = try scanner.array(depth: 2) { (scanner: inout JSONScanner, inner) throws(Malformed) in
                        list.append(try readToken(&scanner, depth: 3, param: "input[\(index)][\(inner)]", refuse: refuse))
                    }
                    guard !list.isEmpty else { try refuse("`input[\(index)]` must not be an empty list", "input[\(index)]") }
                    lists.append(list)
                default:
                    try refuse(shape, "input[\(index)]")
                }
            }
            switch kind {
            case .string?: return .texts(texts)
            case .number?: return .tokens(tokens)
            case .array?: return .tokenLists(lists)
            default: try refuse("`input` must not be an empty list", "input")
            }
        default:
            _ = try scanner.value(depth: 1)
            try refuse(shape, "input")
        }
    }

    private static func readToken(
        _ scanner: inout JSONScanner, depth: Int, param: String, refuse: (String, String) throws(Malformed) -> Never
    ) throws(Malformed) -> Int {
        let value = try scanner.value(depth: depth)
        guard value.kind == .number, value.isInteger, let number = scanner.integerValue(value), number >= 0,
              number <= Int64(Int32.max)
        else { try refuse("`\(param)` must be a token id: a non-negative integer", param) }
        return Int(number)
    }
}
