import ChronicleCore
import Foundation

/// What `GET /v1/usage` and `chronicle usage` ask for: calls in `[since, until)`, filtered, added up per
/// group and time bucket.
public struct UsageQuery: Sendable, Equatable {
    /// What a row can be grouped by.
    public enum Dimension: String, Sendable, CaseIterable {
        case model, provider, application, environment
        case userID = "user_id"
        case gatewayKey = "gateway_key"
        case runID = "run_id"

        /// The `chronicle_events` column.
        var column: String {
            switch self {
            case .userID: return "request_user_id"
            default: return rawValue
            }
        }

        /// Whether the hourly rollup keeps it.
        var isRolledUp: Bool { UsageRollup.dimensions.contains(column) }
    }

    /// The time buckets rows are split into (UTC).
    public enum Interval: String, Sendable {
        case hour, day

        var milliseconds: Int64 { self == .hour ? 3_600_000 : 86_400_000 }
    }

    public var groupBy: [Dimension] = []
    /// nil for one bucket over the whole range.
    public var interval: Interval?
    public var since: Date
    public var until: Date
    public var provider: String?
    public var model: String?
    public var application: String?
    public var environment: String?
    public var userID: String?
    public var gatewayKey: String?
    public var runID: UUID?
    /// The workflow's or the run's name, as `/v1/calls` filters it.
    public var name: String?
    /// `success` or `error`.
    public var status: String?

    public init(since: Date, until: Date) {
        self.since = since
        self.until = until
    }

    /// Off to read every figure from the calls themselves (tests compare both ways).
    var readsRollup = true

    /// Whether the hourly rollup can answer: every group and filter is a dimension it keeps.
    var canUseRollup: Bool {
        readsRollup && groupBy.allSatisfy(\.isRolledUp) && userID == nil && runID == nil && name == nil && status == nil
    }
}

/// One group's figures in one time bucket.
public struct UsageRow: Sendable, Equatable {
    /// The value of each grouped dimension; nil when the calls had none.
    public var group: [UsageQuery.Dimension: String?]
    /// The bucket's start, or nil without an interval.
    public var bucket: Date?
    public var requests: Int64
    public var errors: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cachedInputTokens: Int64
    public var reasoningTokens: Int64
    /// nil when no call in the group had a price.
    public var costUSD: Double?
    public var latencyP50Ms: Double?
    public var latencyP95Ms: Double?
}

/// The answer to a ``UsageQuery``.
public struct UsageReport: Sendable, Equatable {
    public var query: UsageQuery
    /// Sorted by bucket, then cost (highest first, unpriced last).
    public var rows: [UsageRow]

    /// The JSON of `GET /v1/usage`.
    public var json: JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map(JSONValue.double) ?? .null }
        let rows = rows.map { row -> JSONValue in
            var group: [String: JSONValue] = [:]
            for dimension in query.groupBy {
                group[dimension.rawValue] = (row.group[dimension] ?? nil).map(JSONValue.string) ?? .null
            }
            return [
                "group": .object(group),
                "bucket": row.bucket.map { .string(RFC3339.format($0)) } ?? .null,
                "requests": .integer(row.requests), "errors": .integer(row.errors),
                "input_tokens": .integer(row.inputTokens), "output_tokens": .integer(row.outputTokens),
                "cached_input_tokens": .integer(row.cachedInputTokens),
                "reasoning_tokens": .integer(row.reasoningTokens),
                "cost_usd": number(row.costUSD),
                "latency_p50_ms": number(row.latencyP50Ms), "latency_p95_ms": number(row.latencyP95Ms),
            ]
        }
        return [
            "group_by": .array(query.groupBy.map { .string($0.rawValue) }),
            "interval": query.interval.map { .string($0.rawValue) } ?? .null,
            "since": .string(RFC3339.format(query.since)),
            "until": .string(RFC3339.format(query.until)),
            "rows": .array(rows),
        ]
    }
}

/// Answers usage queries; both stores are one.
public protocol UsageReader: Sendable {
    func usage(_ query: UsageQuery) async throws -> UsageReport
}

extension UsageQuery {
    /// A time as `since` and `until` take it: RFC 3339, Unix milliseconds, or a span before `now` (`90m`,
    /// `24h`, `7d`, `2w`); nil when it is none of those.
    public static func parseTime(_ text: String, now: Date) -> Date? {
        if let milliseconds = Int64(text) { return Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
        if let date = RFC3339.parse(text) { return date }
        guard let unit = text.last, let amount = Int(text.dropLast()), amount >= 0 else { return nil }
        let seconds: Double
        switch unit {
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86_400
        case "w": seconds = 604_800
        default: return nil
        }
        return now.addingTimeInterval(-Double(amount) * seconds)
    }

    /// Reads group and interval names (`model,provider`, `hour`); the error names what is wrong.
    public static func parseGroupBy(_ text: String) throws -> [Dimension] {
        var dimensions: [Dimension] = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let dimension = Dimension(rawValue: name) else {
                throw InvalidQuery("group_by: \"\(name)\" is not one of "
                    + Dimension.allCases.map(\.rawValue).joined(separator: ", "))
            }
            if !dimensions.contains(dimension) { dimensions.append(dimension) }
        }
        return dimensions
    }
}
