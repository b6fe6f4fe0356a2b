import ChronicleCore
import Foundation

/// A database that stores log records: SQLite or PostgreSQL.
public protocol LogStore: Sendable {
    /// Creates or upgrades the schema (in one transaction).
    func migrate() async throws
    /// Writes records in one transaction, in order. Inserting a record twice stores it once.
    func write(_ records: [StoredRecord]) async throws
    /// Deletes up to `limit` rows older than `cutoff` from each table; returns how many went.
    func deleteExpired(before cutoff: Date, limit: Int) async throws -> Int
    /// Succeeds when the database answers; tells an outage from a record the database refuses.
    func ping() async throws
    /// Closes connections.
    func close() async throws
}

/// A value bound to a SQL statement, before each backend maps it to its own types.
enum SQLValue: Sendable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
    /// JSON text, or SQL NULL.
    case json(String?)
    case uuid(UUID)
    case time(Date)
    /// A tag list: `text[]` in PostgreSQL, `|`-joined text in SQLite; NULL when empty.
    case tags([String])

    static func text(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    static func int(_ value: Int64?) -> SQLValue { value.map(SQLValue.int) ?? .null }
    static func uuid(_ value: UUID?) -> SQLValue { value.map(SQLValue.uuid) ?? .null }
    static func bool(_ value: Bool?) -> SQLValue { value.map(SQLValue.bool) ?? .null }
    static func double(_ value: Double?) -> SQLValue { value.map(SQLValue.double) ?? .null }
    static func jsonValue(_ value: JSONValue?) -> SQLValue { .json(value.flatMap(EventRow.json)) }
    static func jsonObject(_ value: [String: JSONValue]?) -> SQLValue { .json(value.flatMap(EventRow.json)) }

    /// Unix milliseconds, as both backends store them.
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
}

/// Column order, types and values of `chronicle_events` inserts.
enum EventColumns {
    /// What a column holds, so that a backend can bind or cast it without looking at a value.
    enum Kind: Equatable {
        case text, json, uuid, int, bool, double, time
    }

    static let columns: [(name: String, kind: Kind)] = [
        ("id", .uuid), ("event_type", .text), ("organization_id", .text), ("project_id", .text), ("user_id", .text),
        ("chat_request", .json), ("chat_response", .json), ("error", .json), ("provider", .text), ("model", .text),
        ("application", .text), ("environment", .text), ("request_organization_id", .text),
        ("request_project_id", .text), ("request_user_id", .text), ("workflow_id", .text), ("workflow_name", .text),
        ("run_id", .uuid), ("step_id", .uuid), ("step_index", .int), ("prompt_id", .text), ("prompt_version", .int),
        ("meta", .json), ("response_meta", .json), ("retries", .int), ("rate_limited", .bool),
        ("request_latency_ms", .int), ("total_latency_ms", .int), ("created_at", .time), ("input_tokens", .int),
        ("output_tokens", .int), ("total_tokens", .int), ("cached_tokens", .int), ("reasoning_tokens", .int),
        ("http_status", .int), ("streamed", .bool), ("overhead_ms", .double), ("gateway_key", .text),
        ("cost_usd", .double),
        ("instance_id", .text),
    ]

    static let names = columns.map(\.name)

    /// The row's values in column order; each is of its column's kind, or `.null`.
    static func values(_ row: EventRow) -> [SQLValue] {
        [
            .uuid(row.id), .text(row.eventType), .text(row.organizationID), .text(row.projectID), .text(row.userID),
            .json(row.chatRequest), .json(row.chatResponse), .json(row.error), .text(row.provider), .text(row.model),
            .text(row.application), .text(row.environment), .text(row.requestOrganizationID),
            .text(row.requestProjectID), .text(row.requestUserID), .text(row.workflowID), .text(row.workflowName),
            .uuid(row.runID), .uuid(row.stepID), .int(row.stepIndex), .text(row.promptID), .int(row.promptVersion),
            .json(row.meta), .json(row.responseMeta), .int(row.retries), .bool(row.rateLimited),
            .int(row.requestLatencyMs), .int(row.totalLatencyMs), .time(row.createdAt), .int(row.inputTokens),
            .int(row.outputTokens), .int(row.totalTokens), .int(row.cachedTokens), .int(row.reasoningTokens),
            .int(row.httpStatus), .bool(row.streamed), .double(row.overheadMs), .text(row.gatewayKey),
            .double(row.costUSD),
            .text(row.instanceID),
        ]
    }
}

/// A batch as the backends apply it: the workflow upserts in order, then every event row in one bulk insert.
struct BatchPlan {
    var workflow: [WorkflowStatement] = []
    var rows: [EventRow] = []
}

/// The statement that applies one workflow event, in a backend's dialect.
struct WorkflowStatement {
    var sql: String
    var values: [SQLValue]
}

/// SQL differences between the backends.
protocol SQLDialect {
    /// The placeholder for the `index`-th (1-based) value.
    func placeholder(_ index: Int, for value: SQLValue) -> String
    /// `MAX` of two values.
    var greatest: String { get }
    var least: String { get }
    /// JSON merge patch (RFC 7396) of two JSON expressions.
    func mergePatch(_ target: String, _ patch: String) -> String
    /// An empty JSON object literal.
    var emptyObject: String { get }
    /// A timestamp column as Unix-millisecond text.
    func msText(_ column: String) -> String
    /// A tags column as `a|b` text.
    func tagsText(_ column: String) -> String
    /// The start, in Unix milliseconds, of the `width`-millisecond bucket (an hour, a day) a timestamp
    /// column falls in.
    func millisecondsBucket(_ column: String, width: Int64) -> String
}

extension SQLDialect {
    /// `($1, $2, …)` for a row of values starting after `offset` values.
    func tuple(_ values: [SQLValue], offset: Int) -> String {
        "(" + values.enumerated().map { placeholder(offset + $0.offset + 1, for: $0.element) }.joined(separator: ", ") + ")"
    }

    /// A multi-row insert of event rows; a row already stored is skipped, so replays store it once.
    func insertEvents(_ rows: [EventRow]) -> WorkflowStatement {
        var values: [SQLValue] = []
        var tuples: [String] = []
        for row in rows {
            let rowValues = EventColumns.values(row)
            tuples.append(tuple(rowValues, offset: values.count))
            values += rowValues
        }
        let sql = "INSERT INTO chronicle_events (\(EventColumns.names.joined(separator: ", "))) VALUES "
            + tuples.joined(separator: ", ") + " ON CONFLICT (id) DO NOTHING"
        return WorkflowStatement(sql: sql, values: values)
    }

    /// The upsert for one workflow event. Events may arrive in any order: an end, error, state or update
    /// before its start creates the row, and the start completes it. A run's and a step's status follow
    /// event time (`updated_at`), not arrival: a late event older than the stored state leaves the status.
    func statement(for event: WorkflowEvent) -> WorkflowStatement {
        var values: [SQLValue] = []
        func p(_ value: SQLValue) -> String {
            values.append(value)
            return placeholder(values.count, for: value)
        }
        let e = emptyObject
        switch event {
        case .runStart(let start):
            let time = start.time ?? Date()
            let sql = """
                INSERT INTO chronicle_runs (id, name, description, application, environment, input, status, trace_id,
                  span_id, tags, info, updated_at, created_at)
                VALUES (\(p(.uuid(start.id))), \(p(.text(start.name))), \(p(.text(start.description))),
                  \(p(.text(start.application))), \(p(.text(start.environment))), \(p(.jsonValue(start.input))),
                  \(p(.text(start.status ?? "started"))), \(p(.text(start.traceID))), \(p(.text(start.spanID))),
                  \(p(.tags(start.tags))), \(p(.jsonObject(start.info))), \(p(.time(time))), \(p(.time(time))))
                ON CONFLICT (id) DO UPDATE SET
                  name = CASE WHEN chronicle_runs.name = '' THEN excluded.name ELSE chronicle_runs.name END,
                  description = COALESCE(chronicle_runs.description, excluded.description),
                  application = COALESCE(chronicle_runs.application, excluded.application),
                  environment = COALESCE(chronicle_runs.environment, excluded.environment),
                  input = COALESCE(chronicle_runs.input, excluded.input),
                  trace_id = COALESCE(chronicle_runs.trace_id, excluded.trace_id),
                  span_id = COALESCE(chronicle_runs.span_id, excluded.span_id),
                  tags = COALESCE(chronicle_runs.tags, excluded.tags),
                  status = CASE WHEN chronicle_runs.updated_at > excluded.updated_at THEN chronicle_runs.status
                    ELSE excluded.status END,
                  info = CASE WHEN chronicle_runs.updated_at > excluded.updated_at
                    THEN \(mergePatch("COALESCE(excluded.info, \(e))", "COALESCE(chronicle_runs.info, \(e))"))
                    ELSE \(mergePatch("COALESCE(chronicle_runs.info, \(e))", "COALESCE(excluded.info, \(e))")) END,
                  updated_at = \(greatest)(chronicle_runs.updated_at, excluded.updated_at),
                  created_at = \(least)(chronicle_runs.created_at, excluded.created_at)
                """
            return WorkflowStatement(sql: sql, values: values)
        case .runUpdate(let update):
            let time = update.time ?? Date()
            let sql = """
                INSERT INTO chronicle_runs (id, name, status, output, info, updated_at, created_at)
                VALUES (\(p(.uuid(update.id))), '', \(p(.text(update.status ?? "finished"))),
                  \(p(.jsonValue(update.output))), \(p(.jsonObject(update.info))), \(p(.time(time))), \(p(.time(time))))
                ON CONFLICT (id) DO UPDATE SET
                  status = CASE WHEN excluded.updated_at >= chronicle_runs.updated_at THEN excluded.status
                    ELSE chronicle_runs.status END,
                  output = COALESCE(excluded.output, chronicle_runs.output),
                  info = CASE WHEN excluded.info IS NULL THEN chronicle_runs.info
                    ELSE \(mergePatch("COALESCE(chronicle_runs.info, \(e))", "excluded.info")) END,
                  updated_at = \(greatest)(chronicle_runs.updated_at, excluded.updated_at)
                """
            return WorkflowStatement(sql: sql, values: values)
        case .stepStart(let start):
            // A start never changes the status of a row an earlier-arriving event created.
            let time = start.time ?? Date()
            let sql = """
                INSERT INTO chronicle_steps (id, run_id, type, parent_step, name, input, status, tags, info, span_id,
                  start_time, updated_at)
                VALUES (\(p(.uuid(start.stepID))), \(p(.uuid(start.runID))), \(p(.text(start.type))),
                  \(p(.uuid(start.parentStep))), \(p(.text(start.name))), \(p(.jsonValue(start.input ?? .null))),
                  'started', \(p(.tags(start.tags))), \(p(.jsonObject(start.info))), \(p(.text(start.spanID))),
                  \(p(.time(time))), \(p(.time(time))))
                ON CONFLICT (id) DO UPDATE SET
                  type = CASE WHEN chronicle_steps.type = '' THEN excluded.type ELSE chronicle_steps.type END,
                  parent_step = COALESCE(chronicle_steps.parent_step, excluded.parent_step),
                  name = COALESCE(chronicle_steps.name, excluded.name),
                  input = COALESCE(chronicle_steps.input, excluded.input),
                  tags = COALESCE(chronicle_steps.tags, excluded.tags),
                  span_id = COALESCE(chronicle_steps.span_id, excluded.span_id),
                  info = CASE WHEN chronicle_steps.info IS NULL THEN excluded.info
                    ELSE \(mergePatch("COALESCE(excluded.info, \(e))", "chronicle_steps.info")) END,
                  start_time = \(least)(chronicle_steps.start_time, excluded.start_time)
                """
            return WorkflowStatement(sql: sql, values: values)
        case .stepEnd(let end):
            let time = end.time ?? Date()
            let newer = "excluded.updated_at >= chronicle_steps.updated_at"
            let sql = """
                INSERT INTO chronicle_steps (id, run_id, type, status, output, info, start_time, end_time, updated_at)
                VALUES (\(p(.uuid(end.stepID))), \(p(.uuid(end.runID))), '', 'finished', \(p(.jsonValue(end.output))),
                  \(p(.jsonObject(end.info))), \(p(.time(time))), \(p(.time(time))), \(p(.time(time))))
                ON CONFLICT (id) DO UPDATE SET
                  status = CASE WHEN \(newer) THEN excluded.status ELSE chronicle_steps.status END,
                  output = excluded.output,
                  info = CASE WHEN excluded.info IS NULL THEN chronicle_steps.info
                    ELSE \(mergePatch("COALESCE(chronicle_steps.info, \(e))", "excluded.info")) END,
                  end_time = CASE WHEN \(newer) OR chronicle_steps.end_time IS NULL THEN excluded.end_time
                    ELSE chronicle_steps.end_time END,
                  updated_at = \(greatest)(chronicle_steps.updated_at, excluded.updated_at)
                """
            return WorkflowStatement(sql: sql, values: values)
        case .stepError(let failure):
            let time = failure.time ?? Date()
            let newer = "excluded.updated_at >= chronicle_steps.updated_at"
            let sql = """
                INSERT INTO chronicle_steps (id, run_id, type, status, error, start_time, end_time, updated_at)
                VALUES (\(p(.uuid(failure.stepID))), \(p(.uuid(failure.runID))), '', 'error',
                  \(p(.jsonValue(failure.error))), \(p(.time(time))), \(p(.time(time))), \(p(.time(time))))
                ON CONFLICT (id) DO UPDATE SET
                  status = CASE WHEN \(newer) THEN excluded.status ELSE chronicle_steps.status END,
                  error = excluded.error,
                  end_time = CASE WHEN \(newer) OR chronicle_steps.end_time IS NULL THEN excluded.end_time
                    ELSE chronicle_steps.end_time END,
                  updated_at = \(greatest)(chronicle_steps.updated_at, excluded.updated_at)
                """
            return WorkflowStatement(sql: sql, values: values)
        case .stepState(let state):
            let time = state.time ?? Date()
            let sql = """
                INSERT INTO chronicle_steps (id, run_id, type, status, start_time, updated_at)
                VALUES (\(p(.uuid(state.stepID))), \(p(.uuid(state.runID))), '', \(p(.text(state.state))),
                  \(p(.time(time))), \(p(.time(time))))
                ON CONFLICT (id) DO UPDATE SET
                  status = CASE WHEN excluded.updated_at >= chronicle_steps.updated_at THEN excluded.status
                    ELSE chronicle_steps.status END,
                  updated_at = \(greatest)(chronicle_steps.updated_at, excluded.updated_at)
                """
            return WorkflowStatement(sql: sql, values: values)
        case .event(let generic):
            return insertEvents([EventRow(generic, now: Date())])
        }
    }

    /// The plan for a batch: each workflow event's statement in order, and the event rows inserted after them.
    /// - Parameter instanceID: stamped on rows that carry none (this replica's, or replayed ones).
    func plan(for records: [StoredRecord], instanceID: String? = nil) -> BatchPlan {
        var plan = BatchPlan()
        for record in records {
            switch record {
            case .event(var row):
                if row.instanceID == nil { row.instanceID = instanceID }
                plan.rows.append(row)
            case .workflow(let event): plan.workflow.append(statement(for: event))
            }
        }
        return plan
    }
}
