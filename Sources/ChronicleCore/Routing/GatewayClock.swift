import NIOCore

/// The source of waiting for retries and timeouts; injectable so that tests never sleep.
public protocol GatewayClock: Sendable {
    /// Suspends for `duration` (a backoff wait), or throws `CancellationError` if the task is cancelled first.
    func sleep(for duration: Duration) async throws
    /// Suspends for `duration` as the losing side of a timeout race; cancelled when the operation wins.
    func sleepUntilTimeout(_ duration: Duration) async throws
    /// Calls `action` once `duration` has passed unless the returned timer is cancelled first. Upstream
    /// reads arm one of these per wait, so it must be cheap: the real clock schedules it on `eventLoop`.
    func scheduleTimeout(after duration: Duration, on eventLoop: any EventLoop,
                         _ action: @escaping @Sendable () -> Void) -> TimeoutTimer
}

extension GatewayClock {
    public func sleepUntilTimeout(_ duration: Duration) async throws {
        try await sleep(for: duration)
    }

    /// A sleeping task per timer: right for test clocks, too costly for the real one.
    public func scheduleTimeout(after duration: Duration, on eventLoop: any EventLoop,
                                _ action: @escaping @Sendable () -> Void) -> TimeoutTimer {
        let task = Task {
            do {
                try await sleepUntilTimeout(duration)
            } catch {
                return
            }
            action()
        }
        return TimeoutTimer { task.cancel() }
    }
}

/// A pending timeout from ``GatewayClock/scheduleTimeout(after:on:_:)``.
public struct TimeoutTimer: Sendable {
    private enum Backing: Sendable {
        case scheduled(Scheduled<Void>)
        case custom(@Sendable () -> Void)
    }

    private let backing: Backing

    init(_ scheduled: Scheduled<Void>) {
        backing = .scheduled(scheduled)
    }

    public init(cancel: @escaping @Sendable () -> Void) {
        backing = .custom(cancel)
    }

    /// Stops the timer; its action does not run unless it already started.
    public func cancel() {
        switch backing {
        case .scheduled(let scheduled): scheduled.cancel()
        case .custom(let cancel): cancel()
        }
    }
}

/// The real clock.
public struct SystemClock: GatewayClock {
    public init() {}
    public func sleep(for duration: Duration) async throws {
        try await ContinuousClock().sleep(for: duration)
    }

    public func scheduleTimeout(after duration: Duration, on eventLoop: any EventLoop,
                                _ action: @escaping @Sendable () -> Void) -> TimeoutTimer {
        TimeoutTimer(eventLoop.scheduleTask(in: .nanoseconds(duration.nanoseconds)) { action() })
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
