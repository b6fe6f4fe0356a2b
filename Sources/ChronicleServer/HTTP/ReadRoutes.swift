import ChronicleCore
import ChronicleStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The read API: `GET /v1/runs`, `/v1/runs/{id}`, `/v1/calls`, `/v1/calls/{id}`.
struct ReadRoutes<Context: RequestContext>: Sendable {
    let reader: any LogReader

    func register(on router: Router<Context>) {
        router.get("/v1/runs") { request, _ in
            try Self.json(try await reader.listRuns(try Self.query(request)).json)
        }
        router.get("/v1/runs/{id}") { _, context in
            let id = try Self.id(context)
            guard let run = try await reader.run(id: id) else {
                throw APIError(status: 404, kind: "not_found", message: "No run with id \(id.uuidString.lowercased())")
            }
            return try Self.json(run)
        }
        router.get("/v1/calls") { request, _ in
            try Self.json(try await reader.listCalls(try Self.query(request)).json)
        }
        router.get("/v1/calls/{id}") { _, context in
            let id = try Self.id(context)
            guard let call = try await reader.call(id: id) else {
                throw APIError(status: 404, kind: "not_found", message: "No call with id \(id.uuidString.lowercased())")
            }
            return try Self.json(call)
        }
    }

    static func id(_ context: Context) throws -> UUID {
        guard let text = context.parameters.get("id"), let id = UUID(uuidString: text) else {
            throw APIError.badRequest("invalid_id", "The id in the path is not a UUID")
        }
        return id
    }

    static func json(_ value: JSONValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONCoding.encodeBytes(value))))
    }

    /// Reads filters from the query string; a bad value is a 400 naming the parameter.
    static func query(_ request: Request) throws -> ListQuery {
        let parameters = request.uri.queryParameters
        var query = ListQuery()
        func string(_ name: String) -> String? { parameters.get(name).flatMap { $0.isEmpty ? nil : String($0) } }
        func date(_ name: String) throws -> Date? {
            guard let text = string(name) else { return nil }
            if let ms = Int64(text) { return Date(timeIntervalSince1970: Double(ms) / 1000) }
            guard let date = RFC3339.parse(text) else {
                throw APIError.badRequest("invalid_query", "\(name) must be an RFC 3339 time or Unix milliseconds")
            }
            return date
        }
        query.status = string("status")
        query.name = string("name")
        query.application = string("application")
        query.environment = string("environment")
        query.provider = string("provider")
        query.model = string("model")
        query.userID = string("user_id")
        if let text = string("run_id") {
            guard let id = UUID(uuidString: text) else { throw APIError.badRequest("invalid_query", "run_id must be a UUID") }
            query.runID = id
        }
        query.since = try date("since")
        query.until = try date("until")
        if let text = string("limit") {
            guard let limit = Int(text), (1...500).contains(limit) else {
                throw APIError.badRequest("invalid_query", "limit must be a whole number from 1 to 500")
            }
            query.limit = limit
        }
        query.cursor = string("cursor")
        return query
    }
}
