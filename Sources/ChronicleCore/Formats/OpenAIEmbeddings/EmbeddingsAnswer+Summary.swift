import NIOCore

extension EmbeddingsAnswer {
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
