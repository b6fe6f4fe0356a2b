import ChronicleCore
import ChronicleStorage
import Foundation
import Logging
import ServiceLifecycle

/// Every `interval`, publishes this replica's counters to the database and takes back the other replicas'
/// totals. While the database is away, the replica keeps enforcing with its own counts and the others' last
/// known ones, and catches up at the next exchange that succeeds.
public struct FleetCounterExchange: Service {
    let counters: FleetCounters
    let store: any LimitCounterStore
    let interval: Duration
    let logger: Logger
    /// A replica that has not refreshed its gauges for this long is taken to be gone.
    let gaugeLifetime: Duration

    public init(counters: FleetCounters, store: any LimitCounterStore, interval: Duration = .milliseconds(200),
                gaugeLifetime: Duration = .seconds(10), logger: Logger) {
        self.counters = counters
        self.store = store
        self.interval = interval
        self.gaugeLifetime = gaugeLifetime
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        var lastCleanup = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await exchange()
                if failing { logger.notice("fleet counters exchanged again") }
                failing = false
                if ContinuousClock.now - lastCleanup > .seconds(60) {
                    lastCleanup = .now
                    try await store.deleteCounters(before: counters.currentWindow - 2 * counters.window.milliseconds)
                }
            } catch {
                if !failing {
                    logger.warning("cannot exchange fleet counters; enforcing limits with the last known counts",
                                   metadata: ["error": "\(error)"])
                }
                failing = true
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// One exchange: publish, then receive. Tests call it directly to make the staleness exact.
    public func exchange() async throws {
        let now = Date()
        let others = try await store.exchangeCounters(
            instanceID: counters.instanceID, values: counters.published(),
            since: counters.currentWindow - counters.window.milliseconds,
            freshAfter: now.addingTimeInterval(-gaugeLifetime.fractionalSeconds), now: now)
        counters.receive(others)
    }
}
