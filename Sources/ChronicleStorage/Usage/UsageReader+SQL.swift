import ChronicleCore
import Foundation

/// Usage queries in SQL, for both backends. Whole hours come from the hourly rollup when it keeps every
/// dimension asked for; the partial hours at either end of the range, and any query the rollup cannot
/// answer, come from the calls themselves. Both are added up per group, bucket and latency bucket in SQL,
/// and merged here, so each backend returns the same numbers either way.
extension TextRowFetcher {
    func selectUsage(_ query: UsageQuery) async throws -> UsageReport {
        guard query.since < query.until else { throw InvalidQuery("since must be before until") }
        var accumulator = UsageAccumulator(query: query)
        for part in UsagePlan.parts(query) {
            switch part.source {
            case .calls: try await addCalls(query, from: part.from, to: part.to, into: &accumulator)
            case .rollup(let rollup): try await addRollup(query, rollup, from: part.from, to: part.to, into: &accumulator)
            }
        }
        return UsageReport(query: query, rows: accumulator.rows())
    }

    /// The sums of the calls in `[from, to)` (Unix ms) per group, bucket and latency bucket.
    private func addCalls(_ query: UsageQuery, from: Int64, to: Int64, into accumulator: inout UsageAccumulator)
        async throws
    {
        var values: [SQLValue] = []
        func bind(_ value: SQLValue) -> String {
            values.append(value)
            return sqlDialect.placeholder(values.count, for: value)
        }
        var selected = query.groupBy.map { "CAST(\($0.column) AS text)" }
        if let interval = query.interval {
            selected.append("CAST(\(sqlDialect.millisecondsBucket("created_at", width: interval.milliseconds)) AS text)")
        }
        selected.append("CAST(\(LatencyHistogram.sqlBucket("total_latency_ms")) AS text)")
        let groupCount = selected.count
        selected += [
            "COUNT(*)", "SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END)", "SUM(input_tokens)",
            "SUM(output_tokens)", "SUM(cached_tokens)", "SUM(reasoning_tokens)", "SUM(cost_usd)", "COUNT(cost_usd)",
        ].map { "CAST(\($0) AS text)" }
        var conditions = ["event_type = 'chronicle_llm_request'",
                          "created_at >= \(bind(.time(Self.date(from))))", "created_at < \(bind(.time(Self.date(to))))"]
        for (column, value) in [("provider", query.provider), ("model", query.model),
                                ("application", query.application), ("environment", query.environment),
                                ("request_user_id", query.userID), ("gateway_key", query.gatewayKey)] {
            if let value { conditions.append("\(column) = \(bind(.text(value)))") }
        }
        if let runID = query.runID { conditions.append("run_id = \(bind(.uuid(runID)))") }
        if let name = query.name {
            let placeholder = bind(.text(name))
            conditions.append("(workflow_name = \(placeholder) OR run_id IN (SELECT id FROM chronicle_runs WHERE name = \(placeholder)))")
        }
        switch query.status {
        case nil: break
        case "error": conditions.append("http_status >= 400")
        case "success": conditions.append("http_status < 400")
        case let status?: throw InvalidQuery("status is \"success\" or \"error\", not \"\(status)\"")
        }
        let sql = Self.select(selected, groupCount: groupCount, from: "chronicle_events", where: conditions)
        for row in try await fetchText(sql, values) {
            let latencyBucket = row["c\(groupCount - 1)"].flatMap { Int($0) }
            accumulator.add(row, query: query, latencyBucket: latencyBucket)
        }
    }

    /// A rollup's sums for the whole periods in `[from, to)` per group and bucket.
    private func addRollup(_ query: UsageQuery, _ rollup: UsageRollup, from: Int64, to: Int64,
                           into accumulator: inout UsageAccumulator)
        async throws
    {
        var values: [SQLValue] = []
        func bind(_ value: SQLValue) -> String {
            values.append(value)
            return sqlDialect.placeholder(values.count, for: value)
        }
        var selected = query.groupBy.map { "CAST(\($0.column) AS text)" }
        if let interval = query.interval {
            selected.append("CAST(((period_start / \(interval.milliseconds)) * \(interval.milliseconds)) AS text)")
        }
        let groupCount = selected.count
        selected += (UsageRollup.sums + UsageRollup.latencyColumns).map { "CAST(SUM(\($0)) AS text)" }
        var conditions = ["period_start >= \(bind(.int(from)))", "period_start < \(bind(.int(to)))"]
        for (column, value) in [("provider", query.provider), ("model", query.model),
                                ("application", query.application), ("environment", query.environment),
                                ("gateway_key", query.gatewayKey)] {
            if let value { conditions.append("\(column) = \(bind(.text(value)))") }
        }
        let sql = Self.select(selected, groupCount: groupCount, from: rollup.table, where: conditions)
        let latencyStart = groupCount + UsageRollup.sums.count
        for row in try await fetchText(sql, values) {
            let histogram = (0..<LatencyHistogram.bucketCount).map { Int64(row["c\(latencyStart + $0)"] ?? "") ?? 0 }
            accumulator.add(row, query: query, histogram: histogram)
        }
    }

    /// `SELECT … AS c0, … FROM … WHERE … GROUP BY` the first `groupCount` columns.
    private static func select(_ selected: [String], groupCount: Int, from table: String, where conditions: [String])
        -> String
    {
        let list = selected.enumerated().map { "\($0.element) AS c\($0.offset)" }.joined(separator: ", ")
        var sql = "SELECT \(list) FROM \(table) WHERE " + conditions.joined(separator: " AND ")
        if groupCount > 0 { sql += " GROUP BY " + (1...groupCount).map(String.init).joined(separator: ", ") }
        return sql
    }

    private static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}

/// Where each part of a query's range is read from: whole days from the daily rollup (unless the buckets
/// are hours), whole hours from the hourly one, and the partial hours at either end from the calls.
enum UsagePlan {
    enum Source: Equatable {
        case calls
        case rollup(UsageRollup)

        static func == (a: Source, b: Source) -> Bool {
            switch (a, b) {
            case (.calls, .calls): return true
            case (.rollup(let x), .rollup(let y)): return x.table == y.table
            default: return false
            }
        }
    }

    struct Part: Equatable {
        var source: Source
        /// Unix milliseconds, `[from, to)`.
        var from: Int64
        var to: Int64
    }

    static func parts(_ query: UsageQuery) -> [Part] {
        let since = SQLValue.milliseconds(query.since)
        let until = SQLValue.milliseconds(query.until)
        guard query.canUseRollup else { return [Part(source: .calls, from: since, to: until)] }
        var parts: [Part] = []
        func add(_ source: Source, _ from: Int64, _ to: Int64) {
            if from < to { parts.append(Part(source: source, from: from, to: to)) }
        }
        let hour = UsageRollup.hourly.width
        let firstHour = (since + hour - 1).floorDiv(hour) * hour
        let lastHour = until.floorDiv(hour) * hour
        guard firstHour < lastHour else { return [Part(source: .calls, from: since, to: until)] }
        add(.calls, since, firstHour)
        let day = UsageRollup.daily.width
        let firstDay = (firstHour + day - 1).floorDiv(day) * day
        let lastDay = lastHour.floorDiv(day) * day
        if query.interval != .hour, firstDay < lastDay {
            add(.rollup(.hourly), firstHour, firstDay)
            add(.rollup(.daily), firstDay, lastDay)
            add(.rollup(.hourly), lastDay, lastHour)
        } else {
            add(.rollup(.hourly), firstHour, lastHour)
        }
        add(.calls, lastHour, until)
        return parts
    }
}

/// Adds up rows from the rollups and the calls per group and bucket.
struct UsageAccumulator {
    struct Key: Hashable {
        var group: [String?]
        var bucket: Int64?
    }

    let query: UsageQuery
    var figures: [Key: UsageFigures] = [:]

    init(query: UsageQuery) {
        self.query = query
    }

    /// The group and bucket of a row whose columns are `c0`, `c1`, …; the rollup's `''` is "none".
    private func key(_ row: [String: String]) -> Key {
        let group = query.groupBy.indices.map { index -> String? in
            guard let value = row["c\(index)"], !value.isEmpty else { return nil }
            return value
        }
        let bucket = query.interval == nil ? nil : row["c\(query.groupBy.count)"].flatMap { Int64($0) }
        return Key(group: group, bucket: bucket)
    }

    /// Adds the sums that follow the group columns (and, for calls, the latency bucket).
    private mutating func addSums(_ row: [String: String], first: Int, to key: Key) -> Int64 {
        func int(_ offset: Int) -> Int64 { row["c\(first + offset)"].flatMap { Int64($0) ?? Double($0).map { Int64($0) } } ?? 0 }
        var entry = figures[key, default: UsageFigures()]
        entry.requests += int(0)
        entry.errors += int(1)
        entry.inputTokens += int(2)
        entry.outputTokens += int(3)
        entry.cachedTokens += int(4)
        entry.reasoningTokens += int(5)
        entry.cost += row["c\(first + 6)"].flatMap { Double($0) } ?? 0
        entry.priced += int(7)
        figures[key] = entry
        return int(0)
    }

    mutating func add(_ row: [String: String], query: UsageQuery, latencyBucket: Int?) {
        let key = key(row)
        let first = query.groupBy.count + (query.interval == nil ? 0 : 1) + 1
        let requests = addSums(row, first: first, to: key)
        if let latencyBucket, latencyBucket >= 0, latencyBucket < LatencyHistogram.bucketCount {
            figures[key]?.latency[latencyBucket] += requests
        }
    }

    mutating func add(_ row: [String: String], query: UsageQuery, histogram: [Int64]) {
        let key = key(row)
        _ = addSums(row, first: query.groupBy.count + (query.interval == nil ? 0 : 1), to: key)
        for (index, count) in histogram.enumerated() { figures[key]?.latency[index] += count }
    }

    /// The rows, by bucket, then cost (highest first, unpriced last), then group.
    func rows() -> [UsageRow] {
        // An ungrouped sum over no rollup rows is one row of NULLs: it counts no call.
        let sorted = figures.filter { $0.value.requests > 0 }.sorted { a, b in
            if a.key.bucket != b.key.bucket { return (a.key.bucket ?? .min) < (b.key.bucket ?? .min) }
            let costA = a.value.priced > 0 ? Self.rounded(a.value.cost) : -1
            let costB = b.value.priced > 0 ? Self.rounded(b.value.cost) : -1
            if costA != costB { return costA > costB }
            if a.value.requests != b.value.requests { return a.value.requests > b.value.requests }
            return a.key.group.map { $0 ?? "" }.lexicographicallyPrecedes(b.key.group.map { $0 ?? "" })
        }
        return sorted.map { key, value in
            var group: [UsageQuery.Dimension: String?] = [:]
            for (index, dimension) in query.groupBy.enumerated() { group[dimension] = .some(key.group[index]) }
            return UsageRow(
                group: group, bucket: key.bucket.map { Date(timeIntervalSince1970: Double($0) / 1000) },
                requests: value.requests, errors: value.errors, inputTokens: value.inputTokens,
                outputTokens: value.outputTokens, cachedInputTokens: value.cachedTokens,
                reasoningTokens: value.reasoningTokens,
                costUSD: value.priced > 0 ? Self.rounded(value.cost) : nil,
                latencyP50Ms: LatencyHistogram.percentile(0.5, of: value.latency),
                latencyP95Ms: LatencyHistogram.percentile(0.95, of: value.latency))
        }
    }

    /// Dollars to a billionth, so that sums added in another order on another backend read the same.
    static func rounded(_ dollars: Double) -> Double { (dollars * 1e9).rounded() / 1e9 }
}

extension Int64 {
    /// Division rounding towards minus infinity.
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
