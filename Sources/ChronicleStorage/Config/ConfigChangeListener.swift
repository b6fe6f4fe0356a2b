import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Listens on `chronicle_config` and calls `onChange` for each notification, and once each time it
/// (re)connects, so that changes made while it was away are picked up. A lost connection is retried with a
/// growing pause (250 ms up to 5 s); meanwhile the replica keeps the configuration it has.
public struct ConfigChangeListener: Service {
    let store: PostgresLogStore
    let logger: Logger
    let onChange: @Sendable () async -> Void

    public init(store: PostgresLogStore, logger: Logger, onChange: @escaping @Sendable () async -> Void) {
        self.store = store
        self.logger = logger
        self.onChange = onChange
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await listen() }
    }

    private func listen() async {
        var pause: Duration = .milliseconds(250)
        var connected = true
            while !Task.isCancelled {
                do {
                    try await store.client.withConnection { connection in
                        try await connection.listen(on: configChangeChannel) { notifications in
                            if !connected { logger.notice("listening for configuration changes again") }
                            connected = true
                            pause = .milliseconds(250)
                            await onChange()
                            for try await _ in notifications { await onChange() }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    if connected {
                        logger.warning("lost the configuration change listener; keeping the current configuration",
                                       metadata: ["error": "\(error)"])
                    }
                    connected = false
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
    }
}
