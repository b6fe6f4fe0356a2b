import ChronicleCore
@testable import ChronicleServer
@testable import ChronicleStorage
import ChronicleTesting
import NIOHTTP1
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Testing

/// Whether the fleet tests run: with a PostgreSQL server, and always in CI (where a missing one fails them).
enum FleetDatabaseAvailability {
    static var available: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["CHRONICLE_TEST_POSTGRES_URL"] != nil || environment["CI"] != nil
    }
}

/// One PostgreSQL database that several replicas share, dropped at the end.
final class FleetDatabase: Sendable {
    let name: String
    let url: String
    let directory: URL

    init() async throws {
        name = "chronicle_fleet_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        guard let admin = ProcessInfo.processInfo.environment["CHRONICLE_TEST_POSTGRES_URL"],
              var components = URLComponents(string: admin) else {
            throw ConfigurationError("CHRONICLE_TEST_POSTGRES_URL is not set; run scripts/start-postgres.sh")
        }
        components.path = "/" + name
        guard let url = components.string else { throw ConfigurationError("no database URL") }
        self.url = url
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-fleet-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await SessionDatabase.admin("CREATE DATABASE \(name)")
        let store = try PostgresLogStore(url: url, maxConnections: 1, logger: SessionDatabase.quiet)
        let task = Task { _ = try? await store.run() }
        defer { task.cancel() }
        try await store.migrate()
    }

    /// Text rows from the shared database.
    func rows(_ sql: String) async throws -> [[String: String]] {
        let store = try PostgresLogStore(url: url, maxConnections: 1, logger: SessionDatabase.quiet)
        let task = Task { _ = try? await store.run() }
        defer { task.cancel() }
        return try await store.fetchText(sql, [])
    }

    func drop() async {
        try? await SessionDatabase.admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A replica wired as `chronicle serve` wires one on PostgreSQL: the log writer, the configuration reloader
/// and its change listener, fleet counters and the admin API, on a loopback port.
struct FleetReplica {
    static let adminKey = "admin-secret"
    static let secretKey = "test-master-key"

    let server: RunningServer
    let reloader: ConfigReloader
    let counters: FleetCounters
    let exchange: FleetCounterExchange
    let store: PostgresLogStore
    let storeTask: Task<Void, Never>
    let instanceID: String

    var base: String { server.base }

    /// - Parameters:
    ///   - exchangeInterval: how often counters are exchanged in the background; nil leaves it to the test
    ///     (``FleetCounterExchange/exchange()``), so that what each replica has seen is exact.
    ///   - wallClock: picks the limit window; a fixed time keeps a test inside one window.
    static func start(on database: FleetDatabase, instanceID: String, files: ConfigReloader.FileLayer = .init(
        gateway: GatewayConfiguration(), gatewayKeys: []), exchangeInterval: Duration? = nil,
        wallClock: @escaping @Sendable () -> Date = { Date() }, secretKey: String? = FleetReplica.secretKey,
        cost: CostTracker? = nil, budgetSyncInterval: Duration = .milliseconds(50))
        async throws -> FleetReplica
    {
        let logger = SessionDatabase.quiet
        let store = try PostgresLogStore(url: database.url, maxConnections: 4, instanceID: instanceID, logger: logger)
        let storeTask = Task { _ = try? await store.run() }
        try await store.migrate()
        var writerConfiguration = LogWriter.Configuration()
        writerConfiguration.flushInterval = .milliseconds(20)
        writerConfiguration.spillPath = database.directory.appendingPathComponent("\(instanceID).spill").path
        writerConfiguration.journalPath = database.directory.appendingPathComponent("\(instanceID).journal").path
        if let cost { writerConfiguration.prices = cost.prices }
        let writer = LogWriter(store: store, configuration: writerConfiguration, logger: logger)
        let counters = FleetCounters(instanceID: instanceID, wallClock: wallClock)
        var security = SecuritySettings()
        security.adminKeyDigest = KeyDigest(of: adminKey)
        let access = AccessControl(settings: security, fleet: counters)
        var builder = Gateway.Builder().withHTTPClient(upstreamClient).withConfiguration(files.gateway)
            .withLogSink(writer).chargingTokens(to: access).withLogger(logger)
        if let cost { builder = builder.trackingCost(cost) }
        let gateway = try builder.build()
        let reloader = ConfigReloader(
            gateway: gateway, access: access, files: files, store: store,
            secrets: secretKey.map(SecretBox.init(masterKey:)), logger: logger, budgets: cost?.budgets)
        await reloader.reloadDatabase()
        let exchange = FleetCounterExchange(counters: counters, store: store,
                                            interval: exchangeInterval ?? .seconds(3600), logger: logger)
        var services: [any Service] = [writer, ConfigChangeListener(store: store, logger: logger) {
            await reloader.reloadDatabase()
        }]
        if exchangeInterval != nil { services.append(exchange) }
        if let budgets = cost?.budgets {
            services.append(BudgetSync(budgets: budgets, reader: store, interval: budgetSyncInterval, logger: logger))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = ChronicleApplication.make(
            gateway: gateway, access: access,
            options: .init(reader: store, cost: cost, reloader: reloader, readiness: ServerReadiness(ready: true), instanceID: instanceID),
            host: "127.0.0.1", port: 0, services: services, logger: logger,
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        let server = RunningServer(port: port, gateway: gateway, log: InMemoryLog(), group: group, task: task, access: access)
        return FleetReplica(server: server, reloader: reloader, counters: counters, exchange: exchange, store: store,
                            storeTask: storeTask, instanceID: instanceID)
    }

    /// Stops serving, drains, and writes every queued record before returning.
    func stop() async {
        await server.group.triggerGracefulShutdown()
        _ = try? await server.task.value
        try? await server.gateway.shutdown()
        storeTask.cancel()
    }

    func admin(_ path: String, method: HTTPMethod = .POST, body: String? = nil) async throws
        -> (status: Int, json: JSONValue)
    {
        let response = try await server.send("/v1/admin/" + path, method: method, body: body,
                                             headers: [("authorization", "Bearer \(Self.adminKey)")])
        let value = (try? JSONCoding.decode(JSONValue.self, from: Array(response.body.utf8))) ?? .null
        return (response.status, value)
    }

    func chat(model: String, key: String? = nil) async throws -> Int {
        let headers = key.map { [("authorization", "Bearer \($0)")] } ?? []
        return try await server.send("/v1/chat/completions", body: """
            {"model":"\(model)","messages":[{"role":"user","content":"hi"}]}
            """, headers: headers).status
    }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns how long it took, or nil.
func eventually(within limit: Duration = .seconds(1), _ condition: () async throws -> Bool) async rethrows -> Duration? {
    let start = ContinuousClock.now
    while true {
        if try await condition() { return ContinuousClock.now - start }
        if ContinuousClock.now - start > limit { return nil }
        try? await Task.sleep(for: .milliseconds(10))
    }
}

let chatReply = MockUpstream.Reply.json("""
    {"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":
    {"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}
    """)
