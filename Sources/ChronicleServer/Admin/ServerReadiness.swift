import Hummingbird
import NIOConcurrencyHelpers

/// Whether the server is ready for traffic (`/readyz`): the database migrated and the configuration
/// loaded. `/healthz` stays the liveness check and answers regardless.
public final class ServerReadiness: Sendable {
    private struct State {
        var ready = false
        var waiting = "starting"
    }

    private let state = NIOLockedValueBox(State())

    public init(ready: Bool = false) {
        state.withLockedValue { $0.ready = ready }
    }

    public var isReady: Bool { state.withLockedValue { $0.ready } }

    /// What the server is waiting for, while not ready.
    public var waitingFor: String { state.withLockedValue { $0.waiting } }

    public func markReady() {
        state.withLockedValue { $0.ready = true }
    }

    public func waiting(for reason: String) {
        state.withLockedValue { $0.waiting = reason }
    }

    /// Returns once ready (polling briefly), or when the task is cancelled.
    public func wait() async {
        while !isReady && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Until the server is ready, the gateway's API answers 503: before the database's configuration is loaded,
/// the keys it holds are not known, so nothing may be let through. Health, readiness and the read and admin
/// APIs are left to their own checks.
struct ReadinessMiddleware<Context: RequestContext>: RouterMiddleware {
    let readiness: ServerReadiness

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if !readiness.isReady, case .api = AccessMiddleware<ChronicleRequestContext>.area(of: request.uri.path) {
            throw APIError(status: 503, kind: "not_ready",
                           message: "The gateway is starting: \(readiness.waitingFor)", headers: [.retryAfter: "1"])
        }
        return try await next(request, context)
    }
}
