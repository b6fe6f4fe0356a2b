/// An error as an OpenAI Responses API client gets it: `{"error": {"message", "type", "param", "code"}}`,
/// whose `param` names the member that is wrong, so that a refused request says what to change.
public struct ResponsesError: Error, Sendable, Hashable {
    /// The HTTP status.
    public var status: Int
    /// OpenAI's error type: `invalid_request_error` for a request the gateway refuses.
    public var type: String
    public var message: String
    /// The request member at fault (`previous_response_id`, `tools[0].type`, `input[2].content[0]`, …).
    public var param: String?
    /// OpenAI's error code, when there is one.
    public var code: String?

    public init(status: Int = 400, type: String = "invalid_request_error", message: String, param: String? = nil,
                code: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
        self.code = code
    }

    /// A request the gateway refuses: `param` is the member at fault.
    public static func invalid(_ param: String?, _ message: String) -> ResponsesError {
        ResponsesError(message: message, param: param)
    }

    /// The error object, as OpenAI nests it under `error` in a body and in a `response.failed` event.
    public var object: JSONValue {
        ["message": .string(message), "type": .string(type), "param": param.map(JSONValue.string) ?? .null,
         "code": code.map(JSONValue.string) ?? .null]
    }

    /// The error body: `{"error": {...}}`.
    public var body: JSONValue { ["error": object] }

    /// The gateway's provider error for a request refused before it went upstream: a client error, which is
    /// not retried, carrying this error as its body.
    public var providerError: ProviderError {
        ProviderError(kind: .badInput, status: status, body: body, message: message)
    }

    /// The error a Responses client gets for a provider's failure: the upstream's own OpenAI-shaped error
    /// when it sent one, else the gateway's account of it.
    public init(relaying error: ProviderError) {
        let upstream = error.body?["error"]
        let status = error.httpStatus
        self.init(
            status: status,
            type: upstream?["type"]?.stringValue ?? (status < 500 ? "invalid_request_error" : "server_error"),
            message: upstream?["message"]?.stringValue ?? error.message,
            param: upstream?["param"]?.stringValue, code: upstream?["code"]?.stringValue ?? error.kind.rawValue)
    }
}
