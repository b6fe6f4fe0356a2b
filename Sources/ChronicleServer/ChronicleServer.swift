import ChronicleCore
import ChronicleStorage
import CoreMetrics
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Tracing

/// Runs the turnkey server: configuration, storage, gateway, HTTP application and graceful shutdown.
public enum ChronicleServer {
    public static let version = "0.1.0"

    /// Loads the configuration and serves until SIGINT or SIGTERM: in-flight requests finish, then every
    /// queued log record is written (or spilled) before the process exits.
    public static func run(overrides: ServerSettings.Overrides) async throws {
        let settings = try ServerSettings.load(overrides: overrides)
        let environment = ProcessInfo.processInfo.environment
        var logger = ServerLogging.makeLogger(label: "chronicle", environment: environment, configLevel: settings.logLevel)
        logger[metadataKey: "instance_id"] = "\(settings.instanceID)"
        for file in settings.configFiles { logger.info("loaded configuration", metadata: ["file": "\(file)"]) }

        let metrics = settings.telemetry.metrics ? ServerMetrics() : nil
        let prices = settings.cost.priceTable
        let liveCalls = LiveCallFeed()
        let storage = try await OpenedStorage.open(settings: settings, prices: prices, metricsFactory: metrics?.factory,
                                                   onStored: liveCalls.publish, logger: logger)
        let budgets = Budgets(security: settings.security, settings: settings.cost)
        let cost = CostTracker(prices: prices, budgets: budgets, metricsFactory: metrics?.factory)
        defer { storage.backgroundTask?.cancel() }
        if let metrics, let writer = storage.writer { metrics.attach(writer) }
        let tracing = try Telemetry.makeTracing(settings.telemetry, environment: environment, logger: logger)
        if let tracing { logger.info("exporting traces over OTLP/HTTP", metadata: ["endpoint": "\(tracing.endpoint)"]) }

        // Replicas on one PostgreSQL database hold per-key limits together.
        let postgres = storage.store as? PostgresLogStore
        let fleet = postgres.map { _ in FleetCounters(instanceID: settings.instanceID) }
        let access = AccessControl(settings: settings.security, fleet: fleet)
        var builder = Gateway.Builder().withConfiguration(settings.gateway).withLogger(logger)
            .chargingTokens(to: access)
            .trackingCost(cost)
            .withRedactor(settings.redactor)
        if let writer = storage.writer { builder = builder.withLogSink(writer) }
        if let tracing { builder = builder.withTracer(tracing.tracer) }
        if let metrics { builder = builder.withMetricsFactory(metrics.factory) }
        let gateway = try builder.build()

        let reloader = ConfigReloader(
            gateway: gateway, access: access,
            files: .init(gateway: settings.gateway, gatewayKeys: settings.security.gatewayKeys),
            store: storage.store as? any ConfigStore, secrets: SecretBox.fromEnvironment(), logger: logger,
            budgets: budgets, readFiles: {
                let fresh = try ServerSettings.load(overrides: overrides)
                return .init(gateway: fresh.gateway, gatewayKeys: fresh.security.gatewayKeys)
            })
        let readiness = ServerReadiness()
        // SQLite is local: it is migrated already, and its configuration is read before serving. PostgreSQL
        // may be unreachable at start-up: the server answers (with /readyz 503) while it waits for it.
        if storage.migrated {
            await reloader.reloadDatabase()
            readiness.markReady()
        }
        // Budgets survive a restart: the spend of the current windows is read before serving (the request
        // path only ever reads the counters in memory), once the keys in the database are known. On
        // PostgreSQL, ``BudgetSync`` reads it once ready and keeps reading what the other replicas spend.
        if storage.migrated, postgres == nil, let reader = storage.reader as? any UsageReader {
            try await budgets.load(from: reader)
        }
        // With PostgreSQL the gateway keys may all be in the database: the exposure check waits for them,
        // and until then no API request is served (``ServerReadiness``).
        if storage.migrated { try checkExposure(settings, keys: access.gatewayKeys, logger: logger) }

        // Shut down in reverse: the server drains first, then retention, the log writer, the trace exporter.
        var services: [any Service] = []
        if let tracing { services.append(tracing.service) }
        if let writer = storage.writer { services.append(AfterReadyService(readiness: readiness, inner: writer)) }
        if let retention = storage.retention { services.append(AfterReadyService(readiness: readiness, inner: retention)) }
        if let postgres, let store = storage.store {
            let logger = logger
            services.append(DatabaseStartupService(
                migrate: { try await store.migrate() }, reloader: reloader, readiness: readiness, logger: logger,
                checkLoaded: { try checkExposure(settings, keys: access.gatewayKeys, logger: logger) }))
            services.append(AfterReadyService(readiness: readiness, inner: ConfigChangeListener(
                store: postgres, logger: logger, onChange: { await reloader.reloadDatabase() })))
            if let fleet {
                services.append(AfterReadyService(readiness: readiness, inner: FleetCounterExchange(
                    counters: fleet, store: postgres, interval: settings.fleetSyncInterval, logger: logger)))
            }
            services.append(AfterReadyService(readiness: readiness, inner: BudgetSync(
                budgets: budgets, reader: postgres, interval: settings.budgetSyncInterval, logger: logger)))
        }
        services.append(ReloadOnHangupService(reloader: reloader))
        let app = ChronicleApplication.make(
            gateway: gateway, access: access,
            options: .init(reader: storage.reader, tracer: tracing?.tracer ?? NoOpTracer(), metrics: metrics,
                           agentSessions: settings.agentSessions, cost: cost, liveCalls: liveCalls,
                           reloader: reloader, readiness: readiness, instanceID: settings.instanceID),
            host: settings.host, port: settings.port, services: services, logger: logger)
        do {
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            try? await gateway.shutdown()
            await storage.close()
            throw error
        }
        try await gateway.shutdown()
        await storage.close()
    }

    /// Without gateway keys the server only listens on loopback, unless told otherwise.
    /// - Parameter keys: the gateway keys in force: the files' and the database's.
    static func checkExposure(_ settings: ServerSettings, keys: [GatewayKeyConfig]? = nil, logger: Logger) throws {
        let security = settings.security
        let keys = keys ?? security.gatewayKeys
        if !keys.isEmpty {
            logger.info("gateway keys required", metadata: ["keys": "\(keys.count)"])
            return
        }
        if isLoopback(settings.host) {
            logger.notice("no gateway keys configured: accepting unauthenticated requests on loopback only",
                          metadata: ["host": "\(settings.host)"])
            return
        }
        guard security.allowUnauthenticated else {
            throw ConfigurationError("""
                Refusing to listen on \(settings.host) without gateway keys: anyone who can reach it could spend \
                your provider keys. Configure [[gateway_keys]] or CHRONICLE_GATEWAY_KEYS, or pass \
                --allow-unauthenticated (allow_unauthenticated = true in [security]) if something in front of \
                Chronicle authenticates.
                """)
        }
        logger.warning("serving WITHOUT authentication on a non-loopback address (--allow-unauthenticated)",
                       metadata: ["host": "\(settings.host)"])
    }

    static func isLoopback(_ host: String) -> Bool {
        let host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The log database, migrated, with its writer.
struct OpenedStorage {
    var store: (any LogStore)?
    var writer: LogWriter?
    /// Reads for the read API; a second connection for SQLite, so reads never wait on the writer.
    var reader: (any LogReader)?
    /// Deletes expired rows; with SQLite on a connection of its own, so that its deletes never run inside
    /// one of the writer's transactions.
    var retention: RetentionService?
    /// The PostgreSQL pool's task; it must outlive the writer, so it is not one of the application's services.
    var backgroundTask: Task<Void, Never>?
    /// Whether the schema is ready; PostgreSQL is migrated by ``DatabaseStartupService`` once it answers.
    var migrated = true

    func close() async {
        try? await store?.close()
        if let reader = reader as? SQLiteLogStore { try? await reader.close() }
        if let retention = retention?.store as? SQLiteLogStore { try? await retention.close() }
    }

    static func open(settings: ServerSettings, prices: PriceTable = .bundled, metricsFactory: (any MetricsFactory)?,
                     onStored: (@Sendable ([StoredRecord]) -> Void)? = nil, logger: Logger) async throws
        -> OpenedStorage
    {
        guard settings.logToDatabase else {
            logger.notice("log_to_database is false: calls and events are not recorded")
            return OpenedStorage()
        }
        let location = try DatabaseLocation(settings.database ?? "chronicle.db")
        let store: any LogStore
        let reader: any LogReader
        let retentionStore: any LogStore
        var task: Task<Void, Never>?
        let spillDirectory: String
        let stem: String
        switch location {
        case .sqlite(let path):
            store = try await SQLiteLogStore.open(path: path, instanceID: settings.instanceID, logger: logger)
            reader = try await SQLiteLogStore.open(path: path, logger: logger)
            retentionStore = try await SQLiteLogStore.open(path: path, logger: logger)
            spillDirectory = settings.storage.spillDirectory ?? (path as NSString).deletingLastPathComponent
            stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        case .postgres(let url):
            let postgres = try PostgresLogStore(url: url, maxConnections: settings.storage.maxConnections,
                                                instanceID: settings.instanceID, logger: logger)
            task = Task { _ = try? await postgres.run() }
            store = postgres
            reader = postgres
            retentionStore = postgres
            spillDirectory = settings.storage.spillDirectory ?? FileManager.default.currentDirectoryPath
            stem = "chronicle"
        }
        var migrated = true
        if case .postgres = location {
            migrated = false
        } else {
            do {
                try await store.migrate()
            } catch {
                task?.cancel()
                throw StorageError("Cannot prepare the database \(location.description): \(error)")
            }
        }
        logger.info("recording calls", metadata: ["database": "\(location.description)"])

        var configuration = LogWriter.Configuration()
        configuration.batchSize = settings.storage.batchSize
        configuration.flushInterval = settings.storage.flushInterval
        configuration.maxBufferedRecords = settings.storage.maxBufferedRecords
        configuration.maxBufferedBytes = settings.storage.maxBufferedBytes
        configuration.metricsFactory = metricsFactory
        configuration.prices = prices
        configuration.onStored = onStored
        let directory = spillDirectory.isEmpty ? "." : spillDirectory
        let spillPath = (directory as NSString).appendingPathComponent("\(stem).spill")
        // Earlier versions spilled to `.spill.jsonl`; the spill file reads their JSON lines, so a file left
        // there is taken over under the new name and replayed.
        let earlierSpillPath = spillPath + ".jsonl"
        if FileManager.default.fileExists(atPath: earlierSpillPath), !FileManager.default.fileExists(atPath: spillPath) {
            try? FileManager.default.moveItem(atPath: earlierSpillPath, toPath: spillPath)
        }
        configuration.spillPath = spillPath
        configuration.deadLetterPath = (directory as NSString).appendingPathComponent("\(stem).deadletter.jsonl")
        if settings.storage.journal {
            configuration.journalPath = settings.storage.journalPath
                ?? (directory as NSString).appendingPathComponent("\(stem).journal")
        }
        let writer = LogWriter(store: store, configuration: configuration, logger: logger)
        var retention: RetentionService?
        if settings.storage.retentionDays > 0 {
            var retentionConfiguration = RetentionService.Configuration()
            retentionConfiguration.retentionDays = settings.storage.retentionDays
            retention = RetentionService(store: retentionStore, configuration: retentionConfiguration, logger: logger)
        } else if let sqlite = retentionStore as? SQLiteLogStore {
            try? await sqlite.close()
        }
        return OpenedStorage(store: store, writer: writer, reader: reader, retention: retention, backgroundTask: task,
                             migrated: migrated)
    }
}
