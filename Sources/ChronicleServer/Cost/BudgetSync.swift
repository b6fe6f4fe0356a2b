import ChronicleStorage
import Logging
import ServiceLifecycle

/// Reads budget spend from a shared database once it is ready (what survives a restart), then keeps the
/// gateway keys' budgets fleet-wide: every `interval`, raises each key's spend to what the shared
/// database holds, which includes the calls the other replicas have stored. The request path still reads
/// only memory; between two looks a replica counts its own calls as they finish.
///
/// So a key's fleet-wide spend can pass its limit by what the fleet spends in one interval plus the log
/// writer's flush delay, besides the calls in flight when the limit is reached.
public struct BudgetSync: Service {
    let budgets: Budgets
    let reader: any UsageReader
    let interval: Duration
    let logger: Logger

    public init(budgets: Budgets, reader: any UsageReader, interval: Duration = .seconds(1), logger: Logger) {
        self.budgets = budgets
        self.reader = reader
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        var loaded = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                if loaded {
                    try await budgets.refreshKeySpend(from: reader)
                } else {
                    // The first look also takes the users' spend, so that their budgets survive a restart.
                    try await budgets.load(from: reader)
                    loaded = true
                }
                if failing { logger.notice("budget spend read from the database again") }
                failing = false
            } catch {
                if !failing {
                    logger.warning("cannot read budget spend from the database; enforcing with this replica's count",
                                   metadata: ["error": "\(error)"])
                }
                failing = true
            }
            try? await Task.sleep(for: interval)
        }
    }
}
