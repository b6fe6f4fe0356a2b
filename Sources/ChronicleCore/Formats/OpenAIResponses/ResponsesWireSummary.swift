import NIOCore

/// What the gateway reads from a Responses API answer it relays as the upstream sent it (a passthrough
/// call): the response id, the model, the usage, and an error the upstream reported. One scan over the
/// bytes with no decoding into types, so that relaying stays as cheap as the bytes are long; the output is
/// read later, off the request path, when the call is stored.
public struct ResponsesWireSummary: RelayedWireSummary {
    /// The response id (`resp_…`).
    public var id: String?
    /// The model the upstream says answered.
    public var model: String?
    /// The usage in the gateway's terms, once the response reports it.
    public var usage: Usage?
    /// An error the upstream reported: an error body, an `error` event, or a failed response.
    public var error: ResponsesError?

    public init(id: String? = nil, model: String? = nil, usage: Usage? = nil, error: ResponsesError? = nil) {
        self.id = id
        self.model = model
        self.usage = usage
        self.error = error
    }

    /// Merges a later reading into this one: a later usage or error wins.
    public mutating func merge(_ later: ResponsesWireSummary) {
        if id == nil { id = later.id }
        if model == nil { model = later.model }
        if let usage = later.usage { self.usage = usage }
        if let error = later.error { self.error = error }
    }

    /// The usage in the gateway's terms (already read as such).
    public var chatUsage: Usage? { usage }

    /// The upstream's error as the gateway's.
    public var providerError: ProviderError? {
        guard let error else { return nil }
        return ProviderError(kind: error.status < 500 ? .badInput : .generic, status: error.status, body: error.body,
                             message: error.message)
    }

    /// The summary of a whole (non-streamed) answer body: a response, or `{"error": …}`. `nil` when the
    /// bytes are not a JSON object.
    public static func response(_ bytes: ByteBufferView) -> ResponsesWireSummary? {
        bytes.withContiguousStorageIfAvailable { raw in
            scanObject(UnsafeRawBufferPointer(raw))
        } ?? Array(bytes).withUnsafeBytes { scanObject($0) }
    }

    /// Whether an event of this `event:` name ends the answer.
    public static func endsAnswer(_ name: String?) -> Bool {
        switch name {
        case "response.completed", "response.incomplete", "response.failed", "error": return true
        default: return false
        }
    }

    /// The summary of one streamed event's `data`: `response.created` (id, model), the final
    /// `response.completed` / `response.incomplete` / `response.failed` (usage, error) or `error`; other
    /// events carry nothing the record needs and are not read at all.
    /// - Parameter name: the SSE `event:` name, which OpenAI sends with every event and which spares
    ///   scanning the data of deltas.
    public static func event(named name: String?, data: [UInt8]) -> ResponsesWireSummary? {
        switch name {
        case "response.created", "response.completed", "response.incomplete", "response.failed", "error", nil:
            return data.withUnsafeBytes { scanObject($0) }
        default:
            return nil
        }
    }

    private static func scanObject(_ raw: UnsafeRawBufferPointer) -> ResponsesWireSummary? {
        var scanner = JSONScanner(raw)
        scanner.skipWhitespace()
        guard scanner.upcomingKind() == .object else { return nil }
        return try? read(&scanner, depth: 0)
    }

    /// Reads an object's members: `response` (in an event) is read the same way, one level down. An
    /// `error` event holds its message at the top.
    private static func read(_ scanner: inout JSONScanner, depth: Int) throws(JSONScanner.Malformed)
        -> ResponsesWireSummary
    {
        var summary = ResponsesWireSummary()
        var isErrorEvent = false
        var message: String?
        var code: String?
        _ = try scanner.object(depth: depth) { (scanner: inout JSONScanner, key) throws(JSONScanner.Malformed) in
            if scanner.stringEquals(key, "response"), depth == 0, scanner.upcomingKind() == .object {
                summary.merge(try read(&scanner, depth: depth + 1))
                return
            }
            let value = try scanner.value(depth: depth + 1)
            if scanner.stringEquals(key, "id"), value.kind == .string {
                summary.id = scanner.stringValue(value)
            } else if scanner.stringEquals(key, "model"), value.kind == .string {
                summary.model = scanner.stringValue(value)
            } else if scanner.stringEquals(key, "type"), value.kind == .string, depth == 0 {
                isErrorEvent = scanner.stringEquals(value, "error")
            } else if scanner.stringEquals(key, "message"), value.kind == .string {
                message = scanner.stringValue(value)
            } else if scanner.stringEquals(key, "code"), value.kind == .string {
                code = scanner.stringValue(value)
            } else if scanner.stringEquals(key, "usage"), value.kind == .object, let usage = scanner.jsonValue(value) {
                summary.usage = ResponsesEgress.usage(usage)
            } else if scanner.stringEquals(key, "error"), value.kind == .object, let error = scanner.jsonValue(value) {
                summary.error = ResponsesError(
                    status: 500, type: error["type"]?.stringValue ?? "server_error",
                    message: error["message"]?.stringValue ?? "The provider reported an error",
                    param: error["param"]?.stringValue, code: error["code"]?.stringValue)
            }
        }
        if isErrorEvent, summary.error == nil {
            summary.error = ResponsesError(status: 500, type: "server_error",
                                           message: message ?? "The provider reported an error", code: code)
        }
        return summary
    }
}
