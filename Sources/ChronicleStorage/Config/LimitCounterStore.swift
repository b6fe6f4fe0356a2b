import ChronicleCore
import Foundation

/// One counter replicas share: what is counted (`kind`, such as `requests`, `tokens`, `inflight` or a
/// budget's spend), whose it is (`subject`, a gateway key's name) and in which window (the window's start in
/// Unix milliseconds). Window 0 marks a gauge: a current value (requests in flight), not a count in a window.
public struct CounterKey: Sendable, Hashable, CustomStringConvertible {
    public var kind: String
    public var subject: String
    public var window: Int64

    public init(kind: String, subject: String, window: Int64) {
        self.kind = kind
        self.subject = subject
        self.window = window
    }

    public var description: String { "\(kind)/\(subject)/\(window)" }
}

/// Where replicas exchange their counters (`chronicle_limit_counters`). Each replica stores its own values,
/// absolute rather than as deltas, so that a retried exchange never counts twice, and reads back the sum of
/// everyone else's.
public protocol LimitCounterStore: Sendable {
    /// Stores `values` as this replica's and returns the other replicas' totals: counts of windows starting at
    /// or after `since`, and gauges written at or after `freshAfter` (a replica that stopped writing its
    /// gauges, because it crashed, stops counting).
    func exchangeCounters(instanceID: String, values: [CounterKey: Double], since: Int64, freshAfter: Date,
                          now: Date) async throws -> [CounterKey: Double]
    /// Deletes the counts of windows that started before `window`.
    func deleteCounters(before window: Int64) async throws
}

extension SQLiteLogStore: LimitCounterStore {}
extension PostgresLogStore: LimitCounterStore {}

extension ConfigTableDatabase {
    public func exchangeCounters(instanceID: String, values: [CounterKey: Double], since: Int64, freshAfter: Date,
                                 now: Date) async throws -> [CounterKey: Double]
    {
        let updatedAt = SQLValue.milliseconds(now)
        var statements: [WorkflowStatement] = []
        // Chunks of 100 rows stay far below either backend's limit on bound values.
        let entries = values.sorted { $0.key.description < $1.key.description }
        for start in stride(from: 0, to: entries.count, by: 100) {
            var tuples: [String] = []
            var binds: [SQLValue] = []
            for (key, value) in entries[start..<min(start + 100, entries.count)] {
                let base = binds.count
                tuples.append("(" + (1...6).map { "?\(base + $0)" }.joined(separator: ", ") + ")")
                binds += [.text(key.kind), .text(key.subject), .int(key.window), .text(instanceID), .double(value),
                          .int(updatedAt)]
            }
            statements.append(statement("""
                INSERT INTO chronicle_limit_counters (kind, subject, window_start, instance_id, value, updated_at)
                VALUES \(tuples.joined(separator: ", "))
                ON CONFLICT (kind, subject, window_start, instance_id)
                DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """, binds))
        }
        if !statements.isEmpty { try await execute(inTransaction: statements) }
        var totals: [CounterKey: Double] = [:]
        for row in try await rows("""
            SELECT kind, subject, CAST(window_start AS text) AS window_start, CAST(SUM(value) AS text) AS total
            FROM chronicle_limit_counters
            WHERE instance_id <> ?1 AND ((window_start >= ?2) OR (window_start = 0 AND updated_at >= ?3))
            GROUP BY kind, subject, window_start
            """, [.text(instanceID), .int(since), .int(SQLValue.milliseconds(freshAfter))]) {
            guard let kind = row["kind"], let subject = row["subject"],
                  let window = row["window_start"].flatMap({ Int64($0) }),
                  let total = row["total"].flatMap({ Double($0) }) else { continue }
            totals[CounterKey(kind: kind, subject: subject, window: window)] = total
        }
        return totals
    }

    public func deleteCounters(before window: Int64) async throws {
        try await execute(inTransaction: [statement(
            "DELETE FROM chronicle_limit_counters WHERE window_start > 0 AND window_start < ?1", [.int(window)])])
    }
}
