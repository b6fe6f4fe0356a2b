import NIOCore

/// An Anthropic Messages API request kept as the bytes the client sent, with what the gateway acts on read
/// out by one scan: the model, whether it streams, `metadata.user_id` and the message count.
///
/// Anthropic-format upstreams get these bytes with only `model` replaced, so every member the gateway does
/// not model (`cache_control`, `thinking`, documents, citations, server tools, members added later) reaches
/// them exactly as the client wrote it. Providers that translate the request ask for ``decoded()``.
public struct WireMessagesRequest: Sendable {
    /// The body as the client sent it.
    public let body: ByteBuffer
    /// The body's `model`, escapes resolved.
    public let model: String
    /// Whether the client asked for a stream.
    public let isStreaming: Bool
    /// `metadata.user_id`, the end user the client names.
    public let userID: String?
    /// How many messages the body has.
    public let messageCount: Int
    /// Where the `model` value lies in ``body``'s readable bytes.
    let modelRange: Range<Int>

    /// Scans `body`. Returns `nil` when the scan cannot vouch that the full decoder (``decoded()``) accepts
    /// the request and reads it the same way: malformed JSON, a member of the wrong type, a missing
    /// required member, a duplicate or escaped key, unusual numbers. The caller then decodes it fully,
    /// which either accepts it or says exactly what is wrong.
    /// - Parameter requiringMaxTokens: false for a `count_tokens` body, which has no `max_tokens`.
    public static func scan(_ body: ByteBuffer, requiringMaxTokens: Bool = true) -> WireMessagesRequest? {
        let scanned: MessagesScan.Result? = body.withUnsafeReadableBytes { bytes in
            var scan = MessagesScan(bytes: bytes)
            scan.requiresMaxTokens = requiringMaxTokens
            return try? scan.run()
        }
        guard let scanned, let model = scanned.model, let modelRange = scanned.modelRange else { return nil }
        return WireMessagesRequest(body: body, model: model, isStreaming: scanned.isStreaming, userID: scanned.userID,
                                   messageCount: scanned.messageCount, modelRange: modelRange)
    }

    /// The request decoded into types, for providers that translate it.
    /// - Throws: an `invalid_request_error` ``AnthropicError`` naming what is wrong.
    public func decoded() throws(AnthropicError) -> AnthropicMessagesRequest {
        try AnthropicIngress.decode(body.readableBytesView)
    }

    /// The body for an Anthropic-format upstream: the client's bytes with the `model` value replaced by
    /// `model`, every other byte as it came.
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

/// The scan itself: validates the whole body in one pass and checks every member the full decoder reads
/// for the type it reads it as, and the rules it checks after decoding (a non-empty model, `max_tokens` of
/// at least 1, `user` or `assistant` roles, a valid `tool_choice`). Whatever it is not sure of stops it.
private struct MessagesScan {
    typealias Malformed = JSONScanner.Malformed

    struct Result {
        var model: String?
        var modelRange: Range<Int>?
        var isStreaming = false
        var userID: String?
        var messageCount = 0
    }

    var scanner: JSONScanner
    var requiresMaxTokens = true

    init(bytes: UnsafeRawBufferPointer) {
        scanner = JSONScanner(bytes)
    }

    mutating func run() throws(Malformed) -> Result {
        scanner.skipWhitespace()
        var result = Result()
        var seen = Set<String>()
        var hasMaxTokens = false
        var hasMessages = false
        _ = try scanner.object(depth: 0) { (scanner: inout JSONScanner, key) throws(Malformed) in
            // An escaped key could spell a modelled one; a repeated modelled key could be read either way.
            guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
            let name = scanner.stringValue(key)
            let modelled = AnthropicMessagesRequest.knownKeys.contains(name)
            if modelled {
                guard seen.insert(name).inserted else { throw Malformed(offset: key.range.lowerBound) }
            }
            let kind = scanner.upcomingKind()
            switch name {
            case "model":
                let value = try Self.required(&scanner, .string)
                let model = scanner.stringValue(value)
                guard !model.isEmpty else { throw Malformed(offset: value.range.lowerBound) }
                result.model = model
                result.modelRange = value.range
            case "max_tokens":
                let value = try Self.required(&scanner, .number)
                guard let tokens = scanner.integerValue(value), tokens >= 1, tokens <= Int64(Int.max) else {
                    throw Malformed(offset: value.range.lowerBound)
                }
                hasMaxTokens = true
            case "messages":
                hasMessages = true
                result.messageCount = try Self.messages(&scanner)
            case "system":
                if kind == .array {
                    guard try Self.blocks(&scanner, depth: 1) else { throw Malformed(offset: scanner.position) }
                } else {
                    _ = try Self.optional(&scanner, .string, depth: 1)
                }
            case "stream":
                let value = try Self.optional(&scanner, .bool, depth: 1)
                result.isStreaming = scanner.isTrue(value)
            case "temperature", "top_p":
                let value = try Self.optional(&scanner, .number, depth: 1)
                if value.kind == .number, !Self.isPlainNumber(scanner, value) { throw Malformed(offset: value.range.lowerBound) }
            case "stop_sequences":
                if kind == .null {
                    _ = try Self.any(&scanner, depth: 1)
                } else {
                    _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
                        _ = try Self.required(&scanner, .string, depth: 2)
                    }
                }
            case "tools":
                if kind == .null {
                    _ = try Self.any(&scanner, depth: 1)
                } else {
                    _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
                        try Self.tool(&scanner)
                    }
                }
            case "tool_choice":
                if kind == .null { _ = try Self.any(&scanner, depth: 1) } else { try Self.toolChoice(&scanner) }
            case "metadata":
                if kind == .null { _ = try Self.any(&scanner, depth: 1) } else { result.userID = try Self.metadata(&scanner) }
            default:
                // `thinking` is carried as any JSON, like every member the decoder does not model.
                _ = try Self.any(&scanner, depth: 1)
            }
        }
        scanner.skipWhitespace()
        guard hasMaxTokens || !requiresMaxTokens, hasMessages, result.model != nil, scanner.position == scanner.bytes.count else {
            throw Malformed(offset: scanner.position)
        }
        return result
    }

    /// A value that must be of `kind`.
    static func required(_ scanner: inout JSONScanner, _ kind: JSONScanner.Kind, depth: Int = 1)
        throws(Malformed) -> JSONScanner.Value
    {
        let value = try Self.any(&scanner, depth: depth)
        guard value.kind == kind else { throw Malformed(offset: value.range.lowerBound) }
        return value
    }

    /// A value that must be of `kind` or `null`.
    static func optional(_ scanner: inout JSONScanner, _ kind: JSONScanner.Kind, depth: Int) throws(Malformed)
        -> JSONScanner.Value
    {
        let value = try Self.any(&scanner, depth: depth)
        guard value.kind == kind || value.kind == .null else { throw Malformed(offset: value.range.lowerBound) }
        return value
    }

    /// Any value, every number in it one the full decoder can read: a 64-bit integer or a finite double
    /// (members the decoder does not model are still decoded, as JSON values).
    static func any(_ scanner: inout JSONScanner, depth: Int) throws(Malformed) -> JSONScanner.Value {
        switch scanner.upcomingKind() {
        case .object?:
            return try scanner.object(depth: depth) { (scanner: inout JSONScanner, _) throws(Malformed) in
                _ = try any(&scanner, depth: depth + 1)
            }
        case .array?:
            return try scanner.array(depth: depth) { (scanner: inout JSONScanner, _) throws(Malformed) in
                _ = try any(&scanner, depth: depth + 1)
            }
        default:
            let value = try scanner.value(depth: depth)
            if value.kind == .number, scanner.integerValue(value) == nil {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: scanner.bytes[value.range]), as: UTF8.self)
                guard let double = Double(text), double.isFinite else { throw Malformed(offset: value.range.lowerBound) }
            }
            return value
        }
    }

    /// A number the full decoder reads as the same `Double`: no exponent, and not absurdly long.
    static func isPlainNumber(_ scanner: JSONScanner, _ value: JSONScanner.Value) -> Bool {
        guard value.range.count <= 24 else { return false }
        return !value.range.contains { scanner.bytes[$0] == UInt8(ascii: "e") || scanner.bytes[$0] == UInt8(ascii: "E") }
    }

    /// `messages`: objects with a `user` or `assistant` role and string or block content. Returns the count.
    static func messages(_ scanner: inout JSONScanner) throws(Malformed) -> Int {
        var count = 0
        _ = try scanner.array(depth: 1) { (scanner: inout JSONScanner, _) throws(Malformed) in
            count += 1
            var hasRole = false
            var hasContent = false
            _ = try scanner.object(depth: 2) { (scanner: inout JSONScanner, key) throws(Malformed) in
                guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
                if scanner.stringEquals(key, "role") {
                    let role = try required(&scanner, .string, depth: 3)
                    guard !hasRole, scanner.stringEquals(role, "user") || scanner.stringEquals(role, "assistant") else {
                        throw Malformed(offset: role.range.lowerBound)
                    }
                    hasRole = true
                } else if scanner.stringEquals(key, "content") {
                    guard !hasContent else { throw Malformed(offset: key.range.lowerBound) }
                    hasContent = true
                    if scanner.upcomingKind() == .array {
                        guard try blocks(&scanner, depth: 3) else { throw Malformed(offset: scanner.position) }
                    } else {
                        _ = try required(&scanner, .string, depth: 3)
                    }
                } else {
                    _ = try Self.any(&scanner, depth: 3)
                }
            }
            guard hasRole, hasContent else { throw Malformed(offset: scanner.position) }
        }
        return count
    }

    /// An array of content blocks. Returns whether every block is one the decoder accepts; throws only when
    /// the JSON itself is malformed, so that a caller that cannot yet tell whether it needs blocks here can
    /// go on scanning.
    static func blocks(_ scanner: inout JSONScanner, depth: Int) throws(Malformed) -> Bool {
        var valid = true
        _ = try scanner.array(depth: depth) { (scanner: inout JSONScanner, _) throws(Malformed) in
            if scanner.upcomingKind() == .object {
                valid = try block(&scanner, depth: depth + 1) && valid
            } else {
                _ = try Self.any(&scanner, depth: depth + 1)
                valid = false
            }
        }
        return valid
    }

    /// The kinds of a block's members that the decoder reads, whatever their order.
    struct BlockMembers {
        var type: JSONScanner.Value?
        var kinds: [String: JSONScanner.Kind] = [:]
        var source: SourceMembers?
        var contentIsBlocks: Bool?
        var repeated = false
        var escaped = false
    }

    struct SourceMembers {
        var type: JSONScanner.Value?
        var kinds: [String: JSONScanner.Kind] = [:]
        var repeated = false
    }

    /// One content block: whether the decoder accepts it, by its type's required members.
    static func block(_ scanner: inout JSONScanner, depth: Int) throws(Malformed) -> Bool {
        var members = BlockMembers()
        _ = try scanner.object(depth: depth) { (scanner: inout JSONScanner, key) throws(Malformed) in
            if key.hasEscapes { members.escaped = true }
            let name = scanner.stringValue(key)
            if members.kinds[name] != nil { members.repeated = true }
            let kind = scanner.upcomingKind()
            if name == "source", kind == .object {
                members.source = try source(&scanner, depth: depth + 1)
                members.kinds[name] = .object
            } else if name == "content", kind == .array {
                members.contentIsBlocks = try blocks(&scanner, depth: depth + 1)
                members.kinds[name] = .array
            } else {
                let value = try Self.any(&scanner, depth: depth + 1)
                if name == "type" { members.type = value }
                members.kinds[name] = value.kind
            }
        }
        guard !members.escaped, !members.repeated, let type = members.type, type.kind == .string else { return false }
        func has(_ name: String, _ kind: JSONScanner.Kind) -> Bool { members.kinds[name] == kind }
        func optional(_ name: String, _ kind: JSONScanner.Kind) -> Bool {
            members.kinds[name] == nil || members.kinds[name] == kind || members.kinds[name] == .null
        }
        if scanner.stringEquals(type, "text") { return has("text", .string) }
        if scanner.stringEquals(type, "tool_use") { return has("id", .string) && has("name", .string) }
        if scanner.stringEquals(type, "tool_result") {
            guard has("tool_use_id", .string), optional("is_error", .bool) else { return false }
            switch members.kinds["content"] {
            case nil, .null?, .string?: return true
            case .array?: return members.contentIsBlocks == true
            default: return false
            }
        }
        if scanner.stringEquals(type, "image") {
            guard let source = members.source, !source.repeated, let sourceType = source.type, sourceType.kind == .string
            else { return false }
            if scanner.stringEquals(sourceType, "base64") {
                return source.kinds["media_type"] == .string && source.kinds["data"] == .string
            }
            if scanner.stringEquals(sourceType, "url") { return source.kinds["url"] == .string }
            // Other source types are kept whole; a type spelled with escapes could be either of the above.
            return !sourceType.hasEscapes
        }
        // Thinking, documents and other types are kept whole; a type spelled with escapes could be one of
        // the types above.
        return !type.hasEscapes
    }

    /// An image's `source` object.
    static func source(_ scanner: inout JSONScanner, depth: Int) throws(Malformed) -> SourceMembers {
        var members = SourceMembers()
        _ = try scanner.object(depth: depth) { (scanner: inout JSONScanner, key) throws(Malformed) in
            let name = scanner.stringValue(key)
            if members.kinds[name] != nil || key.hasEscapes { members.repeated = true }
            let value = try Self.any(&scanner, depth: depth + 1)
            if name == "type" { members.type = value }
            members.kinds[name] = value.kind
        }
        return members
    }

    /// A tool: a string `name`; `type` and `description` strings when present.
    static func tool(_ scanner: inout JSONScanner) throws(Malformed) {
        var hasName = false
        _ = try scanner.object(depth: 2) { (scanner: inout JSONScanner, key) throws(Malformed) in
            guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
            if scanner.stringEquals(key, "name") {
                guard !hasName else { throw Malformed(offset: key.range.lowerBound) }
                _ = try required(&scanner, .string, depth: 3)
                hasName = true
            } else if scanner.stringEquals(key, "type") || scanner.stringEquals(key, "description") {
                _ = try optional(&scanner, .string, depth: 3)
            } else {
                _ = try Self.any(&scanner, depth: 3)
            }
        }
        guard hasName else { throw Malformed(offset: scanner.position) }
    }

    /// `tool_choice`: `auto`, `any`, `none`, or `tool` with a non-empty `name`.
    static func toolChoice(_ scanner: inout JSONScanner) throws(Malformed) {
        var type: JSONScanner.Value?
        var hasName = false
        _ = try scanner.object(depth: 1) { (scanner: inout JSONScanner, key) throws(Malformed) in
            guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
            if scanner.stringEquals(key, "type") {
                guard type == nil else { throw Malformed(offset: key.range.lowerBound) }
                type = try required(&scanner, .string, depth: 2)
            } else if scanner.stringEquals(key, "name") {
                guard !hasName else { throw Malformed(offset: key.range.lowerBound) }
                let name = try optional(&scanner, .string, depth: 2)
                hasName = name.kind == .string && name.range.count > 2
            } else if scanner.stringEquals(key, "disable_parallel_tool_use") {
                _ = try optional(&scanner, .bool, depth: 2)
            } else {
                _ = try Self.any(&scanner, depth: 2)
            }
        }
        guard let type else { throw Malformed(offset: scanner.position) }
        if scanner.stringEquals(type, "tool") {
            guard hasName else { throw Malformed(offset: type.range.lowerBound) }
        } else if !(scanner.stringEquals(type, "auto") || scanner.stringEquals(type, "any")
            || scanner.stringEquals(type, "none")) {
            throw Malformed(offset: type.range.lowerBound)
        }
    }

    /// `metadata`: an object whose `user_id`, when present, is a string or null. Returns the user id.
    static func metadata(_ scanner: inout JSONScanner) throws(Malformed) -> String? {
        var userID: String?
        var seen = false
        _ = try scanner.object(depth: 1) { (scanner: inout JSONScanner, key) throws(Malformed) in
            guard !key.hasEscapes else { throw Malformed(offset: key.range.lowerBound) }
            if scanner.stringEquals(key, "user_id") {
                guard !seen else { throw Malformed(offset: key.range.lowerBound) }
                seen = true
                let value = try optional(&scanner, .string, depth: 2)
                if value.kind == .string { userID = scanner.stringValue(value) }
            } else {
                _ = try Self.any(&scanner, depth: 2)
            }
        }
        return userID
    }
}
