import NIOCore

/// An OpenAI chat-completions request kept as the bytes the client sent, with what the gateway acts on
/// read out by one scan: the model, the stream flags, the message count and Chronicle's own members.
///
/// OpenAI-format upstreams get these bytes forwarded as they came, with only the model replaced and the
/// gateway's own members removed, so no request is decoded into types and encoded again on its way
/// through. Providers that translate the request ask for ``decoded()``.
public struct WireChatRequest: Sendable {
    /// The body as the client sent it.
    public let body: ByteBuffer
    /// The body's `model`, if it has one.
    public let model: String?
    /// Whether the client asked for a stream.
    public let isStreaming: Bool
    /// Whether the client asked for a usage chunk at the end of the stream (`stream_options.include_usage`).
    public let includeUsage: Bool
    public let messageCount: Int
    /// Some message has a `name` (providers that can't take names need the decoded request).
    let hasMessageNames: Bool
    /// The body has a top-level `system` (Chronicle's extension, moved into the messages for some providers).
    let hasSystem: Bool
    /// The top-level members, in order, as byte ranges of ``body``'s readable bytes.
    let members: [Member]

    struct Member: Sendable {
        enum Role: Sendable, Equatable {
            case model, streamOptions, gatewayOption, other
        }

        /// From the key's opening quote to the end of the value.
        var range: Range<Int>
        var valueRange: Range<Int>
        /// The key, without quotes (keys with escapes are not accepted by the scan).
        var keyRange: Range<Int>
        var role: Role
    }

    /// Scans `body`. Returns `nil` when the request is not one the scan can vouch for: malformed JSON, a
    /// member of an unexpected type, a duplicate or escaped key, unusual numbers. The caller then decodes
    /// it fully, which either accepts it or says exactly what is wrong.
    /// - Returns: the request and the options read from its Chronicle members.
    public static func scan(_ body: ByteBuffer) -> (request: WireChatRequest, options: RequestOptions)? {
        let scanned: Scanned? = body.withUnsafeReadableBytes { bytes in
            var scan = RequestScan(bytes: bytes)
            return try? scan.run()
        }
        guard let scanned else { return nil }
        var options = RequestOptions()
        if scanned.members.contains(where: { $0.role == .gatewayOption }) {
            // Only the gateway's members are decoded, from a small object holding just them.
            var optionBytes: [UInt8] = [UInt8(ascii: "{")]
            body.withUnsafeReadableBytes { bytes in
                for member in scanned.members where member.role == .gatewayOption {
                    if optionBytes.count > 1 { optionBytes.append(UInt8(ascii: ",")) }
                    optionBytes.append(contentsOf: bytes[member.range])
                }
            }
            optionBytes.append(UInt8(ascii: "}"))
            guard let decoded = try? JSONCoding.decode(RequestOptions.self, from: optionBytes) else { return nil }
            options = decoded
        }
        let request = WireChatRequest(
            body: body, model: scanned.model, isStreaming: scanned.isStreaming, includeUsage: scanned.includeUsage,
            messageCount: scanned.messageCount, hasMessageNames: scanned.hasMessageNames,
            hasSystem: scanned.hasSystem, members: scanned.members)
        return (request, options)
    }

    /// The request decoded into types, for providers that translate it. Chronicle's own members are left
    /// out, as the full decoder leaves them out.
    public func decoded() throws -> ChatRequest {
        var request = try JSONCoding.decode(ChatRequest.self, from: body.readableBytesView)
        for key in RequestOptions.bodyKeys { request.unknownFields.removeValue(forKey: key) }
        return request
    }

    /// The body for an OpenAI-format upstream: the client's bytes with `model` set to `model`, Chronicle's
    /// members and the `removing` members left out, and, when `requestStreamUsage` is set on a streamed
    /// request, `stream_options.include_usage` turned on.
    public func upstreamBody(model: String, requestStreamUsage: Bool = false, removing: Set<String> = []) -> ByteBuffer {
        let encodedModel = (try? JSONCoding.encodeBytes(model)) ?? Array("\"\"".utf8)
        let addsStreamUsage = requestStreamUsage && isStreaming && !includeUsage
        var output = ByteBuffer()
        output.reserveCapacity(body.readableBytes + encodedModel.count + 48)
        output.writeInteger(UInt8(ascii: "{"))
        var first = true
        func separate() {
            if first { first = false } else { output.writeInteger(UInt8(ascii: ",")) }
        }
        if !members.contains(where: { $0.role == .model }) {
            separate()
            output.writeString(#""model":"#)
            output.writeBytes(encodedModel)
        }
        var sawStreamOptions = false
        body.withUnsafeReadableBytes { bytes in
            for member in members {
                if member.role == .gatewayOption { continue }
                if !removing.isEmpty,
                   removing.contains(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[member.keyRange]), as: UTF8.self)) {
                    continue
                }
                separate()
                switch member.role {
                case .model:
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[member.range.lowerBound..<member.valueRange.lowerBound]))
                    output.writeBytes(encodedModel)
                case .streamOptions where addsStreamUsage:
                    sawStreamOptions = true
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[member.range.lowerBound..<member.valueRange.lowerBound]))
                    var value = (try? JSONCoding.decode(JSONValue.self, from: UnsafeRawBufferPointer(rebasing: bytes[member.valueRange])))?
                        .objectValue ?? [:]
                    value["include_usage"] = true
                    output.writeBytes((try? JSONCoding.encodeBytes(JSONValue.object(value))) ?? Array(#"{"include_usage":true}"#.utf8))
                default:
                    output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[member.range]))
                }
            }
        }
        if addsStreamUsage, !sawStreamOptions, !removing.contains("stream_options") {
            separate()
            output.writeString(#""stream_options":{"include_usage":true}"#)
        }
        output.writeInteger(UInt8(ascii: "}"))
        return output
    }

    /// Appends the bytes of ``recordedJSON`` to `output` without making a string of them: the crash journal
    /// copies them on the request path, where a UTF-8 check of a large prompt would cost time.
    public func appendRecordedBytes(to output: inout [UInt8]) {
        body.withUnsafeReadableBytes { bytes in
            guard members.contains(where: { $0.role == .gatewayOption }) else {
                output.append(contentsOf: bytes)
                return
            }
            output.append(UInt8(ascii: "{"))
            var first = true
            for member in members where member.role != .gatewayOption {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[member.range]))
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// The request as it is recorded: the client's bytes without Chronicle's own members.
    public var recordedJSON: String {
        guard members.contains(where: { $0.role == .gatewayOption }) else {
            return String(buffer: body)
        }
        var output = ByteBuffer()
        output.reserveCapacity(body.readableBytes)
        output.writeInteger(UInt8(ascii: "{"))
        body.withUnsafeReadableBytes { bytes in
            var first = true
            for member in members where member.role != .gatewayOption {
                if !first { output.writeInteger(UInt8(ascii: ",")) }
                first = false
                output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[member.range]))
            }
        }
        output.writeInteger(UInt8(ascii: "}"))
        return String(buffer: output)
    }
}

/// What one scan of a request body found.
private struct Scanned {
    var members: [WireChatRequest.Member] = []
    var model: String?
    var isStreaming = false
    var includeUsage = false
    var messageCount = 0
    var hasMessageNames = false
    var hasSystem = false
}

/// The scan itself: validates the whole body in one pass and checks that each member the gateway models
/// has the type the full decoder would accept. Anything it is not sure of stops it; the full decoder then
/// has the last word.
private struct RequestScan {
    typealias Malformed = JSONScanner.Malformed
    var scanner: JSONScanner

    init(bytes: UnsafeRawBufferPointer) {
        scanner = JSONScanner(bytes)
    }

    mutating func run() throws(Malformed) -> Scanned {
        scanner.skipWhitespace()
        var sawMessages = false
        var result = Scanned()
        // The modelled keys seen so far: a repeated one is left to the full decoder.
        var modelledKeys: [Range<Int>] = []
        _ = try scanner.object(depth: 0) { (scanner: inout JSONScanner, key) throws(Malformed) in
            guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
            let name = TopLevelKey(scanner, key)
            if name != .unknown {
                let bytes = scanner.bytes
                for earlier in modelledKeys where earlier.count == key.range.count
                    && bytes[earlier].elementsEqual(bytes[key.range]) {
                    throw Malformed(offset: key.range.lowerBound)
                }
                modelledKeys.append(key.range)
            }
            let kind = scanner.upcomingKind()
            var role = WireChatRequest.Member.Role.other
            let value: JSONScanner.Value
            switch name {
            case .model:
                role = .model
                value = try Self.scalar(&scanner, allowing: .string)
                if value.kind == .string { result.model = scanner.stringValue(value) }
            case .messages:
                sawMessages = true
                value = try Self.messages(&scanner, into: &result)
            case .system:
                value = try Self.scalar(&scanner, allowing: .string)
                result.hasSystem = value.kind == .string
            case .stream:
                value = try Self.scalar(&scanner, allowing: .bool)
                result.isStreaming = scanner.isTrue(value)
            case .streamOptions:
                role = .streamOptions
                if kind == .object {
                    value = try scanner.object(depth: 1) { (scanner: inout JSONScanner, key) throws(Malformed) in
                        let member = try scanner.value(depth: 2)
                        if scanner.stringEquals(key, "include_usage"), scanner.isTrue(member) { result.includeUsage = true }
                    }
                } else {
                    value = try scanner.value(depth: 1)
                }
            case .integer:
                value = try Self.scalar(&scanner, allowing: .number)
                if value.kind == .number, scanner.integerValue(value) == nil { throw Malformed(offset: value.range.lowerBound) }
            case .double:
                value = try Self.scalar(&scanner, allowing: .number)
                if value.kind == .number, !Self.isPlainNumber(scanner, value) { throw Malformed(offset: value.range.lowerBound) }
            case .bool:
                value = try Self.scalar(&scanner, allowing: .bool)
            case .string:
                value = try Self.scalar(&scanner, allowing: .string)
            case .stop:
                if kind == .array {
                    value = try Self.stringArray(&scanner)
                } else {
                    value = try Self.scalar(&scanner, allowing: .string)
                }
            case .tools:
                value = kind == .null ? try scanner.value(depth: 1) : try Self.tools(&scanner)
            case .any:
                value = try scanner.value(depth: 1)
            case .gatewayOption:
                role = .gatewayOption
                value = try scanner.value(depth: 1)
            case .unknown:
                value = try scanner.value(depth: 1)
            }
            result.members.append(WireChatRequest.Member(
                range: key.range.lowerBound..<value.range.upperBound, valueRange: value.range,
                keyRange: (key.range.lowerBound + 1)..<(key.range.upperBound - 1), role: role))
        }
        scanner.skipWhitespace()
        guard sawMessages, scanner.position == scanner.bytes.count else { throw Malformed(offset: scanner.position) }
        return result
    }

    /// A value that must be `kind` or `null`.
    static func scalar(_ scanner: inout JSONScanner, allowing kind: JSONScanner.Kind) throws(Malformed) -> JSONScanner.Value {
        let value = try scanner.value(depth: 1)
        guard value.kind == kind || value.kind == .null else { throw Malformed(offset: value.range.lowerBound) }
        return value
    }

    /// A number the full decoder reads as the same `Double`: no exponent, and not absurdly long.
    static func isPlainNumber(_ scanner: JSONScanner, _ value: JSONScanner.Value) -> Bool {
        guard value.range.count <= 24 else { return false }
        for index in value.range {
            let byte = scanner.bytes[index]
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { return false }
        }
        return true
    }

    static func stringArray(_ scanner: inout JSONScanner) throws(Malformed) -> JSONScanner.Value {
        try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
            let element = try scanner.value(depth: 2)
            guard element.kind == .string else { throw Malformed(offset: element.range.lowerBound) }
        }
    }

    /// `messages`: an array of message objects whose modelled members have the types the decoder expects.
    static func messages(_ scanner: inout JSONScanner, into result: inout Scanned) throws(Malformed) -> JSONScanner.Value {
        var count = 0
        var hasNames = false
        let value = try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
            count += 1
            _ = try scanner.object(depth: 2) { (scanner: inout JSONScanner, key) throws(Malformed) in
                guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
                let kind = scanner.upcomingKind()
                if scanner.stringEquals(key, "content") {
                    if kind == .array {
                        _ = try contentParts(&scanner)
                    } else {
                        _ = try scalar(&scanner, allowing: .string)
                    }
                } else if scanner.stringEquals(key, "name") {
                    hasNames = try scalar(&scanner, allowing: .string).kind == .string || hasNames
                } else if scanner.stringEquals(key, "role") || scanner.stringEquals(key, "tool_call_id")
                    || scanner.stringEquals(key, "reasoning_content") {
                    _ = try scalar(&scanner, allowing: .string)
                } else if scanner.stringEquals(key, "tool_calls") {
                    if kind == .null {
                        _ = try scanner.value(depth: 3)
                    } else {
                        _ = try toolCalls(&scanner)
                    }
                } else {
                    _ = try scanner.value(depth: 3)
                }
            }
        }
        result.messageCount = count
        result.hasMessageNames = hasNames
        return value
    }

    /// Content parts: objects with a string `type`.
    static func contentParts(_ scanner: inout JSONScanner) throws(Malformed) -> JSONScanner.Value {
        try scanner.array(depth: 3) { (scanner: inout JSONScanner, _) throws(Malformed) in
            var hasType = false
            _ = try scanner.object(depth: 4) { (scanner: inout JSONScanner, key) throws(Malformed) in
                let member = try scanner.value(depth: 5)
                if scanner.stringEquals(key, "type") {
                    guard member.kind == .string, !hasType else { throw Malformed(offset: member.range.lowerBound) }
                    hasType = true
                }
            }
            guard hasType else { throw Malformed(offset: scanner.position) }
        }
    }

    /// A message's tool calls: objects whose `index`, `id`, `type` and `function` have decodable types.
    static func toolCalls(_ scanner: inout JSONScanner) throws(Malformed) -> JSONScanner.Value {
        try scanner.array(depth: 3) { (scanner: inout JSONScanner, _) throws(Malformed) in
            _ = try scanner.object(depth: 4) { (scanner: inout JSONScanner, key) throws(Malformed) in
                if scanner.stringEquals(key, "index") {
                    let value = try scalar(&scanner, allowing: .number)
                    if value.kind == .number, scanner.integerValue(value) == nil { throw Malformed(offset: value.range.lowerBound) }
                } else if scanner.stringEquals(key, "id") || scanner.stringEquals(key, "type") {
                    _ = try scalar(&scanner, allowing: .string)
                } else if scanner.stringEquals(key, "function") {
                    let kind = scanner.upcomingKind()
                    guard kind == .object || kind == .null else { throw Malformed(offset: scanner.position) }
                    _ = try scanner.object(depth: 5) { (scanner: inout JSONScanner, key) throws(Malformed) in
                        if scanner.stringEquals(key, "name") {
                            _ = try scalar(&scanner, allowing: .string)
                        } else {
                            _ = try scanner.value(depth: 6)
                        }
                    }
                } else {
                    _ = try scanner.value(depth: 5)
                }
            }
        }
    }

    /// `tools`: objects with a `function` object that has a string `name`.
    static func tools(_ scanner: inout JSONScanner) throws(Malformed) -> JSONScanner.Value {
        try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
            var hasFunction = false
            _ = try scanner.object(depth: 2) { (scanner: inout JSONScanner, key) throws(Malformed) in
                if scanner.stringEquals(key, "type") {
                    _ = try scalar(&scanner, allowing: .string)
                } else if scanner.stringEquals(key, "function") {
                    guard scanner.upcomingKind() == .object, !hasFunction else { throw Malformed(offset: scanner.position) }
                    hasFunction = true
                    var hasName = false
                    _ = try scanner.object(depth: 3) { (scanner: inout JSONScanner, key) throws(Malformed) in
                        if scanner.stringEquals(key, "name") {
                            let name = try scanner.value(depth: 4)
                            guard name.kind == .string, !hasName else { throw Malformed(offset: name.range.lowerBound) }
                            hasName = true
                        } else if scanner.stringEquals(key, "description") {
                            _ = try scalar(&scanner, allowing: .string)
                        } else if scanner.stringEquals(key, "strict") {
                            _ = try scalar(&scanner, allowing: .bool)
                        } else {
                            _ = try scanner.value(depth: 4)
                        }
                    }
                    guard hasName else { throw Malformed(offset: scanner.position) }
                } else {
                    _ = try scanner.value(depth: 3)
                }
            }
            guard hasFunction else { throw Malformed(offset: scanner.position) }
        }
    }
}

/// The top-level members of a chat request, by the type the full decoder reads them as.
private enum TopLevelKey: Equatable {
    case model, messages, system, stream, streamOptions, stop, tools
    /// An `Int` or `Int64`.
    case integer
    /// A `Double`.
    case double
    case bool, string
    /// Carried as any JSON.
    case any
    /// One of Chronicle's own members, read as routing options.
    case gatewayOption
    case unknown

    init(_ scanner: JSONScanner, _ key: JSONScanner.Value) {
        switch key.range.count - 2 {
        case 0...1: self = scanner.stringEquals(key, "n") ? .integer : .unknown
        default:
            if scanner.stringEquals(key, "model") { self = .model }
            else if scanner.stringEquals(key, "messages") { self = .messages }
            else if scanner.stringEquals(key, "stream") { self = .stream }
            else if scanner.stringEquals(key, "max_tokens") || scanner.stringEquals(key, "max_completion_tokens")
                || scanner.stringEquals(key, "top_logprobs") || scanner.stringEquals(key, "seed") { self = .integer }
            else if scanner.stringEquals(key, "temperature") || scanner.stringEquals(key, "top_p")
                || scanner.stringEquals(key, "frequency_penalty") || scanner.stringEquals(key, "presence_penalty") { self = .double }
            else if scanner.stringEquals(key, "tools") { self = .tools }
            else if scanner.stringEquals(key, "stop") { self = .stop }
            else if scanner.stringEquals(key, "user") { self = .string }
            else if scanner.stringEquals(key, "system") { self = .system }
            else if scanner.stringEquals(key, "stream_options") { self = .streamOptions }
            else if scanner.stringEquals(key, "logprobs") { self = .bool }
            else if scanner.stringEquals(key, "tool_choice") || scanner.stringEquals(key, "response_format")
                || scanner.stringEquals(key, "logit_bias") { self = .any }
            // Chronicle's own members are whatever the options read from the body.
            else if RequestOptions.bodyKeys.contains(scanner.stringValue(key)) { self = .gatewayOption }
            else { self = .unknown }
        }
    }

}
