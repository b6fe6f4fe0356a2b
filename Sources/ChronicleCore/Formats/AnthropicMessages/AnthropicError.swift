/// The error types of the Anthropic Messages API, each with the HTTP status Anthropic sends it with.
public enum AnthropicErrorType: String, Sendable, Hashable, CaseIterable {
    case invalidRequest = "invalid_request_error"
    case authentication = "authentication_error"
    case billing = "billing_error"
    case permission = "permission_error"
    case notFound = "not_found_error"
    case requestTooLarge = "request_too_large"
    case rateLimit = "rate_limit_error"
    case api = "api_error"
    case timeout = "timeout_error"
    case overloaded = "overloaded_error"

    /// The HTTP status that goes with the type.
    public var status: Int {
        switch self {
        case .invalidRequest: return 400
        case .authentication: return 401
        case .billing: return 402
        case .permission: return 403
        case .notFound: return 404
        case .requestTooLarge: return 413
        case .rateLimit: return 429
        case .api: return 500
        case .timeout: return 504
        case .overloaded: return 529
        }
    }

    /// The type for an HTTP error status: other 4xx are invalid requests, other 5xx API errors.
    public init(status: Int) {
        switch status {
        case 401: self = .authentication
        case 402: self = .billing
        case 403: self = .permission
        case 404: self = .notFound
        case 413: self = .requestTooLarge
        case 429: self = .rateLimit
        case 504: self = .timeout
        case 503, 529: self = .overloaded
        case 400..<500: self = .invalidRequest
        default: self = .api
        }
    }
}

/// An error as the Anthropic Messages API reports it: the `error` member of
/// `{"type":"error","error":{"type":…,"message":…}}`, in a response body or an `error` stream event.
public struct AnthropicError: Error, Sendable, Hashable, Codable {
    /// An ``AnthropicErrorType`` raw value, or a type added later.
    public var type: String
    /// What went wrong, in words.
    public var message: String

    /// An error of any type, known or not.
    public init(type: String, message: String) {
        self.type = type
        self.message = message
    }

    /// An error of a known type.
    public init(_ type: AnthropicErrorType, message: String) {
        self.init(type: type.rawValue, message: message)
    }

    /// The HTTP status to answer with: the type's, or 500 for a type this version does not know.
    public var status: Int { AnthropicErrorType(rawValue: type)?.status ?? 500 }

    /// The whole error body, `{"type":"error","error":{…}}`.
    public func body() throws -> [UInt8] {
        try JSONCoding.encodeBytes(AnthropicErrorBody(error: self))
    }

    /// How a failed provider call looks to an Anthropic client. Errors the client can fix keep their
    /// meaning (an upstream's 404 or 413 stays one); failures of the gateway or the upstream become API
    /// errors, overloads and timeouts keep Anthropic's own types so that the SDKs retry them as they would
    /// Anthropic's.
    public init(_ error: ProviderError) {
        let status = error.httpStatus
        let type: AnthropicErrorType
        switch error.kind {
        case .badInput, .transformingRequest:
            type = [404, 413].contains(status) ? AnthropicErrorType(status: status) : .invalidRequest
        case .authRejected:
            type = status == 403 ? .permission : .authentication
        case .rateLimit: type = .rateLimit
        case .outOfCredits: type = .billing
        case .timeout: type = .timeout
        case .server: type = status == 529 || status == 503 ? .overloaded : .api
        case .permanent:
            type = (400..<500).contains(status) ? AnthropicErrorType(status: status) : .api
        case .generic, .connection, .parsingResponse, .transformingResponse, .connectionClosed, .authMissing, .cancelled:
            type = .api
        }
        self.init(type, message: error.message)
    }
}

extension AnthropicError {
    /// A failed provider call as the client's own call would have shown it: the upstream's Anthropic error
    /// type when its error body names one, and the upstream's own message (an OpenAI-format upstream's
    /// `error.message` too) rather than the gateway's wording; otherwise as ``init(_:)`` maps it.
    public init(relaying error: ProviderError) {
        self.init(error)
        if let type = error.body?["error"]?["type"]?.stringValue, AnthropicErrorType(rawValue: type) != nil {
            self.type = type
        }
        if let message = error.body?["error"]?["message"]?.stringValue { self.message = message }
    }
}

/// `{"type":"error","error":{"type":…,"message":…}}`.
public struct AnthropicErrorBody: Sendable, Hashable, Codable {
    /// Always `error`.
    public var type = "error"
    /// The error itself.
    public var error: AnthropicError

    /// The body for `error`.
    public init(error: AnthropicError) {
        self.error = error
    }
}
