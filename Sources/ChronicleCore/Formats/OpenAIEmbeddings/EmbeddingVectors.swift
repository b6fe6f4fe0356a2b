/// What a translating provider answered: one vector per input, in input order, and the tokens it counted.
public struct EmbeddingVectors: Sendable, Hashable {
    public var vectors: [[Float]]
    /// The input's tokens, when the provider counts them.
    public var promptTokens: Int?

    public init(vectors: [[Float]], promptTokens: Int? = nil) {
        self.vectors = vectors
        self.promptTokens = promptTokens
    }
}
