/// What went wrong with a provider call; decides retrying and the HTTP status the client sees.
public enum ProviderErrorKind: String, Sendable, Hashable, Codable, CaseIterable {
    case generic = "generic"
    case server = "provider_server_error"
    case connection = "provider_connection_error"
    case parsingResponse = "parsing_provider_response"
    case transformingResponse = "transforming_response"
    case rateLimit = "rate_limit"
    case connectionClosed = "provider_connection_closed"
    case timeout = "timeout"
    case permanent = "unrecoverable_server_error"
    case badInput = "provider_rejected_input"
    case authRejected = "provider_rejected_token"
    case authMissing = "auth_missing"
    case outOfCredits = "out_of_credits"
    case transformingRequest = "transforming_request"
    /// The caller went away before the response finished.
    case cancelled = "cancelled"

    /// Whether another attempt at the same choice may succeed.
    ///
    /// Timeouts and dropped connections are retryable here (Rust Chronicle made them final): retries only
    /// happen before any of the response reached the client, so trying again is always safe, and the
    /// per-attempt timeout keeps the total bounded.
    public var isRetryable: Bool {
        switch self {
        case .generic, .server, .connection, .parsingResponse, .transformingResponse, .rateLimit, .timeout,
            .connectionClosed:
            return true
        case .permanent, .badInput, .authRejected, .authMissing, .outOfCredits, .transformingRequest, .cancelled:
            return false
        }
    }

    /// The status the gateway answers with when the provider gave no error status of its own.
    public var httpStatus: Int {
        switch self {
        case .generic: return 500
        case .server: return 503
        case .connection, .parsingResponse, .connectionClosed: return 502
        case .transformingResponse: return 502
        case .rateLimit: return 429
        case .timeout: return 504
        case .permanent: return 500
        case .badInput: return 422
        case .authRejected: return 401
        case .authMissing: return 500
        case .outOfCredits: return 402
        case .transformingRequest: return 400
        case .cancelled: return 499
        }
    }

    /// A human-readable summary used when the provider gave no message.
    public var summary: String {
        switch self {
        case .generic: return "Model provider returned an error"
        case .server: return "Model provider encountered a server error"
        case .connection: return "Could not connect to the model provider"
        case .parsingResponse: return "Could not parse the model provider's response"
        case .transformingResponse: return "Could not convert the model provider's response"
        case .rateLimit: return "Model provider rate limited the request"
        case .connectionClosed: return "Model provider closed the connection"
        case .timeout: return "Model provider did not respond in time"
        case .permanent: return "Model provider rejected the request"
        case .badInput: return "Model provider rejected the request input"
        case .authRejected: return "Model provider rejected the API key"
        case .authMissing: return "No API key is available for the model provider"
        case .outOfCredits: return "Model provider account is out of credits"
        case .transformingRequest: return "Could not convert the request for the model provider"
        case .cancelled: return "The request was cancelled by the client"
        }
    }

    /// The kind for a non-2xx upstream status.
    public init(status: Int) {
        switch status {
        case 429: self = .rateLimit
        case 402: self = .outOfCredits
        case 401, 403: self = .authRejected
        case 400, 404, 405, 406, 413, 415, 422, 431: self = .badInput
        case 500...599: self = .server
        case 400...499: self = .permanent
        default: self = .generic
        }
    }
}

/// An error from one provider attempt.
public struct ProviderError: Error, Sendable, Hashable {
    public var kind: ProviderErrorKind
    /// The upstream's HTTP status, when it answered with one.
    public var status: Int?
    /// The upstream's error body: parsed JSON, or a JSON string when it was not JSON.
    public var body: JSONValue?
    /// What happened, in words. Never contains credentials.
    public var message: String
    /// How long the upstream asked us to wait before trying again.
    public var retryAfter: Duration?

    public init(kind: ProviderErrorKind, status: Int? = nil, body: JSONValue? = nil, message: String? = nil,
                retryAfter: Duration? = nil) {
        self.kind = kind
        self.status = status
        self.body = body
        self.message = message ?? kind.summary
        self.retryAfter = retryAfter
    }

    /// The HTTP status the gateway answers with: the upstream's own error status, else the kind's.
    public var httpStatus: Int {
        if let status, !(200..<300).contains(status), (400..<600).contains(status) { return status }
        return kind.httpStatus
    }

    /// The error for an upstream answer with a non-2xx status.
    public static func upstream(status: Int, body: JSONValue?, retryAfter: Duration?) -> ProviderError {
        let kind = ProviderErrorKind(status: status)
        let upstreamMessage = body?["error"]?["message"]?.stringValue ?? body?["message"]?.stringValue
            ?? body?["error"]?.stringValue
        return ProviderError(
            kind: kind, status: status, body: body,
            message: upstreamMessage.map { "\(kind.summary) (HTTP \(status)): \($0)" } ?? "\(kind.summary) (HTTP \(status))",
            retryAfter: retryAfter
        )
    }
}
