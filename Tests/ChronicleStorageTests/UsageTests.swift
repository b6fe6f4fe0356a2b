import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

/// A start of hour, and calls around it whose sums are worked out by hand below.
enum UsageSeed {
    static let hour0 = Date(timeIntervalSince1970: 1_779_998_400)
    /// Priced at $1 input and $2 output per million; `m-b` has no price.
    static let prices = PriceTable().overriding([ModelPrice(provider: "openai", model: "m-a", inputPerMillion: 1,
                                                            outputPerMillion: 2)])
    /// Not on an hour: the first and last hours are partial, the middle one whole.
    static let since = hour0.addingTimeInterval(50)
    static let until = hour0.addingTimeInterval(7400)

    static func call(at seconds: Double, model: String, app: String, user: String, key: String, input: Int, output: Int,
                     cached: Int = 0, reasoning: Int = 0, latencyMs: Int64, status: Int = 200) -> CallLogRecord {
        var usage = Usage(promptTokens: input, completionTokens: output, totalTokens: input + output)
        if cached > 0 { usage.unknownFields["prompt_tokens_details"] = ["cached_tokens": .integer(Int64(cached))] }
        if reasoning > 0 { usage.unknownFields["completion_tokens_details"] = ["reasoning_tokens": .integer(Int64(reasoning))] }
        var options = RequestOptions(metadata: RequestMetadata(application: app, environment: "prod", userID: user))
        options.internalMetadata.gatewayKey = key
        return CallLogRecord(
            id: .v7(), timestamp: hour0.addingTimeInterval(seconds),
            request: .typed(ChatRequest(model: model, messages: [ChatMessage(role: "user", content: .text("hi"))])),
            options: options, provider: "openai", model: model,
            response: ChatResponse(id: "x", created: 1, model: model, usage: usage),
            totalLatency: .milliseconds(latencyMs), httpStatus: status)
    }

    static let calls: [CallLogRecord] = [
        call(at: 10, model: "m-a", app: "app1", user: "u1", key: "k1", input: 9, output: 9, latencyMs: 900),  // before since
        call(at: 100, model: "m-a", app: "app1", user: "u1", key: "k1", input: 100, output: 10, cached: 20, latencyMs: 3),
        call(at: 200, model: "m-a", app: "app1", user: "u2", key: "k1", input: 200, output: 20, reasoning: 5, latencyMs: 5),
        call(at: 3700, model: "m-a", app: "app2", user: "u1", key: "k2", input: 300, output: 30, latencyMs: 7, status: 500),
        call(at: 3800, model: "m-b", app: "app1", user: "u1", key: "k1", input: 50, output: 5, latencyMs: 2),
        call(at: 7300, model: "m-a", app: "app1", user: "u1", key: "k1", input: 1000, output: 100, latencyMs: 4),
        call(at: 7500, model: "m-a", app: "app1", user: "u1", key: "k1", input: 9, output: 9, latencyMs: 900),  // after until
    ]

    /// Writes the calls, one of them twice (a replay must not count twice).
    static func write(to store: any LogStore) async throws {
        let records = calls.map { StoredRecord(.call($0), prices: prices) }
        try await store.write(Array(records.prefix(4)))
        try await store.write(Array(records.dropFirst(3)))
    }
}

@Suite("Usage reports")
struct UsageTests {
    func query(_ groupBy: [UsageQuery.Dimension], interval: UsageQuery.Interval? = nil) -> UsageQuery {
        var query = UsageQuery(since: UsageSeed.since, until: UsageSeed.until)
        query.groupBy = groupBy
        query.interval = interval
        return query
    }

    func row(_ report: UsageReport, _ dimension: UsageQuery.Dimension, _ value: String?, bucket: Date? = nil) throws -> UsageRow {
        try #require(report.rows.first { ($0.group[dimension] ?? nil) == value && $0.bucket == bucket })
    }

    /// Per model over partial and whole hours: the hand-computed sums, on both backends, from the rollup
    /// and from the calls alike.
    @Test(arguments: Backend.available)
    func byModel(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        try await UsageSeed.write(to: db.store)
        let reader = try #require(db.store as? any UsageReader)
        var raw = query([.model])
        raw.readsRollup = false
        let report = try await reader.usage(query([.model]))
        #expect(report.rows == (try await reader.usage(raw)).rows, "the rollup and the calls agree")
        #expect(report.rows.map { $0.group[.model] ?? nil } == ["m-a", "m-b"], "priced first")
        let a = try row(report, .model, "m-a")
        #expect(a.requests == 4 && a.errors == 1)
        #expect(a.inputTokens == 1600 && a.outputTokens == 160 && a.cachedInputTokens == 20 && a.reasoningTokens == 5)
        let expected1: Double = (1600 * 1 + 160 * 2) / 1_000_000
        #expect(a.costUSD == expected1)
        // Latencies 3, 4, 5, 7 ms: nearest-rank p50 is the 2nd, p95 the 4th.
        #expect(a.latencyP50Ms == 4 && a.latencyP95Ms == 7)
        let b = try row(report, .model, "m-b")
        #expect(b.requests == 1 && b.inputTokens == 50 && b.costUSD == nil && b.latencyP50Ms == 2)
        await db.close()
    }

    /// Hourly buckets, sorted by bucket then cost.
    @Test(arguments: Backend.available)
    func hourly(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        try await UsageSeed.write(to: db.store)
        let reader = try #require(db.store as? any UsageReader)
        let report = try await reader.usage(query([.model], interval: .hour))
        let hour = { (n: Double) in UsageSeed.hour0.addingTimeInterval(n * 3600) }
        #expect(report.rows.map(\.bucket) == [hour(0), hour(1), hour(1), hour(2)])
        let first = try row(report, .model, "m-a", bucket: hour(0))
        let expected2: Double = 360 / 1_000_000
        #expect(first.requests == 2 && first.inputTokens == 300 && first.costUSD == expected2)
        #expect(first.latencyP50Ms == 3 && first.latencyP95Ms == 5)
        #expect(try row(report, .model, "m-a", bucket: hour(1)).errors == 1)
        #expect(try row(report, .model, "m-b", bucket: hour(1)).costUSD == nil)
        #expect(try row(report, .model, "m-a", bucket: hour(2)).costUSD == 1200 / 1_000_000)
        let json = report.json
        #expect(json["interval"] == "hour" && json["group_by"] == ["model"])
        let firstJSON = try #require(json["rows"]?.arrayValue?.first)
        #expect(firstJSON["bucket"] == .string(RFC3339.format(hour(0))))
        #expect(firstJSON["cached_input_tokens"] == 20)
        await db.close()
    }

    /// Per user and per key, and filters: users are read from the calls; keys from the rollup.
    @Test(arguments: Backend.available)
    func byUserAndKeyAndFilters(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        try await UsageSeed.write(to: db.store)
        let reader = try #require(db.store as? any UsageReader)
        let users = try await reader.usage(query([.userID]))
        #expect(try row(users, .userID, "u1").requests == 4 && (try row(users, .userID, "u2")).requests == 1)
        let keys = try await reader.usage(query([.gatewayKey, .application]))
        #expect(keys.rows.count == 2, "k1 only in app1, k2 only in app2")
        var app1 = query([.gatewayKey])
        app1.application = "app1"
        let k1 = try row(try await reader.usage(app1), .gatewayKey, "k1")
        let expected3: Double = (1300 * 1 + 130 * 2) / 1_000_000
        #expect(k1.requests == 4 && k1.inputTokens == 1350 && k1.costUSD == expected3)
        var empty = query([])
        empty.since = UsageSeed.hour0.addingTimeInterval(-30 * 86_400)
        empty.until = UsageSeed.hour0.addingTimeInterval(-86_400)
        #expect(try await reader.usage(empty).rows.isEmpty, "no calls, no rows, even from the rollups")
        var errors = query([])
        errors.status = "error"
        let failed = try await reader.usage(errors)
        #expect(failed.rows.count == 1 && failed.rows[0].requests == 1 && failed.rows[0].inputTokens == 300)
        await db.close()
    }

    /// Over days: whole days come from the daily rollup, the hours around them from the hourly one and the
    /// partial hours from the calls; the numbers are the calls' own, per day.
    @Test(arguments: Backend.available)
    func acrossDays(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let day: Double = 86_400
        // Every 5 hours and 7 minutes for 4 days, from 1 ms to 1,999 ms.
        let calls = (0..<19).map { index in
            UsageSeed.call(at: Double(index) * 18_420, model: index % 3 == 0 ? "m-b" : "m-a", app: "app1", user: "u1",
                           key: "k1", input: 10 * index, output: index, latencyMs: Int64(1 + index * 111))
        }
        try await db.store.write(calls.map { StoredRecord(.call($0), prices: UsageSeed.prices) })
        var query = UsageQuery(since: UsageSeed.hour0.addingTimeInterval(1800), until: UsageSeed.hour0.addingTimeInterval(3 * day + 600))
        query.groupBy = [.model]
        query.interval = .day
        let plan = UsagePlan.parts(query).map(\.source)
        #expect(plan == [.calls, .rollup(.hourly), .rollup(.daily), .rollup(.hourly), .calls])
        var raw = query
        raw.readsRollup = false
        let reader = try #require(db.store as? any UsageReader)
        let report = try await reader.usage(query)
        #expect(report.rows == (try await reader.usage(raw)).rows)
        #expect(report.rows.reduce(0) { $0 + $1.requests } == 14, "calls 1 to 14 are in the range")
        #expect(Set(report.rows.compactMap(\.bucket)).count == 3)
        var none = query
        none.interval = nil
        let whole = try await reader.usage(none)
        #expect(whole.rows.first?.latencyP95Ms == (try await reader.usage({ var q = none; q.readsRollup = false; return q }())).rows.first?.latencyP95Ms)
        await db.close()
    }
}
