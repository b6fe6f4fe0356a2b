import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
import ChronicleStorage
import Logging

/// An error answered as JSON in Rust Chronicle's shape, which OpenAI SDKs also read:
/// `{"error": {"kind", "type", "message", "details": {"body", "details"}}}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var kind: String
    public var message: String
    /// The provider's error body, or the offending input.
    public var body: JSONValue?
    public var headers: HTTPFields
    /// The error as an Anthropic client gets it, when it differs from what the status implies (an
    /// upstream's own error type, say). Errors on the Anthropic routes are answered in Anthropic's shape
    /// whether or not this is set.
    public var anthropic: AnthropicError?
    /// The error as an OpenAI Responses API client gets it, naming the member at fault in `param`. Errors
    /// on the Responses route are answered in OpenAI's shape whether or not this is set.
    public var responses: ResponsesError?

    public init(status: Int, kind: String, message: String, body: JSONValue? = nil, headers: HTTPFields = [:]) {
        self.status = HTTPResponse.Status(code: status)
        self.kind = kind
        self.message = message
        self.body = body
        self.headers = headers
    }

    /// A Responses API error: its status, type and message, with `param` naming the member at fault.
    public init(responses error: ResponsesError) {
        self.init(status: error.status, kind: error.type, message: error.message)
        self.responses = error
    }

    public init(_ error: GatewayError) {
        switch error {
        case .lookup(let lookup):
            self.init(status: lookup.httpStatus, kind: lookup.kind, message: lookup.message)
        case .provider(let providerError, let retries, _, _):
            var headers: HTTPFields = [:]
            if let retryAfter = providerError.retryAfter, providerError.kind == .rateLimit {
                headers[.retryAfter] = String(max(1, (retryAfter.milliseconds + 999) / 1000))
            }
            let attempts = retries + 1
            self.init(
                status: providerError.httpStatus, kind: providerError.kind.rawValue,
                message: attempts > 1 ? "\(providerError.message) (after \(attempts) attempts)" : providerError.message,
                body: providerError.body, headers: headers)
        }
    }

    /// The JSON body.
    public var json: JSONValue {
        [
            "error": [
                "kind": .string(kind),
                "type": .string(kind),
                "message": .string(message),
                "details": ["body": body ?? .null, "details": .null],
            ]
        ]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        if anthropic != nil || MessagesPaths.contains(request.uri.path) {
            // Anthropic's SDKs read `{"type":"error","error":{"type","message"}}` and pick the exception
            // class by status.
            let error = anthropic ?? AnthropicError(AnthropicErrorType(status: Int(status.code)), message: message)
            let body = (try? error.body()) ?? Array(#"{"type":"error","error":{"type":"api_error","message":"error"}}"#.utf8)
            let status = anthropic.map { HTTPResponse.Status(code: $0.status) } ?? status
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        if responses != nil || ResponsesPaths.contains(request.uri.path) {
            // OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with Chronicle's `kind` and
            // `details` beside it as on every other route.
            let error = responses ?? ResponsesError(status: Int(status.code), type: Self.openAIType(status: Int(status.code)),
                                                    message: message, code: kind)
            var object = error.object.objectValue ?? [:]
            object["kind"] = .string(kind)
            object["details"] = ["body": body ?? .null, "details": .null]
            let data = (try? JSONCoding.encode(JSONValue.object(["error": .object(object)])))
                ?? Data(#"{"error":{"type":"server_error","message":"error"}}"#.utf8)
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        let data = (try? JSONCoding.encode(json)) ?? Data(#"{"error":{"kind":"internal","message":"error"}}"#.utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Any error as the JSON error the client gets.
    init(converting error: any Error, logger: Logger) {
        switch error {
        case let error as APIError:
            self = error
        case let error as GatewayError:
            self.init(error)
        case let error as ProviderError:
            // A failure after the provider accepted the request, while collecting a non-streamed answer.
            self.init(.provider(error, numRetries: 0, wasRateLimited: error.kind == .rateLimit, attempts: []))
        case is ClientDisconnect.Disconnected:
            self.init(status: 499, kind: "cancelled", message: "The client disconnected")
        case let error as InvalidQuery:
            self = .badRequest("invalid_query", error.description)
        case let error as HTTPError:
            self.init(status: Int(error.status.code), kind: JSONErrorMiddleware<BasicRequestContext>.kind(for: error.status),
                      message: error.body ?? error.status.reasonPhrase, headers: error.headers)
        case let error as any HTTPResponseError:
            self.init(status: Int(error.status.code), kind: JSONErrorMiddleware<BasicRequestContext>.kind(for: error.status),
                      message: error.status.reasonPhrase)
        default:
            logger.error("unhandled error", metadata: ["error": "\(error)"])
            self.init(status: 500, kind: "internal", message: "Internal server error")
        }
    }

    /// OpenAI's error type for a status.
    static func openAIType(status: Int) -> String {
        switch status {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 429: return "rate_limit_error"
        case 400..<500: return "invalid_request_error"
        default: return "server_error"
        }
    }

    static func badRequest(_ kind: String, _ message: String) -> APIError {
        APIError(status: 400, kind: kind, message: message)
    }
}

/// Renders every error that reaches it as JSON, so that no failure answers with an empty or plain-text body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            throw APIError(converting: error, logger: context.logger)
        }
    }

    static func kind(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 413: return "body_too_large"
        case 400: return "bad_request"
        default: return status.code >= 500 ? "internal" : "bad_request"
        }
    }
}

extension Router {
    /// Answers other methods on POST-only paths with a JSON 405 and `Allow: POST` (not a 404).
    func postOnly(_ paths: [String]) {
        for path in paths {
            for method in [HTTPRequest.Method.get, .put, .patch, .delete] {
                on(RouterPath(path), method: method) { _, _ -> Response in
                    throw APIError(status: 405, kind: "method_not_allowed", message: "\(path) accepts POST only",
                                   headers: [.allow: "POST"])
                }
            }
        }
    }
}
