import NIOConcurrencyHelpers

/// Splits one call's wall time into the gateway's own work (its *overhead*) and time spent waiting on
/// others: upstream attempts, backoff, reading the client's body, writing to a slow client.
///
/// The server creates one when a request arrives and passes it to ``Gateway/send(_:options:timing:)``;
/// the gateway, the stream and the response writer bracket every wait with ``waiting(_:)``. The overhead
/// is then what users compare gateways by: `x-chronicle-overhead-ms` and the stored `overhead_ms`.
public final class CallTiming: Sendable {
    private struct State {
        var waited: Duration = .zero
        var completedAt: ContinuousClock.Instant?
    }

    public let startedAt: ContinuousClock.Instant
    /// True when the caller is the HTTP server: it brackets its own waits (reading the body, writing to the
    /// client) and calls ``ChatStream/complete()`` once the response is written, so that encoding and
    /// writing count toward the stored overhead. False for embedders: the time they spend between stream
    /// events is theirs, and the call is recorded when the stream ends.
    public let managedByCaller: Bool
    private let state = NIOLockedValueBox(State())

    public init(startedAt: ContinuousClock.Instant = .now, managedByCaller: Bool = false) {
        self.startedAt = startedAt
        self.managedByCaller = managedByCaller
    }

    /// Runs `body`, counting its time as waiting rather than overhead.
    @inlinable
    public func waiting<T>(_ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { addWaiting(ContinuousClock.now - start) }
        return try await body()
    }

    /// Adds time spent waiting on something other than the gateway.
    public func addWaiting(_ duration: Duration) {
        state.withLockedValue { $0.waited += duration }
    }

    /// Total time spent waiting so far.
    public var waited: Duration { state.withLockedValue { $0.waited } }

    /// The gateway's own time so far (or up to ``markCompleted(at:)``).
    public var overhead: Duration {
        let (waited, completedAt) = state.withLockedValue { ($0.waited, $0.completedAt) }
        return max(.zero, (completedAt ?? .now) - startedAt - waited)
    }

    /// Wall time since the call arrived (or until it completed).
    public var elapsed: Duration {
        (state.withLockedValue { $0.completedAt } ?? .now) - startedAt
    }

    /// Freezes the clock: later reads of ``overhead`` and ``elapsed`` return the values at `instant`.
    public func markCompleted(at instant: ContinuousClock.Instant = .now) {
        state.withLockedValue { if $0.completedAt == nil { $0.completedAt = instant } }
    }
}

extension Duration {
    /// The duration in milliseconds, with sub-millisecond precision.
    public var fractionalMilliseconds: Double {
        let parts = components
        return Double(parts.seconds) * 1000 + Double(parts.attoseconds) / 1e15
    }

    /// The duration in seconds, as a floating-point number.
    public var fractionalSeconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
