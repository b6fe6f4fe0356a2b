/// What the gateway reads from an OpenAI-format response or stream chunk that it relays as the upstream
/// sent it: its id, time, model, usage and whether it has choices. One scan, no decoding into types; the
/// choices are read later, off the request path, when the call is stored. Their contents are the
/// upstream's business: they reach the client as sent, and a choice that does not decode is left out of
/// the stored response.
struct WireChatSummary: Equatable {
    /// `nil` when the scan was asked not to read it (every chunk of a stream after the first has the same).
    var id: String?
    var created: Int64
    var model: String?
    var usage: Usage?
    var hasChoices: Bool

    /// Scans `bytes`. Returns `nil` when they are not an object the scan can vouch for, so that the caller
    /// decodes them in full as before: malformed JSON, a required member (`id`, `object`, `created`,
    /// `model`) missing or of the wrong type, `choices` not an array, or members the gateway must act on
    /// (`error`, an upstream's own `meta`, Groq's `x_groq` usage).
    /// - Parameter readsIdentity: whether to read `id` and `model` out (they are still checked).
    static func scan(_ bytes: [UInt8], readsIdentity: Bool = true) -> WireChatSummary? {
        bytes.withUnsafeBytes { raw in
            var scanner = JSONScanner(raw)
            var id: String?
            var created: Int64?
            var model: String?
            var hasID = false
            var hasModel = false
            var hasObject = false
            var usageRange: Range<Int>?
            var hasChoices = false
            scanner.skipWhitespace()
            do {
                _ = try scanner.object(depth: 0) { (scanner: inout JSONScanner, key) throws(JSONScanner.Malformed) in
                    guard !key.hasEscapes else { throw JSONScanner.Malformed(offset: key.range.lowerBound) }
                    if scanner.stringEquals(key, "choices") {
                        guard scanner.upcomingKind() == .array else { throw JSONScanner.Malformed(offset: scanner.position) }
                        _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(JSONScanner.Malformed) in
                            hasChoices = true
                            _ = try scanner.value(depth: 2)
                        }
                        return
                    }
                    let value = try scanner.value(depth: 1)
                    if scanner.stringEquals(key, "id") {
                        guard value.kind == .string, !hasID else { throw JSONScanner.Malformed(offset: value.range.lowerBound) }
                        hasID = true
                        if readsIdentity { id = scanner.stringValue(value) }
                    } else if scanner.stringEquals(key, "model") {
                        guard value.kind == .string, !hasModel else { throw JSONScanner.Malformed(offset: value.range.lowerBound) }
                        hasModel = true
                        if readsIdentity { model = scanner.stringValue(value) }
                    } else if scanner.stringEquals(key, "created") {
                        guard created == nil, let seconds = scanner.integerValue(value) else {
                            throw JSONScanner.Malformed(offset: value.range.lowerBound)
                        }
                        created = seconds
                    } else if scanner.stringEquals(key, "system_fingerprint") {
                        guard value.kind == .string || value.kind == .null else {
                            throw JSONScanner.Malformed(offset: value.range.lowerBound)
                        }
                    } else if scanner.stringEquals(key, "object") {
                        guard value.kind == .string, !hasObject else { throw JSONScanner.Malformed(offset: value.range.lowerBound) }
                        hasObject = true
                    } else if scanner.stringEquals(key, "usage") {
                        guard usageRange == nil, value.kind == .object || value.kind == .null else {
                            throw JSONScanner.Malformed(offset: value.range.lowerBound)
                        }
                        if value.kind == .object { usageRange = value.range }
                    } else if scanner.stringEquals(key, "error") || scanner.stringEquals(key, "meta")
                        || scanner.stringEquals(key, "x_groq") {
                        throw JSONScanner.Malformed(offset: key.range.lowerBound)
                    }
                }
                scanner.skipWhitespace()
                guard scanner.position == raw.count else { return nil }
            } catch {
                return nil
            }
            guard hasID, let created, hasModel, hasObject else { return nil }
            var usage: Usage?
            if let usageRange {
                guard case .object(var members)? = scanner.jsonValue(JSONScanner.Value(kind: .object, range: usageRange))
                else { return nil }
                // The counts the gateway reads must be integers (or null), as for the full decoder.
                func count(_ key: String) -> Int?? {
                    switch members.removeValue(forKey: key) {
                    case nil, .null?: return .some(nil)
                    case .integer(let value)?: return Int(exactly: value).map { .some($0) } ?? nil
                    default: return nil
                    }
                }
                guard let prompt = count("prompt_tokens"), let completion = count("completion_tokens"),
                      let total = count("total_tokens")
                else { return nil }
                usage = Usage(promptTokens: prompt, completionTokens: completion, totalTokens: total, unknownFields: members)
            }
            return WireChatSummary(id: id, created: created, model: model, usage: usage, hasChoices: hasChoices)
        }
    }
}

extension ChatChunk {
    /// A chunk relayed as the upstream sent it (`bytes`), with only what ``WireChatSummary`` reads filled
    /// in; `nil` when the bytes need the full decoder. Without `readsIdentity`, `id` and `model` are checked
    /// but left `nil`: a stream repeats them in every chunk, and only the first is read.
    public static func summary(of bytes: [UInt8], readsIdentity: Bool = true) -> ChatChunk? {
        guard let summary = WireChatSummary.scan(bytes, readsIdentity: readsIdentity) else { return nil }
        var chunk = ChatChunk(id: summary.id, created: summary.created, model: summary.model, usage: summary.usage)
        chunk.wireJSON = bytes
        chunk.summaryHasChoices = summary.hasChoices
        chunk.isSummary = true
        return chunk
    }

    /// Whether the chunk carries usage and no choices (the stream's usage chunk).
    public var isUsageOnly: Bool {
        usage != nil && (isSummary ? !summaryHasChoices : choices.isEmpty)
    }

    /// The whole chunk: itself, or, for a summary, decoded from its upstream bytes.
    public func decoded() throws -> ChatChunk {
        guard isSummary, let wireJSON else { return self }
        var chunk = try JSONCoding.decode(ChatChunk.self, from: wireJSON)
        chunk.wireJSON = wireJSON
        return chunk
    }
}

extension ChatResponse {
    /// A response relayed as the upstream sent it (`bytes`), with only what ``WireChatSummary`` reads
    /// filled in; `nil` when the bytes need the full decoder.
    public static func summary(of bytes: [UInt8]) -> ChatResponse? {
        guard let summary = WireChatSummary.scan(bytes), summary.hasChoices else { return nil }
        var response = ChatResponse(id: summary.id, created: summary.created, model: summary.model, usage: summary.usage)
        response.wireJSON = bytes
        response.isSummary = true
        return response
    }

    /// The whole response: itself, or, for a summary, decoded from its upstream bytes.
    public func decoded() throws -> ChatResponse {
        guard isSummary, let wireJSON else { return self }
        var response = try JSONCoding.decode(ChatResponse.self, from: wireJSON)
        response.wireJSON = wireJSON
        return response
    }
}
