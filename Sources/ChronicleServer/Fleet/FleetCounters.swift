import ChronicleCore
import ChronicleStorage
import Foundation
import NIOConcurrencyHelpers

/// The counters behind fleet-wide limits: this replica's own, exact and current, and the other replicas',
/// as of the last exchange (``FleetCounterExchange``). Reads and writes take a lock and never the database,
/// so admission never waits on it.
///
/// Generic over what is counted: a kind, a subject (a gateway key's name) and a window (a calendar minute
/// for rates, 0 for gauges), so that other per-key quantities, such as a budget's spend, can be shared the
/// same way.
public final class FleetCounters: Sendable {
    /// What is counted.
    public struct Kind: Sendable, Hashable {
        public let name: String
        /// Whether the value is a current level (in flight) rather than a count within a window.
        public let isGauge: Bool

        public init(name: String, isGauge: Bool = false) {
            self.name = name
            self.isGauge = isGauge
        }

        public static let requests = Kind(name: "requests")
        public static let tokens = Kind(name: "tokens")
        public static let inFlight = Kind(name: "inflight", isGauge: true)
    }

    private struct State {
        var local: [CounterKey: Double] = [:]
        var others: [CounterKey: Double] = [:]
    }

    /// This replica's name in the counters table.
    public let instanceID: String
    /// The length of a rate window.
    public let window: Duration
    private let wallClock: @Sendable () -> Date
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - wallClock: the time that picks the current window; shared by all replicas, so a calendar clock.
    public init(instanceID: String, window: Duration = .seconds(60), wallClock: @escaping @Sendable () -> Date = { Date() }) {
        self.instanceID = instanceID
        self.window = window
        self.wallClock = wallClock
    }

    /// The start of the current window, in Unix milliseconds.
    public var currentWindow: Int64 {
        let length = window.milliseconds
        let now = Int64((wallClock().timeIntervalSince1970 * 1000).rounded(.down))
        return now - now % max(1, length)
    }

    func key(_ kind: Kind, subject: String) -> CounterKey {
        CounterKey(kind: kind.name, subject: subject, window: kind.isGauge ? 0 : currentWindow)
    }

    /// Counts `amount` for `subject` in the current window.
    public func add(_ amount: Double, _ kind: Kind, subject: String) {
        let key = key(kind, subject: subject)
        state.withLockedValue { $0.local[key, default: 0] += amount }
    }

    /// Sets this replica's current level of a gauge.
    public func setGauge(_ value: Double, _ kind: Kind, subject: String) {
        let key = key(kind, subject: subject)
        state.withLockedValue { $0.local[key] = value }
    }

    /// The fleet's total in the current window (or its level, for a gauge): this replica's count plus the others'.
    public func total(_ kind: Kind, subject: String) -> Double {
        let key = key(kind, subject: subject)
        return state.withLockedValue { ($0.local[key] ?? 0) + ($0.others[key] ?? 0) }
    }

    /// The other replicas' part of ``total(_:subject:)``, as of the last exchange.
    public func othersGauge(_ kind: Kind, subject: String) -> Double {
        let key = key(kind, subject: subject)
        return state.withLockedValue { $0.others[key] ?? 0 }
    }

    /// Why a key's next request would break a fleet-wide rate, if it would.
    func refusal(for key: GatewayKeyConfig) -> APIError? {
        let remaining = Duration.milliseconds(max(1, currentWindow + window.milliseconds
            - Int64((wallClock().timeIntervalSince1970 * 1000).rounded(.down))))
        if let limit = key.tokensPerMinute, total(.tokens, subject: key.name) >= Double(limit) {
            return AccessControl.limited(
                "Key \"\(key.name)\" used its \(limit) tokens per minute across the fleet", retryAfter: remaining)
        }
        if let limit = key.requestsPerMinute, total(.requests, subject: key.name) >= Double(limit) {
            return AccessControl.limited(
                "Key \"\(key.name)\" reached its \(limit) requests per minute across the fleet", retryAfter: remaining)
        }
        return nil
    }

    /// This replica's counts of the current and previous windows and its gauges: what it publishes.
    func published() -> [CounterKey: Double] {
        let oldest = currentWindow - window.milliseconds
        return state.withLockedValue { state in
            state.local = state.local.filter { $0.key.window == 0 || $0.key.window >= oldest }
            return state.local
        }
    }

    /// Takes the other replicas' totals from an exchange.
    func receive(_ others: [CounterKey: Double]) {
        state.withLockedValue { $0.others = others }
    }
}
