/// What an embeddings request asks to embed: OpenAI's `input`, as a string, a list of strings, or tokens.
public enum EmbeddingsInput: Sendable, Hashable {
    /// One text.
    case text(String)
    /// Several texts, one vector each.
    case texts([String])
    /// One input given as token ids.
    case tokens([Int])
    /// Several inputs given as token ids.
    case tokenLists([[Int]])

    /// How many vectors the answer holds.
    public var count: Int {
        switch self {
        case .text, .tokens: return 1
        case .texts(let texts): return texts.count
        case .tokenLists(let lists): return lists.count
        }
    }

    /// The texts to embed, in order; `nil` when the input is token ids, which only OpenAI-format upstreams
    /// read.
    public var texts: [String]? {
        switch self {
        case .text(let text): return [text]
        case .texts(let texts): return texts
        case .tokens, .tokenLists: return nil
        }
    }
}

/// How the vectors of an answer are written: OpenAI's `encoding_format`.
public enum EmbeddingsEncodingFormat: String, Sendable, Hashable, Codable {
    /// JSON arrays of numbers.
    case float
    /// Each vector's little-endian float32 bytes, base64-encoded.
    case base64
}
