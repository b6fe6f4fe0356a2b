import ChronicleClient
import ChronicleTesting
import Foundation
import Logging

/// The gateway tests' manual clock as the client's delivery clock: backoff waits only end when a test
/// advances it.
struct ManualDeliveryClock: DeliveryClock {
    let manual: ManualClock

    func sleep(for duration: Duration) async throws {
        try await manual.sleep(for: duration)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String { "the tool broke" }
}

extension ChronicleClient.Configuration {
    /// Quiet logs; real time unless a manual clock is given.
    static func testing(clock: ManualClock? = nil, capacity: Int = 10_000, batchSize: Int = 200)
        -> ChronicleClient.Configuration
    {
        var logger = Logger(label: "client-test")
        logger.logLevel = .critical
        return ChronicleClient.Configuration(
            metadata: CallMetadata(application: "tests", environment: "ci"),
            eventBufferCapacity: capacity, eventBatchSize: batchSize,
            initialEventRetryBackoff: .seconds(1), maxEventRetryBackoff: .seconds(8),
            clock: clock.map { ManualDeliveryClock(manual: $0) } ?? ContinuousDeliveryClock(), logger: logger)
    }
}

/// Drives delivery to the end against a gateway that is (back) up: each pending backoff wait is ended by
/// advancing the manual clock, and delivery's own I/O is awaited, for at most ten seconds of real time.
func deliverAll(_ client: ChronicleClient, clock: ManualClock) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while client.eventStatistics.pending > 0, ContinuousClock.now < deadline {
        if clock.pendingSleeps > 0 { clock.advance(by: .seconds(8)) }
        // Waiting for the delivery's socket I/O, not for a backoff.
        try await Task.sleep(for: .milliseconds(5))
    }
    return client.eventStatistics.pending == 0
}

/// A JSON value with the members that differ between two recordings of the same work removed: ids, times
/// and latencies.
func withoutVaryingMembers(_ value: JSONValue) -> JSONValue {
    let varying: Set<String> = [
        "id", "run_id", "step_id", "parent_step", "created_at", "updated_at", "start_time", "end_time",
        "request_latency_ms", "total_latency_ms", "overhead_ms", "meta",
    ]
    switch value {
    case .object(let members):
        var kept: [String: JSONValue] = [:]
        for (key, member) in members where !varying.contains(key) { kept[key] = withoutVaryingMembers(member) }
        return .object(kept)
    case .array(let elements):
        return .array(elements.map(withoutVaryingMembers))
    default:
        return value
    }
}

extension JSONValue {
    var arrayValue: [JSONValue] {
        if case .array(let elements) = self { return elements }
        return []
    }
}

func decodeJSON(_ data: Data?) throws -> JSONValue? {
    try data.map { try JSONDecoder().decode(JSONValue.self, from: $0) }
}
