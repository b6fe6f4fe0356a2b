import ChronicleCore
import Foundation
import Logging
import SQLiteNIO

/// Stores log records in a SQLite file (WAL mode). Timestamps are Unix milliseconds.
public final class SQLiteLogStore: LogStore, LogReader, UsageReader, TextRowFetcher {
    public let path: String
    let connection: SQLiteConnection
    /// Recorded as `instance_id` on every call row this store writes.
    public let instanceID: String?
    private let dialect = SQLiteDialect()
    /// One connection runs one transaction at a time: two callers' statements interleaved would run inside
    /// each other's transaction (a write the log writer stopped waiting for may still be running).
    private let serial = SerialLock()
    var sqlDialect: any SQLDialect { dialect }

    private init(path: String, connection: SQLiteConnection, instanceID: String?) {
        self.path = path
        self.connection = connection
        self.instanceID = instanceID
    }

    /// Opens (creating if needed) the database at `path`.
    /// - Parameter instanceID: recorded as `instance_id` on the call rows this store writes.
    public static func open(path: String, instanceID: String? = nil,
                            logger: Logger = Logger(label: "chronicle.sqlite")) async throws -> SQLiteLogStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA busy_timeout = 5000",
                       "PRAGMA foreign_keys = ON"] {
            _ = try await connection.query(pragma, [])
        }
        return SQLiteLogStore(path: path, connection: connection, instanceID: instanceID)
    }

    public func migrate() async throws {
        _ = try await connection.query("CREATE TABLE IF NOT EXISTS chronicle_meta (key text PRIMARY KEY, value text)", [])
        let connection = connection
        try await transaction {
            let rows = try await connection.query(
                "SELECT value FROM chronicle_meta WHERE key = 'migration_version'", [])
            let current = rows.first?.column("value")?.string.flatMap { Int($0) } ?? rows.first?.column("value")?.integer ?? 0
            guard current < Migrations.sqlite.count else { return }
            for migration in Migrations.sqlite[current...] {
                for statement in migration { _ = try await connection.query(statement, []) }
            }
            _ = try await connection.query(
                "INSERT INTO chronicle_meta (key, value) VALUES ('migration_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [.text(String(Migrations.sqlite.count))])
        }
    }

    /// The schema version recorded in `chronicle_meta`.
    public func schemaVersion() async throws -> Int {
        let rows = try await connection.query("SELECT value FROM chronicle_meta WHERE key = 'migration_version'", [])
        return rows.first?.column("value")?.string.flatMap { Int($0) } ?? 0
    }

    public func write(_ records: [StoredRecord]) async throws {
        let plan = dialect.plan(for: records, instanceID: instanceID)
        // Binds are built here, before the transaction starts, so that the connection's lock is held only
        // while SQLite works.
        let inserts = SQLiteEventInsert.statements(for: plan.rows)
        let connection = connection
        let hasCalls = plan.rows.contains { $0.eventType == UsageRollup.callEventType }
        if plan.workflow.isEmpty, inserts.count == 1, !hasCalls, let insert = inserts.first {
            // One statement is atomic on its own: no BEGIN and COMMIT trips to SQLite's thread. It still
            // waits its turn, so that it never runs inside another caller's transaction.
            _ = try await serial.run { try await connection.query(insert.sql, insert.binds) }
            return
        }
        try await transaction {
            for statement in plan.workflow {
                _ = try await connection.query(statement.sql, statement.values.map(Self.bind))
            }
            var inserted = Set<String>()
            for insert in inserts {
                for row in try await connection.query(insert.sql, insert.binds) {
                    if let id = row.column("id")?.string { inserted.insert(id) }
                }
            }
            // Only the calls stored now are added to the rollup: a replayed call was counted when first stored.
            for upsert in UsageRollup.upserts(plan.rows, insertedIDs: inserted, dialect: SQLiteDialect()) {
                _ = try await connection.query(upsert.sql, upsert.values.map(Self.bind))
            }
        }
    }

    public func deleteExpired(before cutoff: Date, limit: Int) async throws -> Int {
        let ms = SQLiteData.integer(SQLiteInt64(SQLValue.milliseconds(cutoff)))
        var deleted = 0
        for (table, column) in [("chronicle_events", "created_at"), ("chronicle_steps", "start_time"),
                                ("chronicle_runs", "updated_at")] {
            let rows = try await serial.run {
                try await connection.query(
                    "DELETE FROM \(table) WHERE rowid IN (SELECT rowid FROM \(table) WHERE \(column) < ? LIMIT ?) RETURNING 1",
                    [ms, .integer(limit)])
            }
            deleted += rows.count
        }
        return deleted
    }

    // MARK: LogReader

    public func listRuns(_ query: ListQuery) async throws -> Page { try await selectRuns(query) }
    public func run(id: UUID) async throws -> JSONValue? { try await selectRun(id: id) }
    public func listCalls(_ query: ListQuery) async throws -> Page { try await selectCalls(query) }
    public func call(id: UUID) async throws -> JSONValue? { try await selectCall(id: id) }
    public func usage(_ query: UsageQuery) async throws -> UsageReport { try await selectUsage(query) }

    func fetchText(_ sql: String, _ values: [SQLValue]) async throws -> [[String: String]] {
        try await connection.query(sql, values.map(Self.bind)).map { row in
            var result: [String: String] = [:]
            for column in row.columns {
                switch column.data {
                case .null: break
                case .text(let text): result[column.name] = text
                case .integer(let value): result[column.name] = String(value)
                case .float(let value): result[column.name] = String(value)
                case .blob(let buffer): result[column.name] = String(buffer: buffer)
                }
            }
            return result
        }
    }

    /// Runs a query; for tests and the read API.
    public func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await connection.query(sql, binds)
    }

    public func ping() async throws {
        _ = try await connection.query("SELECT 1", [])
    }

    public func close() async throws {
        try await connection.close()
    }

    /// Runs statements in one transaction (a configuration change and its audit row).
    func execute(inTransaction statements: [WorkflowStatement]) async throws {
        let connection = connection
        try await transaction {
            for statement in statements {
                _ = try await connection.query(statement.sql, statement.values.map(Self.bind))
            }
        }
    }

    /// Runs `body` in a transaction, in a task of its own: a cancelled caller (a write the log writer
    /// stopped waiting for) must not cut it short between BEGIN and COMMIT or ROLLBACK, which would leave
    /// the connection inside a transaction.
    private func transaction(_ body: @escaping @Sendable () async throws -> Void) async throws {
        let connection = connection
        let serial = serial
        try await Task {
            try await serial.run {
                _ = try await connection.query("BEGIN IMMEDIATE", [])
                do {
                    try await body()
                    _ = try await connection.query("COMMIT", [])
                } catch {
                    _ = try? await connection.query("ROLLBACK", [])
                    throw error
                }
            }
        }.value
    }

    static func bind(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .null: return .null
        case .int(let value): return .integer(SQLiteInt64(value))
        case .double(let value): return .float(value)
        case .text(let value): return .text(value)
        case .bool(let value): return .integer(value ? 1 : 0)
        case .json(let value): return value.map(SQLiteData.text) ?? .null
        case .uuid(let value): return .text(value.uuidString.lowercased())
        case .time(let value): return .integer(SQLiteInt64(SQLValue.milliseconds(value)))
        case .tags(let tags): return tags.isEmpty ? .null : .text(tags.joined(separator: "|"))
        }
    }
}

struct SQLiteDialect: SQLDialect {
    func placeholder(_ index: Int, for value: SQLValue) -> String { "?\(index)" }
    let greatest = "MAX"
    let least = "MIN"
    func mergePatch(_ target: String, _ patch: String) -> String { "json_patch(\(target), \(patch))" }
    let emptyObject = "'{}'"
    func msText(_ column: String) -> String { "CAST(\(column) AS text)" }
    func tagsText(_ column: String) -> String { column }
    func millisecondsBucket(_ column: String, width: Int64) -> String { "((\(column) / \(width)) * \(width))" }
}

/// Multi-row inserts of `chronicle_events` rows, bound straight from the rows.
enum SQLiteEventInsert {
    /// Rows per statement: 500 rows of 39 values stay well under SQLite's limit of 32,766 bound values, and
    /// larger statements stop paying for their longer parse.
    static let rowsPerStatement = 500

    private static let prefix = "INSERT INTO chronicle_events (\(EventColumns.names.joined(separator: ", "))) VALUES "
    private static let tuple = "(" + Array(repeating: "?", count: EventColumns.columns.count).joined(separator: ",") + ")"
    /// The ids returned are those of the rows stored now, for the usage rollup.
    private static let suffix = " ON CONFLICT (id) DO NOTHING RETURNING id"
    /// The statement for a full chunk, built once.
    private static let fullChunkSQL = sql(rowCount: rowsPerStatement)

    /// The insert for `rowCount` rows; a row already stored is skipped, so replays store it once.
    static func sql(rowCount: Int) -> String {
        var sql = prefix
        sql.reserveCapacity(prefix.utf8.count + rowCount * (tuple.utf8.count + 1) + suffix.utf8.count)
        for index in 0..<rowCount {
            if index > 0 { sql += "," }
            sql += tuple
        }
        sql += suffix
        return sql
    }

    static func statements(for rows: [EventRow]) -> [(sql: String, binds: [SQLiteData])] {
        stride(from: 0, to: rows.count, by: rowsPerStatement).map { start in
            let chunk = rows[start..<min(start + rowsPerStatement, rows.count)]
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * EventColumns.columns.count)
            for row in chunk { append(row, to: &binds) }
            return (chunk.count == rowsPerStatement ? fullChunkSQL : sql(rowCount: chunk.count), binds)
        }
    }

    /// The row's values in ``EventColumns`` order, as ``SQLiteLogStore/bind(_:)`` maps them.
    static func append(_ row: EventRow, to binds: inout [SQLiteData]) {
        func text(_ value: String?) -> SQLiteData { value.map(SQLiteData.text) ?? .null }
        func int(_ value: Int64?) -> SQLiteData { value.map { .integer(SQLiteInt64($0)) } ?? .null }
        func bool(_ value: Bool?) -> SQLiteData { value.map { .integer($0 ? 1 : 0) } ?? .null }
        func uuid(_ value: UUID?) -> SQLiteData { value.map { .text($0.uuidString.lowercased()) } ?? .null }
        binds.append(contentsOf: [
            uuid(row.id), .text(row.eventType), text(row.organizationID), text(row.projectID), text(row.userID),
            .text(row.chatRequest), .text(row.chatResponse), .text(row.error), text(row.provider), text(row.model),
            text(row.application), text(row.environment), text(row.requestOrganizationID),
            text(row.requestProjectID), text(row.requestUserID), text(row.workflowID), text(row.workflowName),
            uuid(row.runID), uuid(row.stepID), int(row.stepIndex), text(row.promptID), int(row.promptVersion),
            .text(row.meta), text(row.responseMeta), int(row.retries), bool(row.rateLimited),
            int(row.requestLatencyMs), int(row.totalLatencyMs), .integer(SQLiteInt64(SQLValue.milliseconds(row.createdAt))),
            int(row.inputTokens), int(row.outputTokens), int(row.totalTokens), int(row.cachedTokens),
            int(row.reasoningTokens), int(row.httpStatus), bool(row.streamed), row.overheadMs.map(SQLiteData.float) ?? .null,
            text(row.gatewayKey), row.costUSD.map(SQLiteData.float) ?? .null, text(row.instanceID),
        ])
    }
}
