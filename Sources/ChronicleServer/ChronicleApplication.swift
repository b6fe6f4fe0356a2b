import ChronicleCore
import Foundation
import Hummingbird
import ChronicleStorage
import Logging
import NIOCore
import ServiceLifecycle

/// Builds the Chronicle HTTP application around a ``Gateway``.
public enum ChronicleApplication {
    /// The router with every Chronicle route.
    public static func makeRouter(gateway: Gateway, reader: (any LogReader)? = nil,
                                  maxBodySize: Int = 20 * 1024 * 1024) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        let ok: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        router.get("/", use: ok)
        router.get("/healthz", use: ok)
        ChatRoutes<BasicRequestContext>(gateway: gateway, maxBodySize: maxBodySize).register(on: router)
        ModelRoutes<BasicRequestContext>(gateway: gateway).register(on: router)
        EventRoutes<BasicRequestContext>(gateway: gateway, maxBodySize: maxBodySize).register(on: router)
        if let reader { ReadRoutes<BasicRequestContext>(reader: reader).register(on: router) }
        return router
    }

    /// An application serving `gateway` on `host:port`.
    public static func make(
        gateway: Gateway,
        reader: (any LogReader)? = nil,
        host: String,
        port: Int,
        maxBodySize: Int = 20 * 1024 * 1024,
        services: [any Service] = [],
        logger: Logger = Logger(label: "chronicle"),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(gateway: gateway, reader: reader, maxBodySize: maxBodySize),
            server: .http1(configuration: .init(idleTimeout: .seconds(75))),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "chronicle"),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger)
    }
}

/// `GET /v1/models`: the aliases and the models they name, in OpenAI's list format.
struct ModelRoutes<Context: RequestContext>: Sendable {
    let gateway: Gateway

    func register(on router: Router<Context>) {
        router.get("/v1/models") { _, _ -> Response in
            var seen = Set<String>()
            var data: [JSONValue] = []
            func add(_ id: String, ownedBy: String) {
                guard seen.insert(id).inserted else { return }
                data.append(["id": .string(id), "object": "model", "created": 0, "owned_by": .string(ownedBy)])
            }
            let aliases = gateway.aliases
            for alias in aliases { add(alias.name, ownedBy: "chronicle") }
            for alias in aliases {
                for model in alias.models { add(model.model, ownedBy: model.provider) }
            }
            let body = try JSONCoding.encode(JSONValue.object(["object": "list", "data": .array(data)]))
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
