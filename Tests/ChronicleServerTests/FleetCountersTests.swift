import ChronicleCore
@testable import ChronicleServer
import ChronicleStorage
import Foundation
import HTTPTypes
import Testing

/// Fleet-wide limits decided from counters alone: two replicas' access controls, with the exchange done by
/// hand (each receives the other's published counts), so every outcome is exact.
@Suite("Fleet counters")
struct FleetCountersTests {
    static let minute = Date(timeIntervalSince1970: 1_800_000_000)

    func replica(_ id: String, _ key: GatewayKeyConfig) -> AccessControl {
        var settings = SecuritySettings()
        settings.gatewayKeys = [key]
        return AccessControl(settings: settings, fleet: FleetCounters(instanceID: id, wallClock: { Self.minute }))
    }

    func exchange(_ replicas: [AccessControl]) throws {
        for replica in replicas {
            var others: [CounterKey: Double] = [:]
            for other in replicas where other !== replica {
                for (key, value) in try #require(other.fleet).published() { others[key, default: 0] += value }
            }
            try #require(replica.fleet).receive(others)
        }
    }

    let headers: HTTPFields = [.authorization: "Bearer team-key"]

    /// Tokens charged on one replica count against the key on the other once exchanged.
    @Test func tokensPerMinuteHoldAcrossReplicas() throws {
        let key = GatewayKeyConfig(name: "team", key: "team-key", tokensPerMinute: 100)
        let a = replica("a", key), b = replica("b", key)
        a.release(try a.admit(headers))
        a.charge(tokens: 80, keyName: "team")
        b.release(try b.admit(headers))
        b.charge(tokens: 30, keyName: "team")
        #expect(throws: Never.self) { b.release(try b.admit(headers)) }
        try exchange([a, b])
        #expect(throws: APIError.self, "80 + 30 tokens are over the fleet's 100") { try b.admit(headers) }
        #expect(throws: APIError.self) { try a.admit(headers) }
    }

    /// Requests in flight on one replica count against the key's concurrency on the other.
    @Test func concurrencyHoldsAcrossReplicas() throws {
        let key = GatewayKeyConfig(name: "team", key: "team-key", maxConcurrentRequests: 2)
        let a = replica("a", key), b = replica("b", key)
        let first = try a.admit(headers)
        let second = try a.admit(headers)
        try exchange([a, b])
        #expect(throws: APIError.self, "two in flight on a") { try b.admit(headers) }
        a.release(first)
        a.release(second)
        try exchange([a, b])
        let third = try b.admit(headers)
        b.release(third)
    }

    /// Requests per minute: the fleet stops at the limit once counts are exchanged; before an exchange a
    /// replica sees only what it was last told.
    @Test func requestsPerMinuteHoldAcrossReplicas() throws {
        let key = GatewayKeyConfig(name: "team", key: "team-key", requestsPerMinute: 4)
        let a = replica("a", key), b = replica("b", key)
        for _ in 0..<3 { a.release(try a.admit(headers)) }
        try exchange([a, b])
        b.release(try b.admit(headers))
        #expect(throws: APIError.self) { try b.admit(headers) }
        // a has not heard of b's request yet: one request over, the bound's staleness term.
        #expect(throws: Never.self) { a.release(try a.admit(headers)) }
        try exchange([a, b])
        #expect(throws: APIError.self) { try a.admit(headers) }
    }
}
