import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Logging
import PostgresNIO
import SQLiteNIO
import Testing

/// The backends every storage test runs against.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, postgres
    var description: String { rawValue }

    /// Both, except that PostgreSQL is left out when no server is configured outside CI.
    static var available: [Backend] {
        if TestPostgres.url == nil && ProcessInfo.processInfo.environment["CI"] == nil { return [.sqlite] }
        return [.sqlite, .postgres]
    }
}

enum TestPostgres {
    /// `CHRONICLE_TEST_POSTGRES_URL`, set by scripts/test.sh. In CI a missing server is a failure, not a skip.
    static let url = ProcessInfo.processInfo.environment["CHRONICLE_TEST_POSTGRES_URL"]

    static func adminURL() throws -> String {
        guard let url else {
            throw StorageError("CHRONICLE_TEST_POSTGRES_URL is not set; run scripts/start-postgres.sh")
        }
        return url
    }

    /// The URL of `database` on the test server.
    static func url(database: String) throws -> String {
        var components = URLComponents(string: try adminURL())!
        components.path = "/" + database
        return components.string!
    }
}

/// A fresh database of one backend, with helpers to read rows back as text.
final class TestDatabase: Sendable {
    let backend: Backend
    let store: any LogStore
    private let postgresTask: Task<Void, Never>?
    private let adminClient: PostgresClient?
    private let adminTask: Task<Void, Never>?
    let databaseName: String
    let directory: URL

    private init(backend: Backend, store: any LogStore, postgresTask: Task<Void, Never>?, adminClient: PostgresClient?,
                 adminTask: Task<Void, Never>?, databaseName: String, directory: URL) {
        self.backend = backend
        self.store = store
        self.postgresTask = postgresTask
        self.adminClient = adminClient
        self.adminTask = adminTask
        self.databaseName = databaseName
        self.directory = directory
    }

    static func make(_ backend: Backend, migrate: Bool = true) async throws -> TestDatabase {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-test-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let name = "chronicle_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let database: TestDatabase
        switch backend {
        case .sqlite:
            let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
            database = TestDatabase(backend: backend, store: store, postgresTask: nil, adminClient: nil, adminTask: nil,
                                    databaseName: name, directory: directory)
        case .postgres:
            var logger = Logger(label: "test-postgres")
            logger.logLevel = .critical
            let admin = PostgresClient(configuration: try PostgresLogStore.configuration(from: try TestPostgres.adminURL()),
                                       backgroundLogger: logger)
            let adminTask = Task { await admin.run() }
            _ = try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            let store = try PostgresLogStore(url: try TestPostgres.url(database: name), maxConnections: 4, logger: logger)
            let task = Task { _ = try? await store.run() }
            database = TestDatabase(backend: backend, store: store, postgresTask: task, adminClient: admin,
                                    adminTask: adminTask, databaseName: name, directory: directory)
        }
        if migrate { try await database.store.migrate() }
        return database
    }

    func close() async {
        try? await store.close()
        postgresTask?.cancel()
        if let adminClient {
            _ = try? await adminClient.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)"))
        }
        adminTask?.cancel()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs an admin statement on the test server (PostgreSQL only).
    func admin(_ sql: String) async throws {
        guard let adminClient else { return }
        _ = try await adminClient.query(PostgresQuery(unsafeSQL: sql))
    }

    /// A single text value from the admin connection (PostgreSQL only).
    func adminScalar(_ sql: String) async throws -> String? {
        guard let adminClient else { return nil }
        for try await row in try await adminClient.query(PostgresQuery(unsafeSQL: sql)) {
            return try row.decode(String?.self)
        }
        return nil
    }

    /// Rows as column name → text (NULL → nil). Write queries whose columns are `CAST(… AS text)`.
    func rows(_ sql: String) async throws -> [[String: String?]] {
        switch store {
        case let sqlite as SQLiteLogStore:
            return try await sqlite.query(sql).map { row in
                Dictionary(uniqueKeysWithValues: row.columns.map { column in
                    (column.name, Self.text(column.data))
                })
            }
        case let postgres as PostgresLogStore:
            var result: [[String: String?]] = []
            for try await row in try await postgres.client.query(PostgresQuery(unsafeSQL: sql)) {
                var values: [String: String?] = [:]
                for cell in row {
                    values[cell.columnName] = try cell.decode(String?.self)
                }
                result.append(values)
            }
            return result
        default:
            return []
        }
    }

    private static func text(_ data: SQLiteData) -> String? {
        switch data {
        case .null: return nil
        case .text(let text): return text
        case .integer(let value): return String(value)
        case .float(let value): return String(value)
        case .blob(let buffer): return String(buffer: buffer)
        }
    }

    func scalar(_ sql: String) async throws -> String? {
        try await rows(sql).first?.values.first ?? nil
    }

    /// An expression giving a timestamp column as Unix milliseconds text.
    func ms(_ column: String) -> String {
        backend == .postgres
            ? "CAST(CAST(extract(epoch FROM \(column)) * 1000 AS bigint) AS text) AS \(column)"
            : "CAST(\(column) AS text) AS \(column)"
    }

    /// An expression giving a tags column as `a|b` text.
    func tags(_ column: String) -> String {
        backend == .postgres ? "array_to_string(\(column), '|') AS \(column)" : "\(column) AS \(column)"
    }
}

func json(_ text: String?) -> JSONValue? {
    guard let text else { return nil }
    return try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8))
}

func time(_ seconds: Double) -> Date { Date(timeIntervalSince1970: seconds) }
