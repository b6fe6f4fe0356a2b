import Foundation

/// A failed call: the gateway's error (its HTTP status, `kind` and message), or a transport failure.
public struct ChronicleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status the gateway answered with; `nil` when no answer came (connection failed) or the
    /// stream failed after it started.
    public var status: Int?
    /// The gateway's error kind (`provider_error`, `invalid_request`, …), or `transport` / `invalid_response`.
    public var kind: String
    public var message: String
    /// The failed call's id, when the gateway recorded it.
    public var callID: UUID?
    /// The error body as the gateway sent it.
    public var body: JSONValue?

    public init(status: Int?, kind: String, message: String, callID: UUID? = nil, body: JSONValue? = nil) {
        self.status = status
        self.kind = kind
        self.message = message
        self.callID = callID
        self.body = body
    }

    public var description: String {
        "Chronicle error \(status.map(String.init) ?? "-") \(kind): \(message)"
    }

    /// Reads Chronicle's error JSON (`{"error":{"kind","message"}}`), Rust Chronicle's, or an OpenAI-style
    /// error, falling back to the raw text.
    static func fromBody(status: Int?, body: [UInt8], callID: UUID?) -> ChronicleError {
        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(body)) else {
            return ChronicleError(status: status, kind: "http_\(status ?? 0)",
                                  message: String(decoding: body.prefix(2000), as: UTF8.self), callID: callID)
        }
        let error = json["error"]
        let kind = error?["kind"]?.stringValue ?? error?["type"]?.stringValue ?? "http_\(status ?? 0)"
        let message = error?["message"]?.stringValue ?? json["message"]?.stringValue ?? error?.stringValue
            ?? String(decoding: body.prefix(2000), as: UTF8.self)
        return ChronicleError(status: status, kind: kind, message: message, callID: callID, body: json)
    }
}
