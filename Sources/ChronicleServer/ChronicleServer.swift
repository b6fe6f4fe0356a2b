import ChronicleCore
import ChronicleStorage
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Runs the turnkey server: configuration, storage, gateway, HTTP application and graceful shutdown.
public enum ChronicleServer {
    public static let version = "0.1.0"

    /// Loads the configuration and serves until SIGINT or SIGTERM: in-flight requests finish, then every
    /// queued log record is written (or spilled) before the process exits.
    public static func run(overrides: ServerSettings.Overrides) async throws {
        var logger = Logger(label: "chronicle")
        logger.logLevel = ProcessInfo.processInfo.environment["CHRONICLE_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        let settings = try ServerSettings.load(overrides: overrides)
        for file in settings.configFiles { logger.info("loaded configuration", metadata: ["file": "\(file)"]) }

        let storage = try await OpenedStorage.open(settings: settings, logger: logger)
        defer { storage.backgroundTask?.cancel() }

        var builder = Gateway.Builder().withConfiguration(settings.gateway).withLogger(logger)
        if let writer = storage.writer { builder = builder.withLogSink(writer) }
        let gateway = try builder.build()
        let app = ChronicleApplication.make(
            gateway: gateway, reader: storage.reader, host: settings.host, port: settings.port, maxBodySize: settings.maxBodySize,
            services: storage.writer.map { [$0] } ?? [], logger: logger)
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
}

/// The log database, migrated, with its writer.
struct OpenedStorage {
    var store: (any LogStore)?
    var writer: LogWriter?
    /// Reads for the read API; a second connection for SQLite, so reads never wait on the writer.
    var reader: (any LogReader)?
    /// The PostgreSQL pool's task; it must outlive the writer, so it is not one of the application's services.
    var backgroundTask: Task<Void, Never>?

    func close() async {
        try? await store?.close()
        if let reader = reader as? SQLiteLogStore { try? await reader.close() }
    }

    static func open(settings: ServerSettings, logger: Logger) async throws -> OpenedStorage {
        guard settings.logToDatabase else {
            logger.notice("log_to_database is false: calls and events are not recorded")
            return OpenedStorage()
        }
        let location = try DatabaseLocation(settings.database ?? "chronicle.db")
        let store: any LogStore
        let reader: any LogReader
        var task: Task<Void, Never>?
        let spillDirectory: String
        let stem: String
        switch location {
        case .sqlite(let path):
            store = try await SQLiteLogStore.open(path: path, logger: logger)
            reader = try await SQLiteLogStore.open(path: path, logger: logger)
            spillDirectory = settings.storage.spillDirectory ?? (path as NSString).deletingLastPathComponent
            stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        case .postgres(let url):
            let postgres = try PostgresLogStore(url: url, maxConnections: settings.storage.maxConnections, logger: logger)
            task = Task { _ = try? await postgres.run() }
            store = postgres
            reader = postgres
            spillDirectory = settings.storage.spillDirectory ?? FileManager.default.currentDirectoryPath
            stem = "chronicle"
        }
        do {
            try await store.migrate()
        } catch {
            task?.cancel()
            throw StorageError("Cannot prepare the database \(location.description): \(error)")
        }
        logger.info("recording calls", metadata: ["database": "\(location.description)"])

        var configuration = LogWriter.Configuration()
        configuration.batchSize = settings.storage.batchSize
        configuration.flushInterval = settings.storage.flushInterval
        configuration.maxBufferedRecords = settings.storage.maxBufferedRecords
        configuration.retentionDays = settings.storage.retentionDays
        let directory = spillDirectory.isEmpty ? "." : spillDirectory
        configuration.spillPath = (directory as NSString).appendingPathComponent("\(stem).spill.jsonl")
        configuration.deadLetterPath = (directory as NSString).appendingPathComponent("\(stem).deadletter.jsonl")
        let writer = LogWriter(store: store, configuration: configuration, logger: logger)
        return OpenedStorage(store: store, writer: writer, reader: reader, backgroundTask: task)
    }
}
