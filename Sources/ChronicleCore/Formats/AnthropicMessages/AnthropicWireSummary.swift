import NIOCore

/// What the gateway reads from an Anthropic Messages API answer it relays as the upstream sent it (a
/// passthrough call): the message id, the model, the usage, and an error the upstream reported. One scan
/// over the bytes with no decoding into types, so that relaying stays as cheap as the bytes are long; the
/// content is read later, off the request path, when the call is stored.
public struct AnthropicWireSummary: RelayedWireSummary {
    /// The message id (`msg_…`).
    public var id: String?
    /// The model the upstream says answered.
    public var model: String?
    /// The usage as far as it is known. A stream reports it twice: `message_start` holds the input and
    /// the first output count, `message_delta` the final output count (and sometimes the input again).
    public var usage: AnthropicUsage?
    /// An error the upstream reported: an error body, or an `error` event.
    public var error: AnthropicError?

    public init(id: String? = nil, model: String? = nil, usage: AnthropicUsage? = nil, error: AnthropicError? = nil) {
        self.id = id
        self.model = model
        self.usage = usage
        self.error = error
    }

    /// Merges a later reading into this one: later counts win where they are given.
    public mutating func merge(_ later: AnthropicWireSummary) {
        if id == nil { id = later.id }
        if model == nil { model = later.model }
        if let next = later.usage {
            var merged = usage ?? AnthropicUsage()
            if let value = next.inputTokens { merged.inputTokens = value }
            if let value = next.outputTokens { merged.outputTokens = value }
            if let value = next.cacheCreationInputTokens { merged.cacheCreationInputTokens = value }
            if let value = next.cacheReadInputTokens { merged.cacheReadInputTokens = value }
            usage = merged
        }
        if let error = later.error { self.error = error }
    }

    /// Whether an event of this `event:` name ends the answer.
    public static func endsAnswer(_ name: String?) -> Bool {
        name == "message_stop" || name == "error"
    }

    /// The summary of a whole (non-streamed) answer body: a message, or `{"type":"error",…}`. `nil` when
    /// the bytes are not a JSON object.
    public static func message(_ bytes: ByteBufferView) -> AnthropicWireSummary? {
        bytes.withContiguousStorageIfAvailable { raw in
            scanObject(UnsafeRawBufferPointer(raw))
        } ?? scanObject(Array(bytes))
    }

    /// The summary of one streamed event's `data`: `message_start` (id, model, usage), `message_delta`
    /// (usage) or `error`; other events carry nothing the record needs and are not read at all.
    /// - Parameter name: the SSE `event:` name, which Anthropic always sends and which spares scanning the
    ///   data of content deltas.
    public static func event(named name: String?, data: [UInt8]) -> AnthropicWireSummary? {
        switch name {
        case "message_start", "message_delta", "error", nil: return scanObject(data)
        default: return nil
        }
    }

    private static func scanObject(_ bytes: [UInt8]) -> AnthropicWireSummary? {
        bytes.withUnsafeBytes { scanObject($0) }
    }

    private static func scanObject(_ raw: UnsafeRawBufferPointer) -> AnthropicWireSummary? {
        var scanner = JSONScanner(raw)
        scanner.skipWhitespace()
        guard scanner.upcomingKind() == .object else { return nil }
        return try? read(&scanner, depth: 0)
    }

    /// Reads an object's members: `message` (in `message_start`) is read the same way, one level down.
    private static func read(_ scanner: inout JSONScanner, depth: Int) throws(JSONScanner.Malformed)
        -> AnthropicWireSummary
    {
        var summary = AnthropicWireSummary()
        var isError = false
        _ = try scanner.object(depth: depth) { (scanner: inout JSONScanner, key) throws(JSONScanner.Malformed) in
            if scanner.stringEquals(key, "message"), depth == 0, scanner.upcomingKind() == .object {
                summary.merge(try read(&scanner, depth: depth + 1))
                return
            }
            let value = try scanner.value(depth: depth + 1)
            if scanner.stringEquals(key, "id"), value.kind == .string {
                summary.id = scanner.stringValue(value)
            } else if scanner.stringEquals(key, "model"), value.kind == .string {
                summary.model = scanner.stringValue(value)
            } else if scanner.stringEquals(key, "type"), value.kind == .string {
                isError = scanner.stringEquals(value, "error")
            } else if scanner.stringEquals(key, "usage"), value.kind == .object,
                      case .object(let members)? = scanner.jsonValue(value) {
                summary.usage = AnthropicUsage(
                    inputTokens: members["input_tokens"]?.intValue, outputTokens: members["output_tokens"]?.intValue,
                    cacheCreationInputTokens: members["cache_creation_input_tokens"]?.intValue,
                    cacheReadInputTokens: members["cache_read_input_tokens"]?.intValue)
            } else if scanner.stringEquals(key, "error"), value.kind == .object,
                      case .object(let members)? = scanner.jsonValue(value) {
                summary.error = AnthropicError(type: members["type"]?.stringValue ?? AnthropicErrorType.api.rawValue,
                                               message: members["message"]?.stringValue ?? "The provider reported an error")
            }
        }
        if !isError { summary.error = nil }
        return summary
    }

    /// The usage in the gateway's terms.
    public var chatUsage: Usage? {
        guard let usage else { return nil }
        var converted = AnthropicConversion.usage(usage)
        converted.totalTokens = (converted.promptTokens ?? 0) + (converted.completionTokens ?? 0)
        return converted
    }

    /// The upstream's error as the gateway's.
    public var providerError: ProviderError? {
        error.map(AnthropicConversion.providerError)
    }
}
