import ChronicleCore
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Runs the turnkey server: configuration, gateway, HTTP application and graceful shutdown.
public enum ChronicleServer {
    public static let version = "0.1.0"

    /// Loads the configuration and serves until SIGINT or SIGTERM; in-flight requests finish first.
    public static func run(overrides: ServerSettings.Overrides) async throws {
        var logger = Logger(label: "chronicle")
        logger.logLevel = ProcessInfo.processInfo.environment["CHRONICLE_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        let settings = try ServerSettings.load(overrides: overrides)
        for file in settings.configFiles { logger.info("loaded configuration", metadata: ["file": "\(file)"]) }

        let gateway = try Gateway.Builder()
            .withConfiguration(settings.gateway)
            .withLogger(logger)
            .build()
        let app = ChronicleApplication.make(
            gateway: gateway, host: settings.host, port: settings.port, maxBodySize: settings.maxBodySize,
            logger: logger)
        do {
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        } catch {
            try? await gateway.shutdown()
            throw error
        }
        try await gateway.shutdown()
    }
}
