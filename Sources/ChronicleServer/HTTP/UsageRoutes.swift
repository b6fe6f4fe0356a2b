import ChronicleCore
import ChronicleStorage
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore

/// `GET /v1/usage` (spend and usage per group and time bucket) and `GET /v1/budgets`; both need the admin
/// key when one is set.
struct UsageRoutes<Context: RequestContext>: Sendable {
    let reader: (any UsageReader)?
    let budgets: Budgets?
    var now: @Sendable () -> Date = { Date() }

    func register(on router: Router<Context>) {
        if let reader {
            router.get("/v1/usage") { request, _ in
                let query = try Self.query(request.uri.queryParameters, now: now())
                return try ReadRoutes<Context>.json(try await reader.usage(query).json)
            }
        }
        if let budgets {
            router.get("/v1/budgets") { _, _ in try ReadRoutes<Context>.json(budgets.json()) }
        }
    }

    /// Reads the query string; a bad value is a 400 naming the parameter.
    static func query(_ parameters: FlatDictionary<Substring, Substring>, now: Date) throws -> UsageQuery {
        func string(_ name: String) -> String? { parameters.get(name).flatMap { $0.isEmpty ? nil : String($0) } }
        func bad(_ message: String) -> APIError { .badRequest("invalid_query", message) }
        func time(_ name: String) throws -> Date? {
            guard let text = string(name) else { return nil }
            guard let date = UsageQuery.parseTime(text, now: now) else {
                throw bad("\(name) must be an RFC 3339 time, Unix milliseconds, or a span before now such as 24h or 7d")
            }
            return date
        }
        let until = try time("until") ?? now
        let since = try time("since") ?? until.addingTimeInterval(-86_400)
        guard since < until else { throw bad("since must be before until") }
        var query = UsageQuery(since: since, until: until)
        if let text = string("group_by") {
            do { query.groupBy = try UsageQuery.parseGroupBy(text) } catch let error as InvalidQuery {
                throw bad(error.description)
            }
        }
        switch string("interval") {
        case nil, "none": query.interval = nil
        case "hour": query.interval = .hour
        case "day": query.interval = .day
        case let other?: throw bad("interval must be hour, day or none, not \"\(other)\"")
        }
        if let status = string("status") {
            guard status == "success" || status == "error" else { throw bad("status must be success or error") }
            query.status = status
        }
        query.name = string("name")
        query.application = string("application")
        query.environment = string("environment")
        query.provider = string("provider")
        query.model = string("model")
        query.userID = string("user_id")
        query.gatewayKey = string("gateway_key")
        if let text = string("run_id") {
            guard let id = UUID(uuidString: text) else { throw bad("run_id must be a UUID") }
            query.runID = id
        }
        return query
    }
}
