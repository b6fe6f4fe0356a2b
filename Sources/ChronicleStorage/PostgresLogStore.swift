import ChronicleCore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Stores log records in PostgreSQL through a bounded connection pool. Run it as a service (it owns the
/// pool's background task). After each batch it notifies `chronicle_run:<id>` (empty payload, as the
/// Rust Chronicle does) and `chronicle_runs` (payload: the run id) for every run the batch touched.
public final class PostgresLogStore: LogStore, LogReader, UsageReader, TextRowFetcher, Service {
    public let client: PostgresClient
    /// Recorded as `instance_id` on every call row this store writes.
    public let instanceID: String?
    private let logger: Logger
    private let dialect = PostgresDialect()
    var sqlDialect: any SQLDialect { dialect }

    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database?sslmode=disable|require`.
    ///   - maxConnections: the pool's size.
    ///   - instanceID: recorded as `instance_id` on the call rows this store writes.
    public init(url: String, maxConnections: Int = 10, instanceID: String? = nil,
                logger: Logger = Logger(label: "chronicle.postgres")) throws {
        self.instanceID = instanceID
        var configuration = try Self.configuration(from: url)
        configuration.options.maximumConnections = max(1, maxConnections)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Runs the connection pool until cancelled.
    public func run() async throws {
        await client.run()
    }

    static func configuration(from url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let host = components.host,
              ["postgres", "postgresql"].contains(components.scheme ?? "")
        else {
            throw StorageError("Not a PostgreSQL URL: expected postgres://user:password@host:port/database")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let sslMode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
            password: components.password, database: database.isEmpty ? nil : database, tls: tls)
    }

    public func migrate() async throws {
        _ = try await client.query("CREATE TABLE IF NOT EXISTS chronicle_meta (key text PRIMARY KEY, value jsonb)", logger: logger)
        try await client.withTransaction(logger: logger) { connection in
            // One replica migrates at a time.
            _ = try await connection.query("SELECT pg_advisory_xact_lock(7283649501)", logger: self.logger)
            let rows = try await connection.query(
                "SELECT value::text FROM chronicle_meta WHERE key = 'migration_version'", logger: self.logger)
            var current = 0
            for try await (text) in rows.decode(String.self) {
                current = Int(text.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))) ?? 0
            }
            guard current < Migrations.postgres.count else { return }
            for migration in Migrations.postgres[current...] {
                for statement in migration {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
            }
            var binds = PostgresBindings()
            binds.append(String(Migrations.postgres.count))
            _ = try await connection.query(PostgresQuery(
                unsafeSQL: """
                    INSERT INTO chronicle_meta (key, value) VALUES ('migration_version', $1::jsonb)
                    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
                    """, binds: binds), logger: self.logger)
        }
    }

    public func write(_ records: [StoredRecord]) async throws {
        let plan = dialect.plan(for: records, instanceID: instanceID)
        let statements = try plan.workflow.map(Self.query)
        let insert = plan.rows.isEmpty ? nil : PostgresEventInsert.query(for: plan.rows)
        let hasCalls = plan.rows.contains { $0.eventType == UsageRollup.callEventType }
        var runIDs: [UUID] = []
        var seen = Set<UUID>()
        for record in records {
            if let id = record.runID, seen.insert(id).inserted { runIDs.append(id) }
        }
        if statements.isEmpty, runIDs.isEmpty, !hasCalls, let insert {
            // One statement is atomic on its own: no BEGIN and COMMIT round trips.
            _ = try await client.query(insert, logger: logger)
            return
        }
        try await client.withTransaction(logger: logger) { connection in
            for statement in statements {
                _ = try await connection.query(statement, logger: self.logger)
            }
            if let insert {
                var inserted = Set<String>()
                for try await id in try await connection.query(insert, logger: self.logger).decode(String.self) {
                    inserted.insert(id)
                }
                // Only the calls stored now are added to the rollup: a replayed call was counted when first stored.
                for upsert in UsageRollup.upserts(plan.rows, insertedIDs: inserted, dialect: PostgresDialect()) {
                    _ = try await connection.query(try Self.query(upsert), logger: self.logger)
                }
            }
            for id in runIDs {
                var binds = PostgresBindings()
                binds.append("chronicle_run:\(id.uuidString.lowercased())")
                binds.append(id.uuidString.lowercased())
                _ = try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT pg_notify($1, ''), pg_notify('chronicle_runs', $2)", binds: binds),
                    logger: self.logger)
            }
        }
    }

    public func deleteExpired(before cutoff: Date, limit: Int) async throws -> Int {
        var deleted = 0
        for (table, column) in [("chronicle_events", "created_at"), ("chronicle_steps", "start_time"),
                                ("chronicle_runs", "updated_at")] {
            var binds = PostgresBindings()
            binds.append(SQLValue.milliseconds(cutoff))
            binds.append(Int64(limit))
            let rows = try await client.query(PostgresQuery(
                unsafeSQL: """
                    DELETE FROM \(table) WHERE id IN (SELECT id FROM \(table)
                      WHERE \(column) < TIMESTAMPTZ 'epoch' + $1::bigint * INTERVAL '1 millisecond' LIMIT $2) RETURNING 1
                    """,
                binds: binds), logger: logger)
            for try await _ in rows { deleted += 1 }
        }
        return deleted
    }

    /// Runs statements in one transaction (a configuration change and its audit row).
    func execute(inTransaction statements: [WorkflowStatement]) async throws {
        let queries = try statements.map(Self.query)
        try await client.withTransaction(logger: logger) { connection in
            for query in queries { _ = try await connection.query(query, logger: self.logger) }
        }
    }

    public func ping() async throws {
        _ = try await client.query("SELECT 1", logger: logger)
    }

    public func close() async throws {}

    // MARK: LogReader

    public func listRuns(_ query: ListQuery) async throws -> Page { try await selectRuns(query) }
    public func run(id: UUID) async throws -> JSONValue? { try await selectRun(id: id) }
    public func listCalls(_ query: ListQuery) async throws -> Page { try await selectCalls(query) }
    public func call(id: UUID) async throws -> JSONValue? { try await selectCall(id: id) }
    public func usage(_ query: UsageQuery) async throws -> UsageReport { try await selectUsage(query) }

    func fetchText(_ sql: String, _ values: [SQLValue]) async throws -> [[String: String]] {
        var result: [[String: String]] = []
        for try await row in try await client.query(try Self.query(WorkflowStatement(sql: sql, values: values)), logger: logger) {
            var values: [String: String] = [:]
            for cell in row {
                if let text = try cell.decode(String?.self) { values[cell.columnName] = text }
            }
            result.append(values)
        }
        return result
    }

    static func query(_ statement: WorkflowStatement) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: statement.values.count)
        for value in statement.values {
            switch value {
            case .null: binds.appendNull()
            case .int(let value): binds.append(value)
            case .double(let value): binds.append(value)
            case .text(let value): binds.append(value)
            case .bool(let value): binds.append(value)
            case .json(let value):
                if let value { binds.append(value) } else { binds.appendNull() }
            case .uuid(let value): binds.append(value)
            case .time(let value): binds.append(SQLValue.milliseconds(value))
            case .tags(let tags):
                if tags.isEmpty { binds.appendNull() } else { binds.append(tags) }
            }
        }
        return PostgresQuery(unsafeSQL: statement.sql, binds: binds)
    }
}

struct PostgresDialect: SQLDialect {
    func placeholder(_ index: Int, for value: SQLValue) -> String {
        switch value {
        case .json: return "$\(index)::jsonb"
        case .tags: return "$\(index)::text[]"
        case .uuid: return "$\(index)::uuid"
        // Whole milliseconds, exactly: the same resolution as SQLite, and page cursors compare exactly.
        case .time: return "(TIMESTAMPTZ 'epoch' + $\(index)::bigint * INTERVAL '1 millisecond')"
        default: return "$\(index)"
        }
    }
    let greatest = "GREATEST"
    let least = "LEAST"
    func mergePatch(_ target: String, _ patch: String) -> String { "chronicle_json_merge_patch(\(target), \(patch))" }
    let emptyObject = "'{}'::jsonb"
    func msText(_ column: String) -> String { "CAST(CAST(extract(epoch FROM \(column)) * 1000 AS bigint) AS text)" }
    func tagsText(_ column: String) -> String { "array_to_string(\(column), '|')" }
    func millisecondsBucket(_ column: String, width: Int64) -> String {
        "(CAST(floor(extract(epoch FROM \(column)) * 1000 / \(width)) AS bigint) * \(width))"
    }
}

/// A storage configuration or connection problem.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One insert of any number of `chronicle_events` rows: each column is bound as one array, and `unnest`
/// turns the arrays back into rows. The statement's text is the same for every batch, and the values cross
/// the wire without a placeholder per value.
enum PostgresEventInsert {
    /// Every array is `text[]`; each column casts its elements back to the type it stores, with the same
    /// conversions as the per-value placeholders of ``PostgresDialect``.
    static let sql: String = {
        let columns = EventColumns.columns
        let parameters = columns.indices.map { "$\($0 + 1)::text[]" }.joined(separator: ", ")
        let selected = columns.map { column -> String in
            let value = "u.\(column.name)"
            switch column.kind {
            case .text: return value
            case .json: return "\(value)::jsonb"
            case .uuid: return "\(value)::uuid"
            case .int: return "\(value)::bigint"
            case .bool: return "\(value)::boolean"
            case .double: return "\(value)::double precision"
            case .time: return "TIMESTAMPTZ 'epoch' + \(value)::bigint * INTERVAL '1 millisecond'"
            }
        }
        let names = EventColumns.names.joined(separator: ", ")
        return """
            INSERT INTO chronicle_events (\(names))
            SELECT \(selected.joined(separator: ", "))
            FROM unnest(\(parameters)) AS u(\(names))
            ON CONFLICT (id) DO NOTHING RETURNING CAST(id AS text)
            """
    }()

    static func query(for rows: [EventRow]) -> PostgresQuery {
        var columns = Array(repeating: NullableTextArray(), count: EventColumns.columns.count)
        for index in columns.indices { columns[index].elements.reserveCapacity(rows.count) }
        for row in rows {
            for (index, value) in EventColumns.values(row).enumerated() {
                columns[index].elements.append(text(value))
            }
        }
        var binds = PostgresBindings(capacity: columns.count)
        for column in columns { binds.append(column) }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// A value as the text its column's cast reads back to the same stored value.
    static func text(_ value: SQLValue) -> String? {
        switch value {
        case .null: return nil
        case .int(let value): return String(value)
        // The shortest text that reads back to the same double.
        case .double(let value): return value.description
        case .text(let value): return value
        case .bool(let value): return value ? "true" : "false"
        case .json(let value): return value
        case .uuid(let value): return value.uuidString
        case .time(let value): return String(SQLValue.milliseconds(value))
        case .tags(let tags): return tags.isEmpty ? nil : "{" + tags.map(arrayElement).joined(separator: ",") + "}"
        }
    }

    private static func arrayElement(_ tag: String) -> String {
        "\"" + tag.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

/// A one-dimensional `text[]` whose elements may be NULL, in the binary array format (postgres-nio's own
/// arrays take no NULL elements).
struct NullableTextArray: PostgresNonThrowingEncodable, PostgresDynamicTypeEncodable {
    var elements: [String?] = []

    static var psqlType: PostgresDataType { .textArray }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(Int32(elements.isEmpty ? 0 : 1))  // dimensions
        buffer.writeInteger(Int32(elements.contains(nil) ? 1 : 0))  // has NULL elements
        buffer.writeInteger(PostgresDataType.text.rawValue)  // element type
        guard !elements.isEmpty else { return }
        buffer.writeInteger(Int32(elements.count))  // length of the dimension
        buffer.writeInteger(Int32(1))  // its lower bound
        for element in elements {
            guard let element else {
                buffer.writeInteger(Int32(-1))
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(Int32(0))
            let written = buffer.writeString(element)
            buffer.setInteger(Int32(written), at: lengthIndex)
        }
    }
}
