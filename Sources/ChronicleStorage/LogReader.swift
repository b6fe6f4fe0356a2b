import ChronicleCore
import Foundation

/// Reads recorded runs and calls back for the read API (`/v1/runs`, `/v1/calls`), on either backend.
public protocol LogReader: Sendable {
    func listRuns(_ query: ListQuery) async throws -> Page
    func run(id: UUID) async throws -> JSONValue?
    func listCalls(_ query: ListQuery) async throws -> Page
    func call(id: UUID) async throws -> JSONValue?
}

/// Filters and paging for list endpoints. Results are newest first.
public struct ListQuery: Sendable, Equatable {
    public var status: String?
    public var name: String?
    public var application: String?
    public var environment: String?
    public var provider: String?
    public var model: String?
    public var userID: String?
    public var runID: UUID?
    public var since: Date?
    public var until: Date?
    public var limit = 50
    /// The `next_cursor` of the previous page.
    public var cursor: String?

    public init() {}
}

/// One page of results and the cursor of the next, if any.
public struct Page: Sendable {
    public var items: [JSONValue]
    public var nextCursor: String?

    public var json: JSONValue {
        ["data": .array(items), "next_cursor": nextCursor.map(JSONValue.string) ?? .null]
    }
}

/// A page cursor: the sort key of the last item, opaque to clients.
struct Cursor: Equatable {
    var milliseconds: Int64
    var id: String

    var encoded: String {
        Data("\(milliseconds)|\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init(milliseconds: Int64, id: String) {
        self.milliseconds = milliseconds
        self.id = id
    }

    init(_ text: String) throws {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let decoded = String(data: data, encoding: .utf8),
              let bar = decoded.firstIndex(of: "|"), let ms = Int64(decoded[..<bar]),
              UUID(uuidString: String(decoded[decoded.index(after: bar)...])) != nil
        else { throw InvalidQuery("cursor is not one this server issued") }
        milliseconds = ms
        id = String(decoded[decoded.index(after: bar)...])
    }
}

/// A bad filter or cursor: the client's mistake.
public struct InvalidQuery: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How a selected column is turned into JSON.
enum ColumnKind {
    case text, json, int, double, bool, time, tags, uuid
}

/// A backend that can run a read query returning every column as text.
protocol TextRowFetcher: Sendable {
    var sqlDialect: any SQLDialect { get }
    func fetchText(_ sql: String, _ values: [SQLValue]) async throws -> [[String: String]]
}

extension TextRowFetcher {
    /// `SELECT` expressions for the given columns, each as text, timestamps as Unix milliseconds.
    func selectList(_ columns: [(String, ColumnKind)], table: String? = nil) -> String {
        columns.map { name, kind in
            let qualified = table.map { "\($0).\(name)" } ?? name
            switch kind {
            case .time: return "\(sqlDialect.msText(qualified)) AS \(name)"
            case .tags: return "\(sqlDialect.tagsText(qualified)) AS \(name)"
            default: return "CAST(\(qualified) AS text) AS \(name)"
            }
        }.joined(separator: ", ")
    }

    func object(_ row: [String: String], _ columns: [(String, ColumnKind)]) -> [String: JSONValue] {
        var object: [String: JSONValue] = [:]
        for (name, kind) in columns {
            guard let text = row[name] else {
                object[name] = .null
                continue
            }
            switch kind {
            case .text, .uuid: object[name] = .string(text)
            case .json: object[name] = (try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8))) ?? .string(text)
            case .int: object[name] = Int64(text).map(JSONValue.integer) ?? .null
            case .double: object[name] = Double(text).map(JSONValue.double) ?? .null
            case .bool: object[name] = .bool(text == "1" || text == "true" || text == "t")
            case .time:
                object[name] = Int64(text).map { .string(RFC3339.format(Date(timeIntervalSince1970: Double($0) / 1000))) } ?? .null
            case .tags: object[name] = .array(text.split(separator: "|").map { .string(String($0)) })
            }
        }
        return object
    }

    /// Runs a filtered, cursor-paged, newest-first query over `table` ordered by `timeColumn`.
    /// `conditions` are conditions with one bound value each: the closure gets the value's placeholder.
    func page(table: String, columns: [(String, ColumnKind)], timeColumn: String, filters: [(String, SQLValue)],
              query: ListQuery, extraWhere: [String] = [],
              conditions bound: [(SQLValue, (String) -> String)] = [],
              computed: [ComputedColumn] = []) async throws -> Page {
        let (sql, values) = try pageQuery(table: table, columns: columns, timeColumn: timeColumn, filters: filters,
                                          query: query, extraWhere: extraWhere, conditions: bound, computed: computed)
        let rows = try await fetchText(sql, values)
        let limit = max(1, min(query.limit, 500))
        let allColumns = columns + computed.map { ($0.name, $0.kind) }
        var items = rows.prefix(limit).map { JSONValue.object(object($0, allColumns)) }
        var next: String?
        if rows.count > limit, let last = rows.prefix(limit).last, let ms = last["sort_ms"].flatMap({ Int64($0) }),
           let id = last["id"] {
            next = Cursor(milliseconds: ms, id: id).encoded
        }
        if items.isEmpty { items = [] }
        return Page(items: items, nextCursor: next)
    }

    /// The SQL of ``page(table:columns:timeColumn:filters:query:extraWhere:conditions:computed:)`` and its values.
    ///
    /// Columns are named with their table wherever the select list has an alias of the same name: each
    /// selected column is cast to text under its own name, and `ORDER BY created_at` would sort by that text
    /// (SQLite and PostgreSQL both take an output name first there), reading and sorting the whole table
    /// instead of walking the time index for the newest rows.
    func pageQuery(table: String, columns: [(String, ColumnKind)], timeColumn: String, filters: [(String, SQLValue)],
                   query: ListQuery, extraWhere: [String] = [],
                   conditions bound: [(SQLValue, (String) -> String)] = [],
                   computed: [ComputedColumn] = []) throws -> (sql: String, values: [SQLValue]) {
        var values: [SQLValue] = []
        func bind(_ value: SQLValue) -> String {
            values.append(value)
            return sqlDialect.placeholder(values.count, for: value)
        }
        let time = "\(table).\(timeColumn)"
        let id = "\(table).id"
        var conditions = extraWhere
        for (column, value) in filters { conditions.append("\(table).\(column) = \(bind(value))") }
        for (value, condition) in bound { conditions.append(condition(bind(value))) }
        if let since = query.since { conditions.append("\(time) >= \(bind(.time(since)))") }
        if let until = query.until { conditions.append("\(time) < \(bind(.time(until)))") }
        if let text = query.cursor {
            let cursor = try Cursor(text)
            let after = bind(.time(Date(timeIntervalSince1970: Double(cursor.milliseconds) / 1000)))
            let lastID = bind(.uuid(UUID(uuidString: cursor.id) ?? UUID()))
            conditions.append("(\(time) < \(after) OR (\(time) = \(after) AND \(id) < \(lastID)))")
        }
        let limit = max(1, min(query.limit, 500))
        let computedList = computed.map { ", CAST((\($0.expression)) AS text) AS \($0.name)" }.joined()
        let sql = "SELECT \(selectList(columns))\(computedList), \(sqlDialect.msText(time)) AS sort_ms FROM \(table)"
            + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY \(time) DESC, \(id) DESC LIMIT \(limit + 1)"
        return (sql, values)
    }
}

/// A listed value computed by a subquery per row, such as a run's number of steps.
struct ComputedColumn {
    var name: String
    var kind: ColumnKind
    /// SQL valid in the select list, referring to the listed table by its name.
    var expression: String
}

enum ReadColumns {
    /// What a run's list entry adds to its row: how many steps and LLM calls it has, their tokens and cost.
    static let runTotals: [ComputedColumn] = [
        ComputedColumn(name: "step_count", kind: .int,
                       expression: "SELECT count(*) FROM chronicle_steps WHERE chronicle_steps.run_id = chronicle_runs.id"),
        ComputedColumn(name: "call_count", kind: .int, expression: "SELECT count(*) FROM chronicle_events"
            + " WHERE chronicle_events.run_id = chronicle_runs.id AND chronicle_events.event_type = 'chronicle_llm_request'"),
        ComputedColumn(name: "total_tokens", kind: .int, expression: "SELECT sum(total_tokens) FROM chronicle_events"
            + " WHERE chronicle_events.run_id = chronicle_runs.id AND chronicle_events.event_type = 'chronicle_llm_request'"),
        ComputedColumn(name: "cost_usd", kind: .double, expression: "SELECT sum(cost_usd) FROM chronicle_events"
            + " WHERE chronicle_events.run_id = chronicle_runs.id AND chronicle_events.event_type = 'chronicle_llm_request'"),
    ]

    static let run: [(String, ColumnKind)] = [
        ("id", .uuid), ("name", .text), ("description", .text), ("application", .text), ("environment", .text),
        ("input", .json), ("output", .json), ("status", .text), ("trace_id", .text), ("span_id", .text),
        ("tags", .tags), ("info", .json), ("created_at", .time), ("updated_at", .time),
    ]
    static let step: [(String, ColumnKind)] = [
        ("id", .uuid), ("run_id", .uuid), ("type", .text), ("parent_step", .uuid), ("name", .text), ("input", .json),
        ("output", .json), ("error", .json), ("status", .text), ("tags", .tags), ("info", .json), ("span_id", .text),
        ("start_time", .time), ("end_time", .time),
    ]
    static let callSummary: [(String, ColumnKind)] = [
        ("id", .uuid), ("event_type", .text), ("provider", .text), ("model", .text), ("application", .text),
        ("environment", .text), ("request_user_id", .text), ("workflow_id", .text), ("workflow_name", .text),
        ("run_id", .uuid), ("step_id", .uuid), ("step_index", .int), ("prompt_id", .text), ("prompt_version", .int),
        ("retries", .int), ("rate_limited", .bool), ("request_latency_ms", .int), ("total_latency_ms", .int),
        ("input_tokens", .int), ("output_tokens", .int), ("total_tokens", .int), ("cached_tokens", .int),
        ("reasoning_tokens", .int), ("http_status", .int), ("streamed", .bool), ("overhead_ms", .double),
        ("gateway_key", .text), ("cost_usd", .double), ("error", .json), ("meta", .json), ("created_at", .time),
    ]
    static let callDetail: [(String, ColumnKind)] = callSummary + [
        ("chat_request", .json), ("chat_response", .json), ("response_meta", .json), ("organization_id", .text),
        ("project_id", .text), ("user_id", .text), ("request_organization_id", .text), ("request_project_id", .text),
    ]
}

extension TextRowFetcher {
    func selectRuns(_ query: ListQuery) async throws -> Page {
        var filters: [(String, SQLValue)] = []
        if let value = query.status { filters.append(("status", .text(value))) }
        if let value = query.name { filters.append(("name", .text(value))) }
        if let value = query.application { filters.append(("application", .text(value))) }
        if let value = query.environment { filters.append(("environment", .text(value))) }
        return try await page(table: "chronicle_runs", columns: ReadColumns.run, timeColumn: "created_at",
                              filters: filters, query: query, computed: ReadColumns.runTotals)
    }

    func selectCalls(_ query: ListQuery) async throws -> Page {
        let (filters, extra, bound) = try callFilters(query)
        return try await page(table: "chronicle_events", columns: ReadColumns.callSummary, timeColumn: "created_at",
                              filters: filters, query: query, extraWhere: extra, conditions: bound)
    }

    /// The SQL `GET /v1/calls` runs for `query`.
    func callsQuery(_ query: ListQuery) throws -> (sql: String, values: [SQLValue]) {
        let (filters, extra, bound) = try callFilters(query)
        return try pageQuery(table: "chronicle_events", columns: ReadColumns.callSummary, timeColumn: "created_at",
                             filters: filters, query: query, extraWhere: extra, conditions: bound)
    }

    private func callFilters(_ query: ListQuery) throws
        -> ([(String, SQLValue)], [String], [(SQLValue, (String) -> String)])
    {
        var filters: [(String, SQLValue)] = [("event_type", .text("chronicle_llm_request"))]
        if let value = query.application { filters.append(("application", .text(value))) }
        if let value = query.environment { filters.append(("environment", .text(value))) }
        if let value = query.provider { filters.append(("provider", .text(value))) }
        if let value = query.model { filters.append(("model", .text(value))) }
        if let value = query.userID { filters.append(("request_user_id", .text(value))) }
        if let value = query.runID { filters.append(("run_id", .uuid(value))) }
        var extra: [String] = []
        var bound: [(SQLValue, (String) -> String)] = []
        if let name = query.name {
            // A call's name is its workflow's name or its run's name.
            bound.append((.text(name), { placeholder in
                "(chronicle_events.workflow_name = \(placeholder) OR chronicle_events.run_id IN (SELECT id FROM chronicle_runs WHERE name = \(placeholder)))"
            }))
        }
        if let status = query.status {
            switch status {
            case "error": extra.append("chronicle_events.http_status >= 400")
            case "success": extra.append("chronicle_events.http_status < 400")
            default: throw InvalidQuery("status for calls is \"success\" or \"error\", not \"\(status)\"")
            }
        }
        return (filters, extra, bound)
    }

    func selectCall(id: UUID) async throws -> JSONValue? {
        let placeholder = sqlDialect.placeholder(1, for: .uuid(id))
        let rows = try await fetchText(
            "SELECT \(selectList(ReadColumns.callDetail)) FROM chronicle_events WHERE id = \(placeholder)", [.uuid(id)])
        return rows.first.map { row in
            var call = object(row, ReadColumns.callDetail)
            // What was tried, in order: a failed call's attempts are in its error, a call that succeeded after
            // a retry or a fallback has them in its response metadata, a first-try success has none.
            call["attempts"] = call["error"]?["attempts"] ?? call["response_meta"]?["attempts"] ?? .array([])
            return .object(call)
        }
    }

    /// The run, its steps as a tree, and the calls and events linked to it.
    func selectRun(id: UUID) async throws -> JSONValue? {
        let placeholder = sqlDialect.placeholder(1, for: .uuid(id))
        guard let runRow = try await fetchText(
            "SELECT \(selectList(ReadColumns.run)) FROM chronicle_runs WHERE id = \(placeholder)", [.uuid(id)]).first
        else { return nil }
        var run = object(runRow, ReadColumns.run)
        let steps = try await fetchText(
            "SELECT \(selectList(ReadColumns.step)) FROM chronicle_steps WHERE run_id = \(placeholder) ORDER BY chronicle_steps.start_time, chronicle_steps.id",
            [.uuid(id)]
        ).map { object($0, ReadColumns.step) }
        let linked = try await fetchText(
            "SELECT \(selectList(ReadColumns.callSummary)) FROM chronicle_events WHERE run_id = \(placeholder) ORDER BY chronicle_events.created_at, chronicle_events.id",
            [.uuid(id)]
        ).map { object($0, ReadColumns.callSummary) }
        run["steps"] = .array(Self.tree(steps))
        run["calls"] = .array(linked.filter { $0["event_type"] == "chronicle_llm_request" }.map(JSONValue.object))
        run["events"] = .array(linked.filter { $0["event_type"] != "chronicle_llm_request" }.map(JSONValue.object))
        return .object(run)
    }

    /// Nests steps under their parents (`children`); a step whose parent is unknown stays at the top.
    static func tree(_ steps: [[String: JSONValue]]) -> [JSONValue] {
        let ids = Set(steps.compactMap { $0["id"]?.stringValue })
        var children: [String: [[String: JSONValue]]] = [:]
        var roots: [[String: JSONValue]] = []
        for step in steps {
            if let parent = step["parent_step"]?.stringValue, ids.contains(parent), parent != step["id"]?.stringValue {
                children[parent, default: []].append(step)
            } else {
                roots.append(step)
            }
        }
        var visited = Set<String>()
        func build(_ step: [String: JSONValue]) -> JSONValue {
            var node = step
            let id = step["id"]?.stringValue ?? ""
            guard visited.insert(id).inserted else { return .object(node) }
            node["children"] = .array((children[id] ?? []).map(build))
            return .object(node)
        }
        return roots.map(build)
    }
}
