import ChronicleCore
import ChronicleStorage
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers

/// The budgets of gateway keys and end users, checked before a call goes upstream against the spend
/// counted in memory (``SpendLedger``), and charged as calls finish.
///
/// A request over any of its budgets is refused with 429 `budget_exceeded` and `Retry-After` set to the end
/// of the window. A call already in flight is allowed to finish, so spend can pass a limit by what the
/// calls in flight at that moment cost.
public final class Budgets: Sendable {
    /// One budget's state, as `GET /v1/budgets` shows it.
    public struct Status: Sendable, Hashable {
        public var name: String
        public var scope: SpendLedger.Scope
        public var subject: String
        public var window: BudgetWindow
        public var limitUSD: Double
        public var spendUSD: Double
        public var resetsAt: Date
    }

    /// The gateway keys' budgets: replaced when the keys are (a reload, an admin change).
    public var keyLimits: [String: BudgetLimits] { keyLimitsBox.withLockedValue { $0 } }
    private let keyLimitsBox: NIOLockedValueBox<[String: BudgetLimits]>
    public let userLimits: [String: BudgetLimits]
    /// For users without a budget of their own.
    public let defaultUserLimits: BudgetLimits?
    public let ledger: SpendLedger
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - now: the wall clock that places spend in windows; tests pass a manual one.
    public init(keyLimits: [String: BudgetLimits] = [:], userLimits: [String: BudgetLimits] = [:],
                defaultUserLimits: BudgetLimits? = nil, ledger: SpendLedger = SpendLedger(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.keyLimitsBox = NIOLockedValueBox(keyLimits.filter { !$0.value.isEmpty })
        self.userLimits = userLimits.filter { !$0.value.isEmpty }
        self.defaultUserLimits = defaultUserLimits.flatMap { $0.isEmpty ? nil : $0 }
        self.ledger = ledger
        self.now = now
    }

    /// The budgets of the gateway keys in `security` and the `[[budgets]]` of `settings`.
    public convenience init(security: SecuritySettings, settings: CostSettings, ledger: SpendLedger = SpendLedger(),
                            now: @escaping @Sendable () -> Date = { Date() }) {
        self.init(keyLimits: Self.limits(of: security.gatewayKeys), userLimits: settings.userBudgets, defaultUserLimits: settings.defaultUserBudget,
                  ledger: ledger, now: now)
    }

    private static func limits(of keys: [GatewayKeyConfig]) -> [String: BudgetLimits] {
        var limits: [String: BudgetLimits] = [:]
        for key in keys {
            limits[key.name] = BudgetLimits(perDay: key.maxCostUSDPerDay, perMonth: key.maxCostUSDPerMonth)
        }
        return limits
    }

    /// Puts the budgets of `keys` in force in place of the keys' budgets before: the gateway keys in force
    /// changed (a reload of the files or the database, an admin change). Spend counted so far is kept.
    public func replaceKeyLimits(with keys: [GatewayKeyConfig]) {
        let limits = Self.limits(of: keys).filter { !$0.value.isEmpty }
        keyLimitsBox.withLockedValue { $0 = limits }
    }

    /// Whether any budget is configured.
    public var isEmpty: Bool { keyLimits.isEmpty && userLimits.isEmpty && defaultUserLimits == nil }

    private func limits(_ scope: SpendLedger.Scope, _ subject: String) -> BudgetLimits? {
        switch scope {
        case .gatewayKey: return keyLimits[subject]
        case .user: return userLimits[subject] ?? defaultUserLimits
        }
    }

    private static func subjects(gatewayKey: String?, userID: String?) -> [(SpendLedger.Scope, String)] {
        var subjects: [(SpendLedger.Scope, String)] = []
        if let gatewayKey { subjects.append((.gatewayKey, gatewayKey)) }
        if let userID, !userID.isEmpty { subjects.append((.user, userID)) }
        return subjects
    }

    static func name(_ scope: SpendLedger.Scope, _ subject: String, _ window: BudgetWindow) -> String {
        "\(scope.rawValue):\(subject):\(window.rawValue)"
    }

    /// Refuses a request whose key or user has spent a budget.
    /// - Throws: ``APIError`` 429 `budget_exceeded` naming the budget, with `Retry-After` the seconds until
    ///   the last of the spent windows ends.
    public func check(gatewayKey: String?, userID: String?) throws(APIError) {
        guard !isEmpty else { return }
        let instant = now()
        var spent: [Status] = []
        for (scope, subject) in Self.subjects(gatewayKey: gatewayKey, userID: userID) {
            guard let limits = limits(scope, subject) else { continue }
            for window in BudgetWindow.allCases {
                guard let limit = limits.limit(window) else { continue }
                let start = window.start(containing: instant)
                let spend = ledger.spend(.init(scope: scope, subject: subject, window: window, windowStart: start))
                if spend >= limit {
                    spent.append(Status(name: Self.name(scope, subject, window), scope: scope, subject: subject,
                                        window: window, limitUSD: limit, spendUSD: spend,
                                        resetsAt: window.end(startingAt: start)))
                }
            }
        }
        guard let latest = spent.max(by: { $0.resetsAt < $1.resetsAt }) else { return }
        let seconds = max(1, Int(latest.resetsAt.timeIntervalSince(instant).rounded(.up)))
        let message = spent.map { budget in
            "budget \(budget.name) is spent ($\(Self.dollars(budget.spendUSD)) of $\(Self.dollars(budget.limitUSD))) until \(RFC3339.format(budget.resetsAt))"
        }.joined(separator: "; ")
        throw APIError(status: 429, kind: "budget_exceeded", message: "Refused: " + message,
                       headers: [.retryAfter: String(seconds)])
    }

    /// Charges a finished call's cost to the budgets of its key and user, in the windows of now.
    public func charge(_ dollars: Double, gatewayKey: String?, userID: String?) {
        guard !isEmpty, dollars > 0 else { return }
        let instant = now()
        for (scope, subject) in Self.subjects(gatewayKey: gatewayKey, userID: userID) {
            guard let limits = limits(scope, subject) else { continue }
            for window in BudgetWindow.allCases where limits.limit(window) != nil {
                ledger.add(dollars, to: .init(scope: scope, subject: subject, window: window,
                                              windowStart: window.start(containing: instant)))
            }
        }
    }

    /// Adds the spend the database holds for the current windows, so that budgets survive a restart. Run
    /// once at start-up, before serving.
    public func load(from reader: any UsageReader) async throws {
        for (key, dollars) in try await databaseSpend(from: reader, users: true) { ledger.add(dollars, to: key) }
    }

    /// Raises the gateway keys' counters to the spend the database holds, when it holds more: what the other
    /// replicas on the same database spent (and this one's calls stored since the last look). Read from the
    /// usage rollups, so it stays cheap at any volume; users' budgets (read from the calls) are left to
    /// each replica's own count.
    public func refreshKeySpend(from reader: any UsageReader) async throws {
        for (key, dollars) in try await databaseSpend(from: reader, users: false) { ledger.raise(key, to: dollars) }
    }

    /// The spend the database holds in the current windows, per budget that is configured.
    private func databaseSpend(from reader: any UsageReader, users: Bool) async throws -> [(SpendLedger.Key, Double)] {
        guard !isEmpty else { return [] }
        let instant = now()
        var spend: [(SpendLedger.Key, Double)] = []
        for window in BudgetWindow.allCases {
            let start = window.start(containing: instant)
            var scopes: [(SpendLedger.Scope, UsageQuery.Dimension)] = []
            if !keyLimits.isEmpty { scopes.append((.gatewayKey, .gatewayKey)) }
            // Users are read from the calls themselves (the rollups do not keep them): only when a user has a budget.
            if users, !userLimits.isEmpty || defaultUserLimits != nil { scopes.append((.user, .userID)) }
            for (scope, dimension) in scopes {
                var query = UsageQuery(since: start, until: max(instant, start.addingTimeInterval(0.001)))
                query.groupBy = [dimension]
                for row in try await reader.usage(query).rows {
                    guard let subject = row.group[dimension] ?? nil, let cost = row.costUSD,
                          limits(scope, subject)?.limit(window) != nil else { continue }
                    spend.append((.init(scope: scope, subject: subject, window: window, windowStart: start), cost))
                }
            }
        }
        return spend
    }

    /// Every configured budget with its spend, and the default user budget of each user who spent in the
    /// current windows.
    public func statuses() -> [Status] {
        let instant = now()
        var result: [Status] = []
        func add(_ scope: SpendLedger.Scope, _ subject: String, _ limits: BudgetLimits) {
            for window in BudgetWindow.allCases {
                guard let limit = limits.limit(window) else { continue }
                let start = window.start(containing: instant)
                result.append(Status(
                    name: Self.name(scope, subject, window), scope: scope, subject: subject, window: window,
                    limitUSD: limit,
                    spendUSD: ledger.spend(.init(scope: scope, subject: subject, window: window, windowStart: start)),
                    resetsAt: window.end(startingAt: start)))
            }
        }
        for (name, limits) in keyLimits.sorted(by: { $0.key < $1.key }) { add(.gatewayKey, name, limits) }
        for (user, limits) in userLimits.sorted(by: { $0.key < $1.key }) { add(.user, user, limits) }
        if let defaultUserLimits {
            let counted = Set(ledger.counters.keys.filter { $0.scope == .user && userLimits[$0.subject] == nil }.map(\.subject))
            for user in counted.sorted() { add(.user, user, defaultUserLimits) }
        }
        return result
    }

    /// The JSON of `GET /v1/budgets`.
    public func json() -> JSONValue {
        ["budgets": .array(statuses().map { status in
            [
                "name": .string(status.name), "scope": .string(status.scope.rawValue),
                "subject": .string(status.subject), "window": .string(status.window.rawValue),
                "limit_usd": .double(status.limitUSD), "spend_usd": .double(AmountFormat.rounded(status.spendUSD)),
                "resets_at": .string(RFC3339.format(status.resetsAt)),
            ]
        })]
    }

    static func dollars(_ value: Double) -> String { String(format: "%.4f", value) }
}
