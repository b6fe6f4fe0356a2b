import ChronicleCore
import ChronicleStorage
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

extension ChronicleServer {
    /// Runs `body` against an admin API served in this process on a loopback port, on the configured
    /// database, with a one-off admin key: what `chronicle keys|providers|aliases --database` use, so that a
    /// change made on the database directly is checked, audited and announced exactly as through a server.
    public static func withLocalAdmin<T: Sendable>(
        overrides: ServerSettings.Overrides, _ body: @Sendable (_ baseURL: String, _ adminKey: String) async throws -> T
    ) async throws -> T {
        var settings = try ServerSettings.load(overrides: overrides)
        var logger = Logger(label: "chronicle-admin")
        logger.logLevel = .warning
        let adminKey = "local-" + UUID().uuidString
        settings.security.adminKeyDigest = KeyDigest(of: adminKey)
        let location = try DatabaseLocation(settings.database ?? "chronicle.db")
        let store: any LogStore
        var task: Task<Void, Never>?
        switch location {
        case .sqlite(let path):
            store = try await SQLiteLogStore.open(path: path, logger: logger)
        case .postgres(let url):
            let postgres = try PostgresLogStore(url: url, maxConnections: 2, logger: logger)
            task = Task { _ = try? await postgres.run() }
            store = postgres
        }
        defer { task?.cancel() }
        try await store.migrate()
        let access = AccessControl(settings: settings.security)
        let gateway = try Gateway.Builder().withConfiguration(settings.gateway).withLogger(logger).build()
        let reloader = ConfigReloader(
            gateway: gateway, access: access,
            files: .init(gateway: settings.gateway, gatewayKeys: settings.security.gatewayKeys),
            store: store as? any ConfigStore, secrets: SecretBox.fromEnvironment(), logger: logger)
        guard await reloader.reloadDatabase() else { throw StorageError("Cannot read the configuration tables") }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = ChronicleApplication.make(
            gateway: gateway, access: access, options: .init(reloader: reloader), host: "127.0.0.1", port: 0,
            logger: logger, onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let running = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        do {
            let result = try await body("http://127.0.0.1:\(port)", adminKey)
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            try? await gateway.shutdown()
            try? await store.close()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            try? await gateway.shutdown()
            try? await store.close()
            throw error
        }
    }
}
