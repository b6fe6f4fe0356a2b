/// A bad embeddings request: what is wrong, and the member at fault. Answered with a 400.
public struct EmbeddingsRequestError: Error, Sendable, Hashable {
    public var message: String
    /// The member at fault (`input`, `input[2]`, `dimensions`, …), when one is.
    public var param: String?
    /// Whether the body is not JSON at all, as opposed to JSON of the wrong shape.
    public var isMalformedJSON: Bool

    public init(_ message: String, param: String? = nil, isMalformedJSON: Bool = false) {
        self.message = message
        self.param = param
        self.isMalformedJSON = isMalformedJSON
    }
}
