/// The source of waiting for retries and timeouts; injectable so that tests never sleep.
public protocol GatewayClock: Sendable {
    /// Suspends for `duration` (a backoff wait), or throws `CancellationError` if the task is cancelled first.
    func sleep(for duration: Duration) async throws
    /// Suspends for `duration` as the losing side of a timeout race; cancelled when the operation wins.
    func sleepUntilTimeout(_ duration: Duration) async throws
}

extension GatewayClock {
    public func sleepUntilTimeout(_ duration: Duration) async throws {
        try await sleep(for: duration)
    }
}

/// The real clock.
public struct SystemClock: GatewayClock {
    public init() {}
    public func sleep(for duration: Duration) async throws {
        try await ContinuousClock().sleep(for: duration)
    }
}

/// Thrown by ``withTimeout(_:clock:operation:)`` when the time runs out first.
public struct TimeoutError: Error, Sendable {}

/// Runs `operation`, cancelling it and throwing ``TimeoutError`` if it takes longer than `limit` on `clock`.
public func withTimeout<T: Sendable>(
    _ limit: Duration,
    clock: any GatewayClock,
    operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await clock.sleepUntilTimeout(limit)
            return nil
        }
        defer { group.cancelAll() }
        // The first child to finish decides; the other is cancelled and awaited by the group.
        guard let first = try await group.next(), let value = first else {
            throw TimeoutError()
        }
        return value
    }
}
