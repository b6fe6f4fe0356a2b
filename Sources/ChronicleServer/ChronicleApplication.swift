import ChronicleCore
import Foundation
import Hummingbird
import HummingbirdCore
import ChronicleStorage
import Logging
import NIOCore
import ServiceLifecycle
import Tracing

/// Builds the Chronicle HTTP application around a ``Gateway``.
public enum ChronicleApplication {
    /// Everything the application needs besides the gateway.
    public struct Options: Sendable {
        /// Read API backend; the read routes exist only with one.
        public var reader: (any LogReader)?
        /// The tracer for server spans (the gateway has its own reference for call spans).
        public var tracer: any Tracer = NoOpTracer()
        /// Serves `/metrics` when set.
        public var metrics: ServerMetrics?

        public init(reader: (any LogReader)? = nil, tracer: any Tracer = NoOpTracer(), metrics: ServerMetrics? = nil) {
            self.reader = reader
            self.tracer = tracer
            self.metrics = metrics
        }
    }

    /// The router with every Chronicle route.
    public static func makeRouter(gateway: Gateway, access: AccessControl, options: Options)
        -> Router<ChronicleRequestContext>
    {
        let router = Router(context: ChronicleRequestContext.self)
        router.add(middleware: ObservabilityMiddleware(tracer: options.tracer, metrics: options.metrics?.factory))
        let security = access.settings
        if !security.corsOrigins.isEmpty {
            router.add(middleware: CORSMiddleware(origins: Set(security.corsOrigins)))
        }
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: AccessMiddleware(access: access))
        let ok: @Sendable (Request, ChronicleRequestContext) async throws -> Response = { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("/", use: ok)
        router.get("/healthz", use: ok)
        let maxBodySize = security.limits.maxBodySize
        ChatRoutes<ChronicleRequestContext>(gateway: gateway, maxBodySize: maxBodySize,
                                            policy: RequestPolicy(settings: security)).register(on: router)
        ModelRoutes<ChronicleRequestContext>(gateway: gateway).register(on: router)
        EventRoutes<ChronicleRequestContext>(gateway: gateway, maxBodySize: maxBodySize).register(on: router)
        if let reader = options.reader { ReadRoutes<ChronicleRequestContext>(reader: reader).register(on: router) }
        if let metrics = options.metrics { MetricsRoutes<ChronicleRequestContext>(metrics: metrics).register(on: router) }
        return router
    }

    /// An application serving `gateway` on `host:port`.
    ///
    /// The gateway should be built with ``usageTap(for:)`` around its log sink when keys have
    /// tokens-per-minute limits, so that finished calls are charged to their keys.
    public static func make(
        gateway: Gateway,
        access: AccessControl = AccessControl(settings: SecuritySettings()),
        options: Options = Options(),
        host: String,
        port: Int,
        services: [any Service] = [],
        logger: Logger = Logger(label: "chronicle"),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let limits = access.settings.limits
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuardHandler(
                headerTimeout: limits.headerReadTimeout, bodyTimeout: limits.bodyReadTimeout,
                writeTimeout: limits.clientWriteTimeout, idleTimeout: limits.idleTimeout)],
            idleTimeout: TimeAmount(limits.idleTimeout),
            // Over the parser's limit the connection is closed; between our limit and it, a JSON 431.
            httpDecoderConfiguration: .init(maxHeaderListSize: limits.maxHeaderSize + 64 * 1024))
        return Application(
            router: makeRouter(gateway: gateway, access: access, options: options),
            server: .http1(configuration: http1),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "chronicle"),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger)
    }
}

/// Charges each finished call's tokens to the gateway key that made it, then passes the entry on.
public struct UsageTap: LogSink {
    let access: AccessControl
    let next: (any LogSink)?

    public init(access: AccessControl, next: (any LogSink)?) {
        self.access = access
        self.next = next
    }

    public func record(_ entry: LogEntry) {
        if case .call(let call) = entry, let key = call.options.internalMetadata.gatewayKey,
           let usage = call.response?.usage {
            access.charge(tokens: usage.totalTokens ?? ((usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)),
                          keyName: key)
        }
        next?.record(entry)
    }

    public func flush(deadline: ContinuousClock.Instant) async -> Bool {
        await next?.flush(deadline: deadline) ?? true
    }
}

/// `GET /v1/models` in OpenAI's list format: aliases, configured providers' models, and the built-ins
/// that have a key, with their known models.
struct ModelRoutes<Context: RequestContext>: Sendable {
    let gateway: Gateway

    func register(on router: Router<Context>) {
        router.get("/v1/models") { _, _ -> Response in
            let data = gateway.listedModels.map { model -> JSONValue in
                ["id": .string(model.id), "object": "model", "created": 0, "owned_by": .string(model.ownedBy)]
            }
            let body = try JSONCoding.encode(JSONValue.object(["object": "list", "data": .array(data)]))
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
