/// The turns of a native (non-OpenAI) conversation. Consecutive messages of one role are merged into one
/// turn, since Anthropic, Gemini and Bedrock expect the roles to alternate.
struct ConversationTurns {
    private(set) var turns: [(role: String, blocks: [JSONValue])] = []

    mutating func append(_ role: String, _ blocks: [JSONValue]) {
        guard !blocks.isEmpty else { return }
        if let last = turns.last, last.role == role {
            turns[turns.count - 1].blocks += blocks
        } else {
            turns.append((role, blocks))
        }
    }

    /// `[{"role": …, <contentKey>: [...]}, …]`.
    func json(contentKey: String) -> JSONValue {
        .array(turns.map { ["role": .string($0.role), contentKey: .array($0.blocks)] })
    }
}

/// One piece of a message's content, in a form every converter maps to its own blocks.
enum ContentPiece {
    /// Non-empty text, with the speaker's name folded in (`"name: text"`) for APIs without `name`.
    case text(String)
    case imageURL(String)
    /// Any other part type, for APIs that take it natively.
    case other(ContentPart)
}

extension ChatMessage {
    /// The content as pieces, in order; empty texts are left out.
    var contentPieces: [ContentPiece] {
        let prefix = name.map { "\($0): " } ?? ""
        switch content {
        case .text(let text)?:
            return text.isEmpty ? [] : [.text(prefix + text)]
        case .parts(let parts)?:
            return parts.compactMap { part in
                if let text = part.text { return text.isEmpty ? nil : .text(prefix + text) }
                if let url = part.imageURL { return .imageURL(url) }
                return part.type == "text" ? nil : .other(part)
            }
        case nil:
            return []
        }
    }
}
