import NIOCore

/// An OpenAI Responses API request kept as the bytes the client sent, with what the gateway acts on read
/// out by one scan: the model, whether it streams, and how many input items it holds.
///
/// Providers that serve the Responses API get these bytes with only `model` replaced, so every member the
/// gateway does not model (`store`, `previous_response_id`, built-in tools, `include`, members added later)
/// reaches them exactly as the client wrote it. Providers that translate the request ask for
/// ``decoded()``, which reads the body fully and refuses what cannot be translated.
public struct WireResponsesRequest: Sendable {
    /// The body as the client sent it.
    public let body: ByteBuffer
    /// The body's `model`, escapes resolved.
    public let model: String
    /// Whether the client asked for a stream.
    public let isStreaming: Bool
    /// How many input items the body has: 1 for a string `input`.
    public let inputCount: Int
    /// The body's `user` (or `safety_identifier`), the end user the client names.
    public let userID: String?
    /// Where the `model` value lies in ``body``'s readable bytes.
    let modelRange: Range<Int>

    /// Scans `body`. Returns `nil` when the scan cannot vouch for the request: malformed JSON, a member the
    /// gateway reads of the wrong type, a missing or empty `model`, a repeated or escaped key. The caller
    /// then decodes it fully (``ResponsesIngress/decode(_:)``), which names what is wrong.
    public static func scan(_ body: ByteBuffer) -> WireResponsesRequest? {
        let scanned: ResponsesScan.Result? = body.withUnsafeReadableBytes { bytes in
            var scan = ResponsesScan(scanner: JSONScanner(bytes))
            return try? scan.run()
        }
        guard let scanned, let model = scanned.model, let modelRange = scanned.modelRange else { return nil }
        return WireResponsesRequest(body: body, model: model, isStreaming: scanned.isStreaming,
                                    inputCount: scanned.inputCount, userID: scanned.userID, modelRange: modelRange)
    }

    /// The request decoded into types, for providers that translate it.
    /// - Throws: a ``ResponsesError`` naming the member that is wrong.
    public func decoded() throws(ResponsesError) -> ResponsesRequest {
        try ResponsesIngress.decode(body.readableBytesView)
    }

    /// The body for a provider that serves the Responses API: the client's bytes with the `model` value
    /// replaced by `model`, every other byte as it came.
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
}

/// The scan itself: validates the whole body in one pass and reads the members the route acts on. What it
/// is not sure of (an escaped or repeated key, a member of the wrong type) stops it.
private struct ResponsesScan {
    typealias Malformed = JSONScanner.Malformed

    struct Result {
        var model: String?
        var modelRange: Range<Int>?
        var isStreaming = false
        var inputCount = 0
        var userID: String?
    }

    var scanner: JSONScanner

    mutating func run() throws(Malformed) -> Result {
        var result = Result()
        var seen: Set<String> = []
        scanner.skipWhitespace()
        guard scanner.upcomingKind() == .object else { throw Malformed(offset: scanner.position) }
        _ = try scanner.object(depth: 0) { (scanner: inout JSONScanner, key) throws(Malformed) in
            guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
            let name = scanner.stringValue(key)
            guard seen.insert(name).inserted else { throw Malformed(offset: key.range.lowerBound) }
            if name == "input", scanner.upcomingKind() == .array {
                var count = 0
                _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
                    count += 1
                    _ = try scanner.value(depth: 2)
                }
                result.inputCount = count
                return
            }
            let value = try scanner.value(depth: 1)
            switch name {
            case "model":
                guard value.kind == .string, value.range.count > 2 else { throw Malformed(offset: value.range.lowerBound) }
                result.model = scanner.stringValue(value)
                result.modelRange = value.range
            case "stream":
                guard value.kind == .bool || value.kind == .null else { throw Malformed(offset: value.range.lowerBound) }
                result.isStreaming = scanner.isTrue(value)
            case "input":
                guard value.kind == .string else { throw Malformed(offset: value.range.lowerBound) }
                result.inputCount = 1
            case "user", "safety_identifier":
                guard value.kind == .string || value.kind == .null else { throw Malformed(offset: value.range.lowerBound) }
                if value.kind == .string, name == "user" || result.userID == nil { result.userID = scanner.stringValue(value) }
            case "store", "background", "parallel_tool_calls":
                guard value.kind == .bool || value.kind == .null else { throw Malformed(offset: value.range.lowerBound) }
            case "tools":
                guard value.kind == .array || value.kind == .null else { throw Malformed(offset: value.range.lowerBound) }
            default:
                break
            }
        }
        scanner.skipWhitespace()
        guard result.model != nil, scanner.position == scanner.bytes.count else { throw Malformed(offset: scanner.position) }
        return result
    }
}
