import ChronicleCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Deletes rows older than the retention period, as a service of its own: it does not depend on records
/// arriving, so an idle server cleans up too.
///
/// Each pass deletes in small batches, pausing between them so that the database stays responsive to the
/// log writer, until nothing expired is left; then it sleeps until the next interval.
public final class RetentionService: Service {
    public struct Configuration: Sendable {
        /// Rows older than this many days are deleted; 0 keeps everything (the service then does nothing).
        public var retentionDays = 30
        /// The time between the end of one pass and the start of the next.
        public var interval: Duration = .seconds(3600)
        /// Rows deleted per table in one statement.
        public var batchSize = 1000
        /// The pause after a full batch, before the next.
        public var pause: Duration = .milliseconds(200)

        public init() {}
    }

    /// Counters for monitoring.
    public struct Statistics: Sendable, Equatable {
        public var passes = 0
        public var deleted = 0
        public var failures = 0
    }

    public let store: any LogStore
    public let configuration: Configuration
    private let clock: any GatewayClock
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let counters = NIOLockedValueBox(Statistics())

    /// - Parameters:
    ///   - clock: what the pauses and the interval wait on.
    ///   - now: the wall-clock time the cutoff is computed from.
    public init(store: any LogStore, configuration: Configuration = Configuration(),
                clock: any GatewayClock = SystemClock(), now: @escaping @Sendable () -> Date = { Date() },
                logger: Logger = Logger(label: "chronicle.retention")) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.now = now
        self.logger = logger
    }

    public var statistics: Statistics { counters.withLockedValue { $0 } }

    public func run() async throws {
        do {
            guard configuration.retentionDays > 0 else {
                // Returning early would end the whole service group; keeping everything means idling.
                try await gracefulShutdown()
                return
            }
            try await cancelWhenGracefulShutdown {
                while true {
                    _ = try await self.runPass()
                    try await self.clock.sleep(for: self.configuration.interval)
                }
            }
        } catch is CancellationError {
            // Shutting down: a pass cut short is finished by the next start.
        }
    }

    /// Deletes everything older than the cutoff, batch by batch; returns how many rows went.
    @discardableResult
    public func runPass() async throws -> Int {
        let cutoff = now().addingTimeInterval(-Double(configuration.retentionDays) * 86400)
        let batchSize = max(1, configuration.batchSize)
        var total = 0
        do {
            while true {
                let deleted = try await store.deleteExpired(before: cutoff, limit: batchSize)
                total += deleted
                counters.withLockedValue { $0.deleted += deleted }
                // A batch short of the limit in every table means nothing expired is left.
                if deleted < batchSize { break }
                try await clock.sleep(for: configuration.pause)
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            counters.withLockedValue { $0.failures += 1 }
            logger.warning("retention cleanup failed; retrying at the next interval", metadata: ["error": "\(error)"])
        }
        counters.withLockedValue { $0.passes += 1 }
        if total > 0 { logger.info("retention deleted expired rows", metadata: ["rows": "\(total)"]) }
        return total
    }
}
