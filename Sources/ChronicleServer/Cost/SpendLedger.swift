import Foundation
import NIOConcurrencyHelpers

/// Dollars spent per budget window: in memory, so that checking a budget never waits on the database.
///
/// A counter is keyed by scope, subject and the window it belongs to (with the window's start), and moves
/// only by ``add(_:to:)``: deltas, so that counts from elsewhere (the database at start-up, another
/// replica) add up the same way as the calls this process finishes. Counters of windows that have ended
/// are dropped as time moves on.
public final class SpendLedger: Sendable {
    /// Who a budget is for.
    public enum Scope: String, Sendable, Hashable {
        case gatewayKey = "gateway_key"
        case user
    }

    /// One counter: a subject's spend in one window.
    public struct Key: Sendable, Hashable {
        public var scope: Scope
        /// The gateway key's name, or the user id.
        public var subject: String
        public var window: BudgetWindow
        /// The start of the window (UTC).
        public var windowStart: Date

        public init(scope: Scope, subject: String, window: BudgetWindow, windowStart: Date) {
            self.scope = scope
            self.subject = subject
            self.window = window
            self.windowStart = windowStart
        }
    }

    private struct State {
        var spend: [Key: Double] = [:]
        /// The latest window start seen per window kind: older counters are dropped when it moves.
        var current: [BudgetWindow: Date] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Adds `dollars` to a counter (a negative delta corrects one).
    public func add(_ dollars: Double, to key: Key) {
        guard dollars.isFinite, dollars != 0 else { return }
        state.withLockedValue { state in
            if let current = state.current[key.window], key.windowStart < current { return }
            if state.current[key.window] != key.windowStart {
                state.current[key.window] = key.windowStart
                state.spend = state.spend.filter { $0.key.window != key.window || $0.key.windowStart >= key.windowStart }
            }
            state.spend[key, default: 0] += dollars
        }
    }

    /// Raises a counter to `dollars` when it holds less (by adding the difference): how spend counted
    /// elsewhere, which already includes some of this counter's, is taken in without counting it twice.
    public func raise(_ key: Key, to dollars: Double) {
        let difference = dollars - spend(key)
        if difference > 0 { add(difference, to: key) }
    }

    /// What a counter holds; 0 for one never charged.
    public func spend(_ key: Key) -> Double {
        state.withLockedValue { $0.spend[key] ?? 0 }
    }

    /// Every counter, for reporting and for sharing with other replicas.
    public var counters: [Key: Double] { state.withLockedValue { $0.spend } }
}
