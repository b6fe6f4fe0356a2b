import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

/// The Rust Chronicle's version-3 schema, as its migrations create it (Tests/Fixtures/schema).
enum RustSchema {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/schema")

    /// The fixture's statements, without comments.
    static func statements(_ backend: Backend) throws -> [String] {
        let file = backend == .sqlite ? "rust-v3-sqlite.sql" : "rust-v3-postgresql.sql"
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return text.split(separator: "\n").filter { !$0.hasPrefix("--") }.joined(separator: "\n")
            .components(separatedBy: ";")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
    }
}

/// Values as both backends print them: JSON compared as JSON, booleans as booleans.
func sameValue(_ actual: String?, _ expected: String?) -> Bool {
    guard let actual, let expected else { return actual == expected }
    if actual == expected { return true }
    let truths: Set<String> = ["1", "true", "t"], falsehoods: Set<String> = ["0", "false", "f"]
    if truths.contains(actual) && truths.contains(expected) { return true }
    if falsehoods.contains(actual) && falsehoods.contains(expected) { return true }
    if let left = json(actual), let right = json(expected) { return left == right }
    return false
}

@Suite("Schema: upgrades and constraints")
struct SchemaTests {
    static let event1 = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    static let event2 = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"
    static let run1 = "0190a1b2-c3d4-7e5f-8a9b-000000000001"
    static let run2 = "0190a1b2-c3d4-7e5f-8a9b-000000000002"
    static let stepA = "0190a1b2-c3d4-7e5f-8a9b-0000000000a1"
    static let stepB = "0190a1b2-c3d4-7e5f-8a9b-0000000000a2"
    static let plan = "0190a1b2-c3d4-7e5f-8a9b-0000000000f1"

    /// Rows in every table of a version-3 database, written as the Rust Chronicle wrote them.
    static func rows(_ backend: Backend) -> [String] {
        let sqlite = backend == .sqlite
        func at(_ seconds: Int) -> String { sqlite ? "\(seconds)" : "to_timestamp(\(seconds))" }
        func tags(_ values: String) -> String { sqlite ? "'\(values)'" : "string_to_array('\(values)', '|')" }
        let planID = sqlite ? "1" : "'\(plan)'"
        return [
            sqlite
                ? "INSERT INTO chronicle_pricing_plans VALUES (1, 2, 1717000000, 1718000000, 0.5, 1.5, 0.01)"
                : "INSERT INTO chronicle_pricing_plans VALUES ('\(plan)', NULL, '2024-05-29', '2024-06-10', 0.5, 1.5, 0.01)",
            """
            INSERT INTO chronicle_events (id, event_type, organization_id, project_id, user_id, chat_request,
              chat_response, error, provider, model, application, environment, request_organization_id,
              request_project_id, request_user_id, workflow_id, workflow_name, run_id, step_id, step_index, prompt_id,
              prompt_version, meta, response_meta, retries, rate_limited, request_latency_ms, total_latency_ms,
              pricing_plan, created_at)
            VALUES ('\(event1)', 'chronicle_llm_request', 'org', 'proj', 'user', '{"model":"groq/llama3"}',
              '{"id":"chatcmpl-1"}', 'null', 'groq', 'llama3-8b-8192', 'app', 'prod', 'req-org', 'req-proj',
              'req-user', 'wf', 'a workflow', '\(run1)', '\(stepA)', 2, 'prompt', 3, '{"k":"v"}', '{"load":5}', 1,
              true, 120, 125, \(planID), \(at(1_717_229_159)))
            """,
            """
            INSERT INTO chronicle_events (id, event_type, chat_request, model, meta, run_id, created_at)
            VALUES ('\(event2)', 'an_event', 'null', '', '{"some_data":true}', '\(run1)', \(at(1_717_229_160)))
            """,
            """
            INSERT INTO chronicle_custom_providers (id, name, label, url, api_key, api_key_source, format, headers, prefix)
            VALUES (1, 'vllm', 'vLLM', 'http://localhost:8000/v1', NULL, NULL, '"openai"', '{"x-team":"a"}', 'vllm/'),
                   (2, \(sqlite ? "'other'" : "NULL"), NULL, 'http://other/v1', 'OTHER_KEY', 'env', '"anthropic"', NULL, NULL)
            """,
            // Alias names were not unique in SQLite.
            "INSERT INTO chronicle_aliases (id, name, random_order) VALUES (1, 'fast', false), (2, \(sqlite ? "'fast'" : "'slow'"), true)",
            """
            INSERT INTO chronicle_alias_providers (id, alias_id, sort, model, provider, api_key_name)
            VALUES (1, 1, 0, 'llama3-8b', 'groq', 'groq_key'), (2, 1, 1, 'gpt-4o-mini', 'openai', NULL),
                   (3, 2, 0, 'claude', 'anthropic', NULL)
            """,
            "INSERT INTO chronicle_api_keys (id, name, source, value) VALUES (1, 'groq_key', 'env', 'GROQ_API_KEY')",
            """
            INSERT INTO chronicle_runs (id, name, description, application, environment, input, output, status,
              trace_id, span_id, tags, info, updated_at, created_at)
            VALUES ('\(run1)', 'a run', 'described', 'app', 'prod', '{"query":"abc"}', '{"result":"ok"}', 'finished',
              'trace', 'span', \(tags("tag1|tag2")), '{"info1":"value1"}', \(at(1_717_229_170)), \(at(1_717_229_150))),
                   ('\(run2)', \(sqlite ? "''" : "NULL"), NULL, NULL, NULL, NULL, NULL, 'started', NULL, NULL, NULL,
              NULL, \(at(1_717_229_180)), \(at(1_717_229_180)))
            """,
            """
            INSERT INTO chronicle_steps (id, run_id, type, parent_step, name, input, output, status, tags, info,
              span_id, start_time, end_time)
            VALUES ('\(stepA)', '\(run1)', 'llm', NULL, 'step a', '{"task":1}', '{"answer":2}', 'finished',
              \(tags("dag|node")), '{"model":"m"}', 'span-a', \(at(1_717_229_155)), \(at(1_717_229_165))),
                   ('\(stepB)', '\(run1)', 'tool', '\(stepA)', 'step b', NULL, NULL, 'started', NULL, NULL, NULL,
              \(at(1_717_229_160)), NULL)
            """,
        ]
    }

    /// Each table's rows after the upgrade, column by column (times in Unix milliseconds).
    static func expected(_ backend: Backend) -> [(table: String, columns: [String], rows: [[String?]])] {
        let sqlite = backend == .sqlite
        return [
            ("chronicle_pricing_plans",
             ["provider", "start_date", "end_date", "per_input_token", "per_output_token", "per_request"],
             [sqlite ? ["2", "1717000000", "1718000000", "0.5", "1.5", "0.01"]
                     : [nil, "2024-05-29", "2024-06-10", "0.5", "1.5", "0.01"]]),
            ("chronicle_events",
             ["id", "event_type", "organization_id", "project_id", "user_id", "chat_request", "chat_response", "error",
              "provider", "model", "application", "environment", "request_organization_id", "request_project_id",
              "request_user_id", "workflow_id", "workflow_name", "run_id", "step_id", "step_index", "prompt_id",
              "prompt_version", "meta", "response_meta", "retries", "rate_limited", "request_latency_ms",
              "total_latency_ms", "ms:created_at", "input_tokens", "output_tokens", "total_tokens", "cached_tokens",
              "reasoning_tokens", "http_status", "streamed", "overhead_ms", "gateway_key"],
             [[event1, "chronicle_llm_request", "org", "proj", "user", #"{"model":"groq/llama3"}"#,
               #"{"id":"chatcmpl-1"}"#, "null", "groq", "llama3-8b-8192", "app", "prod", "req-org", "req-proj",
               "req-user", "wf", "a workflow", run1, stepA, "2", "prompt", "3", #"{"k":"v"}"#, #"{"load":5}"#, "1",
               "true", "120", "125", "1717229159000", nil, nil, nil, nil, nil, nil, nil, nil, nil],
              // The empty model of a non-LLM event becomes NULL.
              [event2, "an_event", nil, nil, nil, "null", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
               run1, nil, nil, nil, nil, #"{"some_data":true}"#, nil, nil, nil, nil, nil, "1717229160000", nil, nil,
               nil, nil, nil, nil, nil, nil, nil]]),
            ("chronicle_custom_providers",
             ["id", "name", "label", "url", "api_key", "api_key_source", "format", "headers", "prefix"],
             [["1", "vllm", "vLLM", "http://localhost:8000/v1", nil, nil, #""openai""#, #"{"x-team":"a"}"#, "vllm/"],
              // A provider without a name gets one, so that the column can be NOT NULL.
              ["2", sqlite ? "other" : "unnamed-2", nil, "http://other/v1", "OTHER_KEY", "env", #""anthropic""#, nil, nil]]),
            // A duplicate alias name is made unique; the oldest keeps it.
            ("chronicle_aliases", ["id", "name", "random_order"],
             [["1", "fast", "false"], ["2", sqlite ? "fast#2" : "slow", "true"]]),
            ("chronicle_alias_providers", ["id", "alias_id", "sort", "model", "provider", "api_key_name"],
             [["1", "1", "0", "llama3-8b", "groq", "groq_key"], ["2", "1", "1", "gpt-4o-mini", "openai", nil],
              ["3", "2", "0", "claude", "anthropic", nil]]),
            ("chronicle_api_keys", ["id", "name", "source", "value"], [["1", "groq_key", "env", "GROQ_API_KEY"]]),
            ("chronicle_runs",
             ["id", "name", "description", "application", "environment", "input", "output", "status", "trace_id",
              "span_id", "tags:tags", "info", "ms:updated_at", "ms:created_at"],
             [[run1, "a run", "described", "app", "prod", #"{"query":"abc"}"#, #"{"result":"ok"}"#, "finished",
               "trace", "span", "tag1|tag2", #"{"info1":"value1"}"#, "1717229170000", "1717229150000"],
              // A run without a name has the empty name.
              [run2, "", nil, nil, nil, nil, nil, "started", nil, nil, nil, nil, "1717229180000", "1717229180000"]]),
            ("chronicle_steps",
             ["id", "run_id", "type", "parent_step", "name", "input", "output", "status", "tags:tags", "info",
              "span_id", "ms:start_time", "ms:end_time", "error", "ms:updated_at"],
             [[stepA, run1, "llm", nil, "step a", #"{"task":1}"#, #"{"answer":2}"#, "finished", "dag|node",
               #"{"model":"m"}"#, "span-a", "1717229155000", "1717229165000", nil, "1717229165000"],
              [stepB, run1, "tool", stepA, "step b", nil, nil, "started", nil, nil, nil, "1717229160000", nil, nil,
               "1717229160000"]]),
        ]
    }

    /// A database the Rust Chronicle left at version 3, with rows in every table, is upgraded in place:
    /// every row is still there, converted where the schema changed.
    @Test(arguments: Backend.available)
    func upgradeFromRustVersion3(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend, migrate: false)
        for statement in try RustSchema.statements(backend) + Self.rows(backend) {
            _ = try await db.rows(statement)
        }
        try await db.store.migrate()
        let migrations = backend == .sqlite ? Migrations.sqlite : Migrations.postgres
        #expect(try await db.scalar("SELECT CAST(value AS text) FROM chronicle_meta WHERE key = 'migration_version'")
                == String(migrations.count))
        for (table, columns, expected) in Self.expected(backend) {
            let list = columns.map { column -> String in
                if column.hasPrefix("ms:") { return db.ms(String(column.dropFirst(3))) }
                if column.hasPrefix("tags:") { return db.tags(String(column.dropFirst(5))) }
                return "CAST(\(column) AS text) AS \(column)"
            }.joined(separator: ", ")
            let order = table.hasSuffix("events") || table.hasSuffix("runs") || table.hasSuffix("steps") ? "CAST(id AS text)" : "id"
            let rows = try await db.rows("SELECT \(list) FROM \(table) ORDER BY \(order)")
            #expect(rows.count == expected.count, "\(table)")
            for (row, expectedRow) in zip(rows, expected) {
                for (column, value) in zip(columns, expectedRow) {
                    let name = String(column.split(separator: ":").last ?? "")
                    let actual = row[name] ?? nil
                    #expect(sameValue(actual, value), "\(table).\(name): \(actual ?? "NULL") is not \(value ?? "NULL")")
                }
            }
        }
        // The upgraded database takes new rows next to the old ones and enforces the common constraints.
        try await db.store.write([StoredRecord(.call(sampleCall()))])
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "3")
        try await Self.expectSameConstraints(db)
        // Migrating again is a no-op.
        try await db.store.migrate()
        await db.close()
    }

    /// A new database enforces the same constraints on both backends.
    @Test(arguments: Backend.available)
    func sameConstraintsOnBothBackends(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        _ = try await db.rows("INSERT INTO chronicle_aliases (id, name, random_order) VALUES (1, 'fast', false)")
        _ = try await db.rows("""
            INSERT INTO chronicle_alias_providers (id, alias_id, sort, model, provider) VALUES (1, 1, 0, 'm', 'groq')
            """)
        try await Self.expectSameConstraints(db)
        await db.close()
    }

    /// Alias names are unique, provider and run names NOT NULL, and an alias's providers go with it.
    /// Expects alias 1 named `fast` with at least one provider row.
    static func expectSameConstraints(_ db: TestDatabase) async throws {
        let now = db.backend == .sqlite ? "0" : "now()"
        await #expect(throws: (any Error).self, "alias names are unique") {
            _ = try await db.rows("INSERT INTO chronicle_aliases (id, name, random_order) VALUES (100, 'fast', false)")
        }
        await #expect(throws: (any Error).self, "a provider has a name") {
            _ = try await db.rows("""
                INSERT INTO chronicle_custom_providers (id, name, url, format) VALUES (100, NULL, 'http://x', '"openai"')
                """)
        }
        await #expect(throws: (any Error).self, "a run has a name") {
            _ = try await db.rows("""
                INSERT INTO chronicle_runs (id, name, status, updated_at, created_at)
                VALUES ('0190a1b2-c3d4-7e5f-8a9b-0000000000ff', NULL, 'started', \(now), \(now))
                """)
        }
        _ = try await db.rows("DELETE FROM chronicle_aliases WHERE id = 1")
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_alias_providers WHERE alias_id = 1") == "0",
                "deleting an alias deletes its providers")
    }
}
