import ChronicleCore
import Foundation

/// A usage rollup the writer keeps beside `chronicle_events`: one row per period (an hour in
/// `chronicle_usage_hourly`, a day in `chronicle_usage_daily`), provider, model, application, environment
/// and gateway key, with counts, token and cost sums and a latency histogram (``LatencyHistogram``). The
/// usage API reads them instead of millions of calls: whole days from the daily table, the whole hours
/// around them from the hourly one. A missing dimension is stored as `''` (a key column cannot be NULL)
/// and read back as null.
struct UsageRollup: Sendable {
    /// The table's name.
    let table: String
    /// The period's length in milliseconds.
    let width: Int64

    static let hourly = UsageRollup(table: "chronicle_usage_hourly", width: 3_600_000)
    static let daily = UsageRollup(table: "chronicle_usage_daily", width: 86_400_000)
    static let all = [hourly, daily]

    /// The dimensions kept; grouping or filtering by anything else reads the calls themselves.
    static let dimensions = ["provider", "model", "application", "environment", "gateway_key"]
    static let sums = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
                       "cost_usd", "priced"]
    static var latencyColumns: [String] { (0..<LatencyHistogram.bucketCount).map { "lat_\($0)" } }
    static let callEventType = "chronicle_llm_request"

    /// The table, the same on both backends but for SQLite's clustering by key. `period_start` is the
    /// period's start in Unix milliseconds.
    func createTable(withoutRowID: Bool) -> String {
        let dimensions = Self.dimensions.map { "\($0) text NOT NULL" }.joined(separator: ", ")
        let counts = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"]
            .map { "\($0) bigint NOT NULL" }.joined(separator: ", ")
        let latency = Self.latencyColumns.map { "\($0) bigint NOT NULL DEFAULT 0" }.joined(separator: ", ")
        return """
            CREATE TABLE \(table) (period_start bigint NOT NULL, \(dimensions), \(counts),
              cost_usd double precision NOT NULL, priced bigint NOT NULL, \(latency),
              PRIMARY KEY (period_start, \(Self.dimensions.joined(separator: ", "))))\(withoutRowID ? " WITHOUT ROWID" : "")
            """
    }

    /// Fills the rollup from the calls already stored, in the dialect's arithmetic on `created_at`.
    func backfill(_ dialect: any SQLDialect) -> String {
        let dimensions = Self.dimensions.map { "COALESCE(\($0), '')" }.joined(separator: ", ")
        let bounds = LatencyHistogram.lowerBounds
        let latency = bounds.indices.map { index -> String in
            let upper = index + 1 < bounds.count ? " AND total_latency_ms < \(bounds[index + 1])" : ""
            return "SUM(CASE WHEN total_latency_ms >= \(bounds[index])\(upper) THEN 1 ELSE 0 END)"
        }.joined(separator: ", ")
        return """
            INSERT INTO \(table) (period_start, \(Self.dimensions.joined(separator: ", ")), \(Self.sums.joined(separator: ", ")),
              \(Self.latencyColumns.joined(separator: ", ")))
            SELECT \(dialect.millisecondsBucket("created_at", width: width)), \(dimensions), COUNT(*),
              SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END),
              COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cached_tokens), 0),
              COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), \(latency)
            FROM chronicle_events WHERE event_type = '\(Self.callEventType)'
            GROUP BY 1, 2, 3, 4, 5, 6
            """
    }

    struct Key: Hashable {
        var start: Int64
        var dimensions: [String]
    }

    /// The calls among `rows` whose ids (lowercase text) are in `insertedIDs`, each once.
    static func inserted(_ rows: [EventRow], ids: Set<String>) -> [EventRow] {
        var remaining = ids
        return rows.filter { $0.eventType == callEventType && remaining.remove($0.id.uuidString.lowercased()) != nil }
    }

    /// The calls among `rows` added up per rollup row.
    func deltas(_ rows: some Sequence<EventRow>) -> [Key: UsageFigures] {
        var deltas: [Key: UsageFigures] = [:]
        for row in rows where row.eventType == Self.callEventType {
            let start = SQLValue.milliseconds(row.createdAt).floorDiv(width) * width
            let key = Key(start: start, dimensions: [row.provider ?? "", row.model ?? "", row.application ?? "",
                                                     row.environment ?? "", row.gatewayKey ?? ""])
            deltas[key, default: UsageFigures()].add(row)
        }
        return deltas
    }

    /// The upserts adding the calls among `rows` stored now (`insertedIDs`) to every rollup: a replayed
    /// call was counted when first stored.
    static func upserts(_ rows: [EventRow], insertedIDs: Set<String>, dialect: any SQLDialect) -> [WorkflowStatement] {
        let calls = inserted(rows, ids: insertedIDs)
        guard !calls.isEmpty else { return [] }
        return all.compactMap { $0.upsert($0.deltas(calls), dialect: dialect) }
    }

    /// The upsert adding `deltas` to the rollup: the dimensions are bound, the figures (the gateway's own
    /// numbers) are written into the statement.
    func upsert(_ deltas: [Key: UsageFigures], dialect: any SQLDialect) -> WorkflowStatement? {
        guard !deltas.isEmpty else { return nil }
        var values: [SQLValue] = []
        var tuples: [String] = []
        for (key, delta) in deltas {
            var items = ["\(key.start)"]
            for dimension in key.dimensions {
                values.append(.text(dimension))
                items.append(dialect.placeholder(values.count, for: .text(dimension)))
            }
            items += [delta.requests, delta.errors, delta.inputTokens, delta.outputTokens, delta.cachedTokens,
                      delta.reasoningTokens].map { "\($0)" }
            items.append(delta.cost.isFinite ? "\(delta.cost)" : "0")
            items.append("\(delta.priced)")
            items += delta.latency.map { "\($0)" }
            tuples.append("(" + items.joined(separator: ", ") + ")")
        }
        let columns = ["period_start"] + Self.dimensions + Self.sums + Self.latencyColumns
        let updates = (Self.sums + Self.latencyColumns).map { "\($0) = \(table).\($0) + excluded.\($0)" }
            .joined(separator: ", ")
        let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
            + tuples.joined(separator: ", ")
            + " ON CONFLICT (period_start, \(Self.dimensions.joined(separator: ", "))) DO UPDATE SET \(updates)"
        return WorkflowStatement(sql: sql, values: values)
    }
}

/// What a set of calls adds up to: one rollup row's worth, or one row of a usage answer.
struct UsageFigures {
    var requests: Int64 = 0
    var errors: Int64 = 0
    var inputTokens: Int64 = 0
    var outputTokens: Int64 = 0
    var cachedTokens: Int64 = 0
    var reasoningTokens: Int64 = 0
    var cost: Double = 0
    var priced: Int64 = 0
    var latency = [Int64](repeating: 0, count: LatencyHistogram.bucketCount)

    mutating func add(_ row: EventRow) {
        requests += 1
        if (row.httpStatus ?? 200) >= 400 { errors += 1 }
        inputTokens += row.inputTokens ?? 0
        outputTokens += row.outputTokens ?? 0
        cachedTokens += row.cachedTokens ?? 0
        reasoningTokens += row.reasoningTokens ?? 0
        if let cost = row.costUSD {
            self.cost += cost
            priced += 1
        }
        if let ms = row.totalLatencyMs { latency[LatencyHistogram.bucket(ms)] += 1 }
    }
}
