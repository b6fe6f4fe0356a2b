/// What background event delivery waits on between retries and for flush deadlines; injectable so that
/// tests move time by hand instead of sleeping.
public protocol DeliveryClock: Sendable {
    /// Suspends for `duration`, or throws `CancellationError` if the task is cancelled first.
    func sleep(for duration: Duration) async throws
}

/// Real time.
public struct ContinuousDeliveryClock: DeliveryClock {
    public init() {}

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
