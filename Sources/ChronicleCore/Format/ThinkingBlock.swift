/// One block of a model's reasoning as Anthropic and Bedrock return it: `{type: "thinking", thinking,
/// signature}` or `{type: "redacted_thinking", data}` (the `thinking_blocks` convention other gateways use).
///
/// The provider checks the signature when an assistant turn holding thinking and tool calls is sent back, so
/// a block is kept whole, every member included, and sent back exactly as it came.
public struct ThinkingBlock: Sendable, Hashable {
    /// Every member of the block, `type` included.
    public var fields: [String: JSONValue]

    public init(fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// `thinking`, `redacted_thinking`, or a type added later.
    public var type: String { fields["type"]?.stringValue ?? "" }
    /// The reasoning text of a `thinking` block.
    public var thinking: String? { fields["thinking"]?.stringValue }
    /// The provider's signature over a `thinking` block.
    public var signature: String? { fields["signature"]?.stringValue }
    /// The encrypted content of a `redacted_thinking` block.
    public var data: String? { fields["data"]?.stringValue }

    /// A `thinking` block; a streamed fragment has no signature until its last part.
    public static func thinking(_ text: String, signature: String? = nil) -> ThinkingBlock {
        var fields: [String: JSONValue] = ["type": "thinking", "thinking": .string(text)]
        if let signature { fields["signature"] = .string(signature) }
        return ThinkingBlock(fields: fields)
    }

    public static func redacted(_ data: String) -> ThinkingBlock {
        ThinkingBlock(fields: ["type": "redacted_thinking", "data": .string(data)])
    }

    /// Folds streamed fragments into whole blocks: a `thinking` fragment continues the last block while that
    /// block is a `thinking` block whose signature has not arrived yet (the signature is a block's last part);
    /// anything else starts a new block.
    static func append(_ fragments: [ThinkingBlock], to blocks: inout [ThinkingBlock]) {
        for fragment in fragments {
            guard fragment.type == "thinking", let last = blocks.last, last.type == "thinking", last.signature == nil
            else {
                blocks.append(fragment)
                continue
            }
            var merged = last
            merged.fields["thinking"] = .string((last.thinking ?? "") + (fragment.thinking ?? ""))
            for (key, value) in fragment.fields where key != "thinking" { merged.fields[key] = value }
            blocks[blocks.count - 1] = merged
        }
    }
}

extension ThinkingBlock: Codable {
    public init(from decoder: any Decoder) throws {
        let fields = try [String: JSONValue](from: decoder)
        guard fields["type"]?.stringValue != nil else {
            throw DecodingError.keyNotFound(
                AnyCodingKey("type"),
                .init(codingPath: decoder.codingPath, debugDescription: "a thinking block needs a string \"type\""))
        }
        self.fields = fields
    }

    public func encode(to encoder: any Encoder) throws {
        try fields.encode(to: encoder)
    }
}
