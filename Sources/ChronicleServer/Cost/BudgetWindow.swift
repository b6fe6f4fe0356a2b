import Foundation

/// A budget's calendar window, in UTC.
public enum BudgetWindow: String, Sendable, Hashable, CaseIterable {
    case day, month

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }()

    /// The start of the window that holds `date`.
    public func start(containing date: Date) -> Date {
        let components: Set<Calendar.Component> = self == .day ? [.year, .month, .day] : [.year, .month]
        return Self.calendar.date(from: Self.calendar.dateComponents(components, from: date)) ?? date
    }

    /// The end of the window that begins at `start` (the next window's start).
    public func end(startingAt start: Date) -> Date {
        Self.calendar.date(byAdding: self == .day ? .day : .month, value: 1, to: start)
            ?? start.addingTimeInterval(self == .day ? 86_400 : 2_678_400)
    }
}
