import ChronicleCore
import NIOConcurrencyHelpers

/// A clock that only moves when told to, so retry and timeout behaviour is tested without real waiting.
///
/// Timeout sleeps always wait until ``advance(by:)`` moves time past their deadline. Backoff sleeps do
/// too, unless `autoAdvance` is set: then each backoff moves time forward by its own length at once (waking
/// any timeout it passes), which is how retry tests run instantly.
public final class ManualClock: GatewayClock {
    private struct Sleeper {
        let id: Int
        let deadline: Duration
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Duration = .zero
        var nextID = 0
        var sleepers: [Sleeper] = []
        var sleeps: [Duration] = []
        /// Sleeps cancelled before they were registered.
        var cancelledEarly: Set<Int> = []
    }

    private let state = NIOLockedValueBox(State())
    public let autoAdvance: Bool

    public init(autoAdvance: Bool = false) {
        self.autoAdvance = autoAdvance
    }

    /// Every backoff wait, in order (timeout sleeps are not listed).
    public var sleeps: [Duration] { state.withLockedValue { $0.sleeps } }

    /// How many sleeps are waiting for time to pass.
    public var pendingSleeps: Int { state.withLockedValue { $0.sleepers.count } }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        if autoAdvance {
            state.withLockedValue { $0.sleeps.append(duration) }
            advance(by: duration)
            return
        }
        try await wait(duration, recorded: true)
    }

    public func sleepUntilTimeout(_ duration: Duration) async throws {
        try Task.checkCancellation()
        try await wait(duration, recorded: false)
    }

    private func wait(_ duration: Duration, recorded: Bool) async throws {
        let id = state.withLockedValue { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome { case wait, resume, cancel }
                let outcome: Outcome = state.withLockedValue { state in
                    if state.cancelledEarly.remove(id) != nil { return .cancel }
                    if recorded { state.sleeps.append(duration) }
                    if duration <= .zero { return .resume }
                    state.sleepers.append(Sleeper(id: id, deadline: state.now + duration, continuation: continuation))
                    return .wait
                }
                switch outcome {
                case .wait: break
                case .resume: continuation.resume()
                case .cancel: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let cancelled = state.withLockedValue { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else {
                    state.cancelledEarly.insert(id)
                    return nil
                }
                return state.sleepers.remove(at: index)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// How far time has moved since the clock was made.
    public var elapsed: Duration { state.withLockedValue { $0.now } }

    /// The instant `origin` plus ``elapsed``: a `ContinuousClock` reading that only moves when this clock
    /// is advanced, for code that takes a `now` function (``GatewayCall/init(context:finishedBy:now:)``).
    public func instant(from origin: ContinuousClock.Instant) -> ContinuousClock.Instant {
        origin + elapsed
    }

    /// Moves time forward, waking every sleep whose deadline has passed.
    public func advance(by duration: Duration) {
        let due = state.withLockedValue { state -> [Sleeper] in
            state.now += duration
            let due = state.sleepers.filter { $0.deadline <= state.now }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (yielding, not sleeping) until at least `count` sleeps are pending.
    public func waitForPendingSleeps(_ count: Int = 1) async {
        while pendingSleeps < count {
            await Task.yield()
        }
    }
}
