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
        /// The live tail of stored calls (`GET /v1/calls/tail`); the log writer publishes to it.
        public var liveCalls: LiveCallFeed
        /// Whether chat calls carrying a coding agent's session header (Claude Code, OpenCode, Qwen Code)
        /// and no explicit run id are grouped into a run per session (`agent_sessions`, on by default).
        public var agentSessions: Bool
        /// Prices calls: budgets are checked before a call goes upstream, `x-chronicle-cost-usd` is set, and
        /// `/v1/budgets` is served. The gateway should be built with ``Gateway/Builder/trackingCost(_:)``
        /// for the same tracker, so that finished calls are charged.
        public var cost: CostTracker?
        /// Serves the admin API (`/v1/admin/**`) when set.
        public var reloader: ConfigReloader?
        /// What `/readyz` answers; ready when nil.
        public var readiness: ServerReadiness?
        /// This replica's name, on server spans and in `/readyz`.
        public var instanceID: String?

        public init(reader: (any LogReader)? = nil, tracer: any Tracer = NoOpTracer(), metrics: ServerMetrics? = nil,
                    agentSessions: Bool = true, cost: CostTracker? = nil, liveCalls: LiveCallFeed = LiveCallFeed(),
                    reloader: ConfigReloader? = nil, readiness: ServerReadiness? = nil, instanceID: String? = nil) {
            self.reader = reader
            self.liveCalls = liveCalls
            self.tracer = tracer
            self.metrics = metrics
            self.agentSessions = agentSessions
            self.cost = cost
            self.reloader = reloader
            self.readiness = readiness
            self.instanceID = instanceID
        }
    }

    /// The router with every Chronicle route.
    public static func makeRouter(gateway: Gateway, access: AccessControl, options: Options)
        -> Router<ChronicleRequestContext>
    {
        let router = Router(context: ChronicleRequestContext.self)
        router.add(middleware: ObservabilityMiddleware(tracer: options.tracer, metrics: options.metrics?.factory,
                                                       instanceID: options.instanceID))
        let security = access.settings
        if !security.corsOrigins.isEmpty {
            router.add(middleware: CORSMiddleware(origins: Set(security.corsOrigins)))
        }
        router.add(middleware: JSONErrorMiddleware())
        if let readiness = options.readiness { router.add(middleware: ReadinessMiddleware(readiness: readiness)) }
        router.add(middleware: AccessMiddleware(access: access))
        let ok: @Sendable (Request, ChronicleRequestContext) async throws -> Response = { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("/", use: ok)
        router.get("/healthz", use: ok)
        let readiness = options.readiness
        let instanceID = options.instanceID
        router.get("/readyz") { _, _ -> Response in
            let ready = readiness?.isReady ?? true
            var body: [String: JSONValue] = ["status": .string(ready ? "ready" : "not_ready")]
            if let instanceID { body["instance_id"] = .string(instanceID) }
            if !ready, let readiness { body["waiting_for"] = .string(readiness.waitingFor) }
            return Response(status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONCoding.encodeBytes(JSONValue.object(body)))))
        }
        let maxBodySize = security.limits.maxBodySize
        // One recorder for every chat route, so that a session's calls on any of them start its run once.
        let agentSessions = options.agentSessions ? AgentSessionRecorder(gateway: gateway) : nil
        ChatRoutes<ChronicleRequestContext>(
            gateway: gateway, maxBodySize: maxBodySize, policy: RequestPolicy(settings: security),
            agentSessions: agentSessions, cost: options.cost
        ).register(on: router)
        MessagesRoutes<ChronicleRequestContext>(
            gateway: gateway, maxBodySize: maxBodySize, policy: RequestPolicy(settings: security),
            agentSessions: agentSessions, cost: options.cost
        ).register(on: router)
        EmbeddingsRoutes<ChronicleRequestContext>(
            gateway: gateway, maxBodySize: maxBodySize, policy: RequestPolicy(settings: security),
            agentSessions: agentSessions, cost: options.cost
        ).register(on: router)
        ResponsesRoutes<ChronicleRequestContext>(
            gateway: gateway, maxBodySize: maxBodySize, policy: RequestPolicy(settings: security),
            agentSessions: agentSessions, cost: options.cost
        ).register(on: router)
        ModelRoutes<ChronicleRequestContext>(gateway: gateway).register(on: router)
        EventRoutes<ChronicleRequestContext>(gateway: gateway, maxBodySize: maxBodySize).register(on: router)
        if let reader = options.reader {
            // Before the read routes, so that `/v1/calls/tail` is not taken for a call id.
            LiveTailRoutes<ChronicleRequestContext>(feed: options.liveCalls).register(on: router)
            ReadRoutes<ChronicleRequestContext>(reader: reader).register(on: router)
        }
        DashboardRoutes<ChronicleRequestContext>(
            keyRequired: security.adminKeyDigest != nil || security.requiresAuthentication
        ).register(on: router)
        UsageRoutes<ChronicleRequestContext>(reader: options.reader as? any UsageReader, budgets: options.cost?.budgets)
            .register(on: router)
        if let metrics = options.metrics { MetricsRoutes<ChronicleRequestContext>(metrics: metrics).register(on: router) }
        if let reloader = options.reloader {
            AdminRoutes<ChronicleRequestContext>(reloader: reloader, access: access).register(on: router)
        }
        return router
    }

    /// An application serving `gateway` on `host:port`.
    ///
    /// The gateway should be built with ``Gateway/Builder/chargingTokens(to:)`` for the same `access` when
    /// keys have tokens-per-minute limits, so that finished calls are charged to their keys.
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
            server: .eventLoopBoundHTTP1(configuration: http1),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "chronicle"),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger)
    }
}

extension Gateway.Builder {
    /// Charges each finished call's tokens to the tokens-per-minute budget of the gateway key that made it
    /// (the key's name comes from the call's context, set by the chat route). Needed when keys have
    /// `tokens_per_minute` limits.
    public func chargingTokens(to access: AccessControl) -> Gateway.Builder {
        onCallFinished { access.charge($0) }
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
