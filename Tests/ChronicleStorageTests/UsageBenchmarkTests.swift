import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

/// The usage API on a month of calls: `bench/usage.sh` runs it with 1,000,000 rows
/// (`CHRONICLE_USAGE_BENCH_ROWS`); the normal test run seeds 2,000, only to keep the bench working.
@Suite("Usage benchmark")
struct UsageBenchmarkTests {
    static let rows = ProcessInfo.processInfo.environment["CHRONICLE_USAGE_BENCH_ROWS"].flatMap(Int.init) ?? 2_000

    /// A team's gateway over 30 days: 8 models of 3 providers, 3 applications, 2 environments, 3 gateway keys,
    /// 500 users; latencies from 40 ms to about 40 s; every row written through the store's batch path,
    /// which keeps the hourly rollup.
    @Test func monthByModelPerDay() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let end = Date(timeIntervalSince1970: 1_780_000_000)
        let start = end.addingTimeInterval(-30 * 86_400)
        let models = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("openai", "o3"), ("anthropic", "claude-sonnet-4-5"),
                      ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-pro"), ("gemini", "gemini-2.5-flash"),
                      ("anthropic", "claude-opus-4-1")]
        var generator = SplitMix(seed: 42)
        let seedStart = ContinuousClock.now
        var batch: [StoredRecord] = []
        batch.reserveCapacity(1000)
        for index in 0..<Self.rows {
            let (provider, model) = models[Int(generator.next() % 8)]
            var row = EventRow(GenericEvent(id: .v7(), type: "chronicle_llm_request"),
                               now: start.addingTimeInterval(Double(index) * 30 * 86_400 / Double(Self.rows)))
            row.provider = provider
            row.model = model
            row.application = ["chat", "search", "agent"][Int(generator.next() % 3)]
            row.environment = generator.next() % 5 == 0 ? "staging" : "prod"
            row.gatewayKey = ["team-a", "team-b", "batch"][Int(generator.next() % 3)]
            row.requestUserID = "user-\(generator.next() % 500)"
            row.inputTokens = Int64(100 + generator.next() % 4000)
            row.outputTokens = Int64(10 + generator.next() % 800)
            row.cachedTokens = Int64(generator.next() % 100)
            row.httpStatus = generator.next() % 50 == 0 ? 500 : 200
            row.totalLatencyMs = Int64(40 * pow(1000, Double(generator.next() % 1000) / 1000))
            row.costUSD = Double(row.inputTokens ?? 0) * 2.5e-6 + Double(row.outputTokens ?? 0) * 1e-5
            batch.append(.event(row))
            if batch.count == 1000 {
                try await db.store.write(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try await db.store.write(batch) }
        let seeded = ContinuousClock.now - seedStart
        let reader = try #require(db.store as? any UsageReader)
        var query = UsageQuery(since: start, until: end)
        query.groupBy = [.model]
        query.interval = .day
        var timings: [Duration] = []
        var report: UsageReport?
        for _ in 0..<3 {
            let began = ContinuousClock.now
            report = try await reader.usage(query)
            timings.append(ContinuousClock.now - began)
        }
        var raw = query
        raw.readsRollup = false
        let rawBegan = ContinuousClock.now
        let rawReport = try await reader.usage(raw)
        let rawTime = ContinuousClock.now - rawBegan
        let rollupRows = try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_usage_hourly") ?? "?"
        print("usage bench: \(Self.rows) calls seeded in \(seeded) (\(rollupRows) rollup rows); 30-day group_by=model&interval=day: "
              + timings.map { "\($0.fractionalMilliseconds.rounded()) ms" }.joined(separator: ", ")
              + "; from the calls alone: \(rawTime.fractionalMilliseconds.rounded()) ms")
        #expect(report?.rows == rawReport.rows, "the rollup and the calls agree")
        #expect(report?.rows.reduce(0) { $0 + $1.requests } == Int64(Self.rows))
        await db.close()
    }
}

/// A small deterministic generator, so that every run seeds the same calls.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
