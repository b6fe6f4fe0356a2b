import Foundation

/// Spending limits in US dollars per calendar day and month (UTC); nil for no limit.
public struct BudgetLimits: Sendable, Hashable {
    public var perDay: Double?
    public var perMonth: Double?

    public init(perDay: Double? = nil, perMonth: Double? = nil) {
        self.perDay = perDay
        self.perMonth = perMonth
    }

    public var isEmpty: Bool { perDay == nil && perMonth == nil }

    func limit(_ window: BudgetWindow) -> Double? { window == .day ? perDay : perMonth }
}
