import ChronicleCore
import HTTPTypes
import Hummingbird
import NIOCore

/// A request context that carries the name of the gateway key the request was admitted with.
public protocol GatewayKeyRequestContext: RequestContext {
    var gatewayKeyName: String? { get set }
    /// The client's connection, watched for disconnects.
    var clientChannel: (any Channel)? { get }
}

/// Chronicle's request context.
public struct ChronicleRequestContext: GatewayKeyRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var gatewayKeyName: String?
    public let clientChannel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        clientChannel = source.channel
    }
}

/// Admission for every request: header size, then the gateway key and its limits (the API), or the
/// admin key (read APIs and metrics). Health checks are open. The admission is released when the
/// response body has been written, so a stream counts as in flight until its end.
struct AccessMiddleware<Context: GatewayKeyRequestContext>: RouterMiddleware {
    let access: AccessControl

    enum Area {
        case open, admin, api
    }

    static func area(of path: String) -> Area {
        // The dashboard's static files hold no data; the APIs its pages call need the admin key.
        if path == "/" || path == "/healthz" || path == "/readyz" || path == "/ui" || path.hasPrefix("/ui/") { return .open }
        if path == "/metrics" || path.hasPrefix("/v1/runs") || path.hasPrefix("/v1/calls") || path == "/v1/usage"
            || path == "/v1/budgets" || path.hasPrefix("/v1/admin/") || path == "/v1/admin" {
            return .admin
        }
        return .api
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let limit = access.settings.limits.maxHeaderSize
        var headerBytes = 0
        for field in request.headers { headerBytes += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        if headerBytes > limit {
            throw APIError(status: 431, kind: "headers_too_large",
                           message: "Request headers total \(headerBytes) bytes, over the limit of \(limit)")
        }
        // Preflight requests carry no credentials; the CORS middleware answers them.
        if request.method == .options { return try await next(request, context) }
        switch Self.area(of: request.uri.path) {
        case .open:
            return try await next(request, context)
        case .admin:
            try access.authorizeAdmin(request.headers)
            return try await next(request, context)
        case .api:
            let admission = try access.admit(request.headers)
            var context = context
            context.gatewayKeyName = admission.keyName
            var response: Response
            do {
                response = try await next(request, context)
            } catch {
                access.release(admission)
                throw error
            }
            let access = self.access
            response.body = response.body.onFinished { access.release(admission) }
            return response
        }
    }
}

/// Cross-origin access for browser clients, off unless origins are configured.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>
    var allowsAny: Bool { origins.contains("*") }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let origin = request.headers[.origin], allowsAny || origins.contains(origin) else {
            return try await next(request, context)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [:]
            addOrigin(origin, to: &headers)
            headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders]
                ?? "authorization, content-type, x-api-key"
            headers[.accessControlMaxAge] = "600"
            return Response(status: .noContent, headers: headers)
        }
        do {
            var response = try await next(request, context)
            addOrigin(origin, to: &response.headers)
            return response
        } catch {
            var apiError = APIError(converting: error, logger: context.logger)
            addOrigin(origin, to: &apiError.headers)
            throw apiError
        }
    }

    private func addOrigin(_ origin: String, to headers: inout HTTPFields) {
        headers[.accessControlAllowOrigin] = allowsAny ? "*" : origin
        if !allowsAny { headers[.vary] = "Origin" }
        headers[.accessControlExposeHeaders] = "x-chronicle-overhead-ms, x-chronicle-call-id, x-chronicle-cost-usd, retry-after"
    }
}
