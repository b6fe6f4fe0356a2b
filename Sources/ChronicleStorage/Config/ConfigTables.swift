import ChronicleCore
import Foundation

/// What the configuration tables need from a backend: text rows and a transaction.
protocol ConfigTableDatabase: TextRowFetcher, ConfigStore {
    func execute(inTransaction statements: [WorkflowStatement]) async throws
    /// Whether a change also notifies other replicas (PostgreSQL).
    var notifiesConfigChanges: Bool { get }
}

extension SQLiteLogStore: ConfigTableDatabase {
    var notifiesConfigChanges: Bool { false }
}

extension PostgresLogStore: ConfigTableDatabase {
    var notifiesConfigChanges: Bool { true }
}

extension ConfigTableDatabase {
    /// `sql` with `?1`, `?2`, … replaced by the backend's placeholders.
    func statement(_ sql: String, _ values: [SQLValue]) -> WorkflowStatement {
        var text = sql
        // Highest first, so that `?1` never eats the front of `?10`.
        for index in stride(from: values.count, through: 1, by: -1) {
            text = text.replacingOccurrences(of: "?\(index)", with: sqlDialect.placeholder(index, for: values[index - 1]))
        }
        return WorkflowStatement(sql: text, values: values)
    }

    func rows(_ sql: String, _ values: [SQLValue] = []) async throws -> [[String: String]] {
        let statement = statement(sql, values)
        return try await fetchText(statement.sql, statement.values)
    }

    public func loadConfiguration() async throws -> StoredConfiguration {
        var configuration = StoredConfiguration()
        let decoder = JSONDecoder()
        // Later rows replace earlier ones of the same name: the Rust tables do not make names unique.
        for row in try await rows("""
            SELECT name, label, url, api_key, api_key_source, CAST(format AS text) AS format,
              CAST(headers AS text) AS headers, prefix, CAST(models AS text) AS models
            FROM chronicle_custom_providers ORDER BY id
            """) {
            guard let name = row["name"], let url = row["url"] else { continue }
            do {
                var provider = CustomProviderConfig(name: name, label: row["label"], url: url, apiKey: row["api_key"],
                                                    apiKeySource: row["api_key_source"], prefix: row["prefix"])
                if let format = row["format"] {
                    provider.format = try decoder.decode(ProviderFormat.self, from: Data(format.utf8))
                }
                if let headers = row["headers"], headers != "null" {
                    provider.headers = try decoder.decode([String: String].self, from: Data(headers.utf8))
                }
                if let models = row["models"], models != "null" {
                    provider.models = try decoder.decode([String].self, from: Data(models.utf8))
                }
                configuration.providers.removeAll { $0.name == name }
                configuration.providers.append(provider)
            } catch {
                configuration.problems.append("provider \"\(name)\" in chronicle_custom_providers: \(error)")
            }
        }

        var aliasNames: [String: String] = [:]
        var aliasOrder: [String] = []
        var aliases: [String: AliasConfig] = [:]
        for row in try await rows("""
            SELECT CAST(id AS text) AS id, name, CAST(random_order AS text) AS random_order
            FROM chronicle_aliases ORDER BY id
            """) {
            guard let id = row["id"], let name = row["name"] else { continue }
            aliasNames[id] = name
            if aliases[name] == nil { aliasOrder.append(name) }
            aliases[name] = AliasConfig(name: name, randomOrder: Self.truth(row["random_order"]), models: [])
        }
        for row in try await rows("""
            SELECT CAST(alias_id AS text) AS alias_id, model, provider, api_key_name
            FROM chronicle_alias_providers ORDER BY alias_id, sort, id
            """) {
            guard let id = row["alias_id"], let name = aliasNames[id], let model = row["model"],
                  let provider = row["provider"] else { continue }
            aliases[name]?.models.append(AliasModel(model: model, provider: provider, apiKeyName: row["api_key_name"]))
        }
        configuration.aliases = aliasOrder.compactMap { aliases[$0] }

        for row in try await rows("SELECT name, source, value FROM chronicle_api_keys ORDER BY id") {
            guard let name = row["name"] else { continue }
            configuration.apiKeys.removeAll { $0.name == name }
            configuration.apiKeys.append(APIKeyConfig(name: name, source: row["source"] ?? "", value: row["value"] ?? ""))
        }

        for row in try await rows("""
            SELECT name, key_sha256, CAST(requests_per_minute AS text) AS requests_per_minute,
              CAST(tokens_per_minute AS text) AS tokens_per_minute,
              CAST(max_concurrent_requests AS text) AS max_concurrent_requests,
              CAST(max_cost_usd_per_day AS text) AS max_cost_usd_per_day,
              CAST(max_cost_usd_per_month AS text) AS max_cost_usd_per_month,
              CAST(admin AS text) AS admin, CAST(created_at AS text) AS created_at
            FROM chronicle_gateway_keys ORDER BY name
            """) {
            guard let name = row["name"], let digest = row["key_sha256"] else { continue }
            configuration.gatewayKeys.append(StoredGatewayKey(
                name: name, keySHA256: digest,
                requestsPerMinute: row["requests_per_minute"].flatMap { Int($0) },
                tokensPerMinute: row["tokens_per_minute"].flatMap { Int($0) },
                maxConcurrentRequests: row["max_concurrent_requests"].flatMap { Int($0) },
                maxCostUSDPerDay: row["max_cost_usd_per_day"].flatMap { Double($0) },
                maxCostUSDPerMonth: row["max_cost_usd_per_month"].flatMap { Double($0) },
                admin: Self.truth(row["admin"]),
                createdAt: Date(timeIntervalSince1970: (row["created_at"].flatMap { Double($0) } ?? 0) / 1000)))
        }
        return configuration
    }

    public func apply(_ change: ConfigChange, audit: AuditEntry, at time: Date) async throws {
        var statements = try statements(for: change, at: time)
        statements.append(statement("""
            INSERT INTO chronicle_admin_audit (created_at, actor, action, kind, name, before, after)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """, [.int(SQLValue.milliseconds(time)), .text(audit.actor), .text(audit.action), .text(audit.kind),
                  .text(audit.name), .jsonValue(audit.before), .jsonValue(audit.after)]))
        if notifiesConfigChanges {
            // Delivered when the transaction commits, so a replica that reloads on it sees the change.
            statements.append(statement("SELECT pg_notify('\(configChangeChannel)', ?1)", [.text(audit.kind)]))
        }
        try await execute(inTransaction: statements)
    }

    public func auditTrail(limit: Int) async throws -> [JSONValue] {
        try await rows("""
            SELECT CAST(id AS text) AS id, CAST(created_at AS text) AS created_at, actor, action, kind, name,
              CAST(before AS text) AS before, CAST(after AS text) AS after
            FROM chronicle_admin_audit ORDER BY id DESC LIMIT ?1
            """, [.int(Int64(limit))]).map { row in
            func json(_ text: String?) -> JSONValue {
                guard let text, let value = try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8)) else { return .null }
                return value
            }
            let milliseconds = row["created_at"].flatMap { Double($0) } ?? 0
            return .object([
                "id": .integer(Int64(row["id"] ?? "0") ?? 0),
                "at": .string(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: milliseconds / 1000))),
                "actor": .string(row["actor"] ?? ""), "action": .string(row["action"] ?? ""),
                "kind": .string(row["kind"] ?? ""), "name": .string(row["name"] ?? ""),
                "before": json(row["before"]), "after": json(row["after"]),
            ])
        }
    }

    private func statements(for change: ConfigChange, at time: Date) throws -> [WorkflowStatement] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        switch change {
        case .setProvider(let provider):
            return [
                statement("DELETE FROM chronicle_custom_providers WHERE name = ?1", [.text(provider.name)]),
                statement("""
                    INSERT INTO chronicle_custom_providers (name, label, url, api_key, api_key_source, format, headers,
                      prefix, models)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                    """, [.text(provider.name), .text(provider.label), .text(provider.url), .text(provider.apiKey),
                          .text(provider.apiKeySource), .json(try json(provider.format)),
                          .json(try json(provider.headers)), .text(provider.prefix),
                          .json(try provider.models.map(json))]),
            ]
        case .removeProvider(let name):
            return [statement("DELETE FROM chronicle_custom_providers WHERE name = ?1", [.text(name)])]
        case .setAlias(let alias):
            var statements = removeAlias(alias.name)
            statements.append(statement("INSERT INTO chronicle_aliases (name, random_order) VALUES (?1, ?2)",
                                        [.text(alias.name), .bool(alias.randomOrder)]))
            for (index, model) in alias.models.enumerated() {
                statements.append(statement("""
                    INSERT INTO chronicle_alias_providers (alias_id, sort, model, provider, api_key_name)
                    SELECT id, ?1, ?2, ?3, ?4 FROM chronicle_aliases WHERE name = ?5
                    """, [.int(Int64(index)), .text(model.model), .text(model.provider), .text(model.apiKeyName),
                          .text(alias.name)]))
            }
            return statements
        case .removeAlias(let name):
            return removeAlias(name)
        case .setAPIKey(let key):
            return [
                statement("DELETE FROM chronicle_api_keys WHERE name = ?1", [.text(key.name)]),
                statement("INSERT INTO chronicle_api_keys (name, source, value) VALUES (?1, ?2, ?3)",
                          [.text(key.name), .text(key.source), .text(key.value)]),
            ]
        case .removeAPIKey(let name):
            return [statement("DELETE FROM chronicle_api_keys WHERE name = ?1", [.text(name)])]
        case .setGatewayKey(let key):
            return [
                statement("DELETE FROM chronicle_gateway_keys WHERE name = ?1", [.text(key.name)]),
                statement("""
                    INSERT INTO chronicle_gateway_keys (name, key_sha256, requests_per_minute, tokens_per_minute,
                      max_concurrent_requests, max_cost_usd_per_day, max_cost_usd_per_month, admin, created_at)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                    """, [.text(key.name), .text(key.keySHA256), .int(key.requestsPerMinute.map(Int64.init)),
                          .int(key.tokensPerMinute.map(Int64.init)), .int(key.maxConcurrentRequests.map(Int64.init)),
                          .double(key.maxCostUSDPerDay), .double(key.maxCostUSDPerMonth), .bool(key.admin),
                          .int(SQLValue.milliseconds(key.createdAt))]),
            ]
        case .removeGatewayKey(let name):
            return [statement("DELETE FROM chronicle_gateway_keys WHERE name = ?1", [.text(name)])]
        }
    }

    private func removeAlias(_ name: String) -> [WorkflowStatement] {
        [
            statement("DELETE FROM chronicle_alias_providers WHERE alias_id IN (SELECT id FROM chronicle_aliases WHERE name = ?1)",
                      [.text(name)]),
            statement("DELETE FROM chronicle_aliases WHERE name = ?1", [.text(name)]),
        ]
    }

    static func truth(_ text: String?) -> Bool {
        guard let text else { return false }
        return ["1", "t", "true"].contains(text.lowercased())
    }
}
