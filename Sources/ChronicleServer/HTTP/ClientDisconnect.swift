import NIOConcurrencyHelpers
import NIOCore

/// Hummingbird does not cancel a handler when its client goes away; only a write would notice. An
/// upstream that is thinking silently (a long non-streamed answer, a reasoning model before its first
/// token) would then run to the end, and be paid for, after the client left. ``cancelling(on:_:)`` ties
/// the upstream work to the connection: when the client disconnects, the work is cancelled.
///
/// ``ConnectionGuardHandler`` reports disconnects (end of input or channel closed) to the connection's
/// ``ConnectionWatch``, found through a registry keyed by channel, so that waiting costs no allocation
/// that outlives the request.
enum ClientDisconnect {
    struct Disconnected: Error {}

    private static let watches = NIOLockedValueBox<[ObjectIdentifier: ConnectionWatch]>([:])

    static func register(_ watch: ConnectionWatch, for channel: any Channel) {
        watches.withLockedValue { $0[ObjectIdentifier(channel)] = watch }
    }

    static func unregister(_ channel: any Channel) {
        _ = watches.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// The connection's watch; an already-fired one when the connection is gone, nil when the pipeline
    /// has no ``ConnectionGuardHandler``.
    static func watch(for channel: any Channel) -> ConnectionWatch? {
        if let watch = watches.withLockedValue({ $0[ObjectIdentifier(channel)] }) { return watch }
        guard !channel.isActive else { return nil }
        let gone = ConnectionWatch()
        gone.disconnected()
        return gone
    }

    /// Runs `operation`, cancelling it and throwing ``Disconnected`` if the client disconnects first.
    static func cancelling<T: Sendable>(on channel: (any Channel)?, _ operation: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        guard let channel, let watch = watch(for: channel) else { return try await operation() }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                await watch.waitForDisconnect()
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw Disconnected()
            }
            return value
        }
    }
}

/// One connection's disconnect signal. Waiters are removed when they stop waiting, so a keep-alive
/// connection serving many requests holds nothing per past request.
final class ConnectionWatch: Sendable {
    private struct State {
        var disconnected = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Run once on disconnect: cheaper than a task waiting, and run even if no task ever waits.
        var actions: [Int: @Sendable () -> Void] = [:]
        var nextID = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Returns when the client disconnects or the task is cancelled, whichever is first.
    func waitForDisconnect() async {
        let id = state.withLockedValue { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if state.disconnected || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Runs `action` when the client disconnects — at once if it already has — unless
    /// ``removeAction(_:)`` comes first. Returns the id to remove it with (-1 when it already ran).
    @discardableResult
    func onDisconnect(_ action: @escaping @Sendable () -> Void) -> Int {
        let id = state.withLockedValue { state -> Int? in
            if state.disconnected { return nil }
            defer { state.nextID += 1 }
            state.actions[state.nextID] = action
            return state.nextID
        }
        guard let id else {
            action()
            return -1
        }
        return id
    }

    /// Forgets an action that is no longer needed (the response ended first).
    func removeAction(_ id: Int) {
        _ = state.withLockedValue { $0.actions.removeValue(forKey: id) }
    }

    func disconnected() {
        let (waiters, actions) = state.withLockedValue { state in
            state.disconnected = true
            defer {
                state.waiters = [:]
                state.actions = [:]
            }
            return (Array(state.waiters.values), Array(state.actions.values))
        }
        for waiter in waiters { waiter.resume() }
        for action in actions { action() }
    }
}
