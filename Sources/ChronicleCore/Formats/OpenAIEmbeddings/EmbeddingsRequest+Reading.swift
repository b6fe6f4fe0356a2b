/// The one-pass reader behind ``EmbeddingsRequest/decode(_:)``: validates the whole body as JSON and reads
/// each member the gateway acts on, refusing a wrong type, an empty input or a repeated member by name.
struct EmbeddingsRequestReader {
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
