import ChronicleCore
import Foundation

/// The hourly usage rollup the writer keeps beside `chronicle_events` (`chronicle_usage_hourly`): one row
/// per hour, provider, model, application, environment and gateway key, with counts, token and cost sums
/// and a latency histogram (``LatencyHistogram``). The usage API reads it instead of millions of calls.
/// A missing dimension is stored as `''` (a key column cannot be NULL) and read back as null.
enum UsageRollup {
    static let table = "chronicle_usage_hourly"
    /// The dimensions kept; grouping or filtering by anything else reads the calls themselves.
    static let dimensions = ["provider", "model", "application", "environment", "gateway_key"]
    static let sums = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
                       "cost_usd", "priced"]
    static var latencyColumns: [String] { (0..<LatencyHistogram.bucketCount).map { "lat_\($0)" } }
    static let hourMilliseconds: Int64 = 3_600_000

    /// The table, the same on both backends but for SQLite's clustering by key.
    static func createTable(withoutRowID: Bool) -> String {
        let dimensions = Self.dimensions.map { "\($0) text NOT NULL" }.joined(separator: ", ")
        let counts = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"]
            .map { "\($0) bigint NOT NULL" }.joined(separator: ", ")
        let latency = latencyColumns.map { "\($0) bigint NOT NULL DEFAULT 0" }.joined(separator: ", ")
        return """
            CREATE TABLE \(table) (hour bigint NOT NULL, \(dimensions), \(counts),
              cost_usd double precision NOT NULL, priced bigint NOT NULL, \(latency),
              PRIMARY KEY (hour, \(Self.dimensions.joined(separator: ", "))))\(withoutRowID ? " WITHOUT ROWID" : "")
            """
    }

    /// Fills the rollup from the calls already stored; `hour` is the dialect's start-of-hour expression
    /// for `created_at` in Unix milliseconds.
    static func backfill(hour: String) -> String {
        let dimensions = Self.dimensions.map { "COALESCE(\($0), '')" }.joined(separator: ", ")
        let bounds = LatencyHistogram.lowerBounds
        let latency = bounds.indices.map { index -> String in
            let upper = index + 1 < bounds.count ? " AND total_latency_ms < \(bounds[index + 1])" : ""
            return "SUM(CASE WHEN total_latency_ms >= \(bounds[index])\(upper) THEN 1 ELSE 0 END)"
        }.joined(separator: ", ")
        return """
            INSERT INTO \(table) (hour, \(Self.dimensions.joined(separator: ", ")), \(sums.joined(separator: ", ")),
              \(latencyColumns.joined(separator: ", ")))
            SELECT \(hour), \(dimensions), COUNT(*), SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END),
              COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cached_tokens), 0),
              COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), \(latency)
            FROM chronicle_events WHERE event_type = 'chronicle_llm_request'
            GROUP BY 1, 2, 3, 4, 5, 6
            """
    }

    /// One rollup row's worth of calls.
    struct Delta {
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

    struct Key: Hashable {
        var hour: Int64
        var dimensions: [String]
    }

    static let callEventType = "chronicle_llm_request"

    /// The calls among `rows` whose ids (lowercase text) are in `insertedIDs`, each once, added up per
    /// rollup row.
    static func deltas(_ rows: [EventRow], insertedIDs: Set<String>) -> [Key: Delta] {
        var remaining = insertedIDs
        return deltas(rows.filter { remaining.remove($0.id.uuidString.lowercased()) != nil })
    }

    /// The calls among `rows` added up per rollup row.
    static func deltas(_ rows: some Sequence<EventRow>) -> [Key: Delta] {
        var deltas: [Key: Delta] = [:]
        for row in rows where row.eventType == callEventType {
            let ms = SQLValue.milliseconds(row.createdAt)
            let hour = (ms >= 0 ? ms / hourMilliseconds : (ms - hourMilliseconds + 1) / hourMilliseconds) * hourMilliseconds
            let key = Key(hour: hour, dimensions: [row.provider ?? "", row.model ?? "", row.application ?? "",
                                                   row.environment ?? "", row.gatewayKey ?? ""])
            deltas[key, default: Delta()].add(row)
        }
        return deltas
    }

    /// The upsert adding `deltas` to the rollup: the dimensions are bound, the figures (the gateway's own
    /// numbers) are written into the statement.
    static func upsert(_ deltas: [Key: Delta], dialect: any SQLDialect) -> WorkflowStatement? {
        guard !deltas.isEmpty else { return nil }
        var values: [SQLValue] = []
        var tuples: [String] = []
        for (key, delta) in deltas {
            var items = ["\(key.hour)"]
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
        let columns = ["hour"] + dimensions + sums + latencyColumns
        let updates = (sums + latencyColumns).map { "\($0) = \(table).\($0) + excluded.\($0)" }.joined(separator: ", ")
        let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
            + tuples.joined(separator: ", ")
            + " ON CONFLICT (hour, \(dimensions.joined(separator: ", "))) DO UPDATE SET \(updates)"
        return WorkflowStatement(sql: sql, values: values)
    }
}
