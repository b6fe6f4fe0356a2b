import ChronicleCore
import CoreMetrics
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import Tracing

/// The server span of each request, parented on the caller's W3C `traceparent`, and the HTTP-level
/// request metrics. The span and the timer end when the response body is written, so a streamed response
/// is measured to its last byte.
struct ObservabilityMiddleware<Context: RequestContext>: RouterMiddleware {
    let tracer: any Tracer
    let metrics: (any MetricsFactory)?
    /// This replica's name, so a trace tells which replica served a request.
    var instanceID: String? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        var parent = ServiceContext.current ?? .topLevel
        tracer.extract(request.headers, into: &parent, using: HTTPFieldsExtractor())
        let span = tracer.startSpan("\(request.method.rawValue)", context: parent, ofKind: .server)
        if span.isRecording {
            span.updateAttributes { attributes in
                attributes["http.request.method"] = request.method.rawValue
                attributes["url.path"] = request.uri.path
                attributes["user_agent.original"] = request.headers[.userAgent]
                attributes["request_id"] = request.headers[.requestID]
                attributes["chronicle.instance_id"] = instanceID
            }
        }
        do {
            var response = try await ServiceContext.withValue(span.context) { try await next(request, context) }
            let route = context.endpointPath
            finishAttributes(span, method: request.method, route: route, status: Int(response.status.code))
            let status = Int(response.status.code)
            response.body = response.body.onFinished {
                span.end()
                self.recordMetrics(route: route, method: request.method, status: status, start: start)
            }
            return response
        } catch {
            let status = Int((error as? any HTTPResponseError)?.status.code ?? 500)
            finishAttributes(span, method: request.method, route: context.endpointPath, status: status)
            if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
            if let apiError = error as? APIError { span.attributes["error.type"] = apiError.kind }
            span.end()
            recordMetrics(route: context.endpointPath, method: request.method, status: status, start: start)
            throw error
        }
    }

    private func finishAttributes(_ span: any Span, method: HTTPRequest.Method, route: String?, status: Int) {
        guard span.isRecording else { return }
        if let route { span.operationName = "\(method.rawValue) \(route)" }
        span.updateAttributes { attributes in
            attributes["http.route"] = route
            attributes["http.response.status_code"] = status
        }
    }

    private func recordMetrics(route: String?, method: HTTPRequest.Method, status: Int, start: ContinuousClock.Instant) {
        guard let metrics else { return }
        // Unmatched paths share one label value: clients must not be able to grow the label set.
        let route = route ?? "unmatched"
        Counter(label: "chronicle_http_requests_total",
                dimensions: [("route", route), ("method", method.rawValue), ("status", String(status))],
                factory: metrics).increment()
        CoreMetrics.Timer(label: "chronicle_http_request_duration_seconds", dimensions: [("route", route)],
                          factory: metrics).recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }
}

/// Reads W3C trace context (and any other propagated fields) from request headers.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("x-request-id")!
}

extension ResponseBody {
    /// The same body, running `action` once it has been written or failed to be; or, if the server drops
    /// the response unwritten (its client left first), when the body is released. Exactly once either way:
    /// releasing a concurrency slot or ending a span must not depend on the client staying.
    func onFinished(_ action: @escaping @Sendable () -> Void) -> ResponseBody {
        let body = self
        let once = RunOnce(action)
        return ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(writer)
                once.run()
            } catch {
                once.run()
                throw error
            }
        }
    }
}

/// Runs an action at most once: when asked, or at the latest when released.
final class RunOnce: Sendable {
    private let action: NIOLockedValueBox<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = NIOLockedValueBox(action)
    }

    func run() {
        let action = self.action.withLockedValue { action in
            defer { action = nil }
            return action
        }
        action?()
    }

    deinit { run() }
}
