import ChronicleStorage
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs `inner` once the server is ready (migrations done, configuration loaded): services that need the
/// schema, such as the log writer, the configuration listener and the fleet counter exchange, wait here
/// while a database that was unreachable at start-up comes up.
struct AfterReadyService: Service {
    let readiness: ServerReadiness
    let inner: any Service

    func run() async throws {
        await cancelWhenGracefulShutdown { await readiness.wait() }
        guard readiness.isReady else { return }
        try await inner.run()
    }
}

/// Prepares the database until it answers, then loads the configuration and marks the server ready. Each
/// failed attempt is logged once per kind of failure and retried after a growing pause (up to 5 s).
struct DatabaseStartupService: Service {
    let migrate: @Sendable () async throws -> Void
    let reloader: ConfigReloader
    let readiness: ServerReadiness
    let logger: Logger
    /// Checks the loaded configuration (that the server is not left open); when it throws the server stays
    /// not ready, refusing API requests, and says why.
    var checkLoaded: @Sendable () throws -> Void = {}

    func run() async throws {
        await cancelWhenGracefulShutdown { await prepare() }
        // A service that returns ends the whole group: this one stays until shutdown.
        try? await gracefulShutdown()
    }

    private func prepare() async {
        var pause: Duration = .milliseconds(200)
        var lastError = ""
        while !Task.isCancelled {
            do {
                try await migrate()
                break
            } catch {
                let text = "\(error)"
                if text != lastError {
                    logger.error("database unreachable; not ready, retrying", metadata: ["error": "\(text)"])
                }
                lastError = text
                readiness.waiting(for: "database: \(text)")
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
        guard !Task.isCancelled else { return }
        while !Task.isCancelled {
            if await reloader.reloadDatabase() { break }
            readiness.waiting(for: "configuration")
            try? await Task.sleep(for: pause)
        }
        guard !Task.isCancelled else { return }
        do {
            try checkLoaded()
        } catch {
            logger.critical("not serving", metadata: ["error": "\(error)"])
            readiness.waiting(for: "\(error)")
            return
        }
        readiness.markReady()
        logger.info("ready")
    }
}

/// `SIGHUP` reloads the configuration files; a file that fails to load leaves the configuration in force.
struct ReloadOnHangupService: Service {
    let reloader: ConfigReloader

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { await reloader.reloadFiles() }
        }
    }
}
