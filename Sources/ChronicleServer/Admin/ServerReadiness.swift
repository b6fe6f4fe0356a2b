import NIOConcurrencyHelpers

/// Whether the server is ready for traffic (`/readyz`): the database migrated and the configuration
/// loaded. `/healthz` stays the liveness check and answers regardless.
public final class ServerReadiness: Sendable {
    private struct State {
        var ready = false
        var waiting = "starting"
    }

    private let state = NIOLockedValueBox(State())

    public init(ready: Bool = false) {
        state.withLockedValue { $0.ready = ready }
    }

    public var isReady: Bool { state.withLockedValue { $0.ready } }

    /// What the server is waiting for, while not ready.
    public var waitingFor: String { state.withLockedValue { $0.waiting } }

    public func markReady() {
        state.withLockedValue { $0.ready = true }
    }

    public func waiting(for reason: String) {
        state.withLockedValue { $0.waiting = reason }
    }

    /// Returns once ready (polling briefly), or when the task is cancelled.
    public func wait() async {
        while !isReady && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
