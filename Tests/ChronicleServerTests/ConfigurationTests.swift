import ChronicleCore
import ChronicleServer
import ChronicleStorage
import Foundation
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    /// Rust Chronicle's chronicle.toml parses: table-form and shorthand formats, aliases, keys, durations.
    @Test func parsesReferenceConfig() throws {
        let file = try ConfigFile.parse("""
            database = "postgresql://user@localhost/chronicle"
            port = 8000
            host = "0.0.0.0"
            default_timeout = { secs = 30, nanos = 0 }
            stream_idle_timeout = "90s"

            [[providers]]
            name = "local-vllm"
            url = "http://localhost:8000/v1/chat/completions"
            prefix = "vllm/"
            api_key = "VLLM_KEY"
            api_key_source = "env"
            headers = { "x-team" = "research" }
            format = { type = "open_ai", transforms = { supports_message_name = false, system_in_messages = true, strip_model_prefix = "vllm/" } }

            [[providers]]
            name = "other"
            url = "http://localhost:9000/v1/chat/completions"
            format = "openai"

            [[aliases]]
            name = "smart"
            random_order = true
            models = [{ model = "gpt-4o", provider = "openai", api_key_name = "team" }]

            [[api_keys]]
            name = "team"
            source = "env"
            value = "TEAM_OPENAI_KEY"
            """)
        #expect(file.database == "postgresql://user@localhost/chronicle")
        #expect(file.port == 8000)
        #expect(file.gateway.defaultTimeout == .seconds(30))
        #expect(file.gateway.streamIdleTimeout == .seconds(90))
        #expect(file.gateway.providers.count == 2)
        let vllm = file.gateway.providers[0]
        #expect(vllm.key == .environment("VLLM_KEY"))
        #expect(vllm.headers == ["x-team": "research"])
        #expect(vllm.format == .openAI(OpenAIFormatTransforms(supportsMessageName: false, stripModelPrefix: "vllm/")))
        #expect(file.gateway.providers[1].format == .openAI(OpenAIFormatTransforms()))
        #expect(file.gateway.aliases.first?.randomOrder == true)
        #expect(file.gateway.apiKeys.first?.key == .environment("TEAM_OPENAI_KEY"))
    }

    /// default_timeout takes milliseconds, duration strings or Rust Chronicle's table.
    @Test(arguments: [("1500", Duration.milliseconds(1500)), ("\"30s\"", .seconds(30)), ("\"2m\"", .seconds(120)),
                      ("\"250ms\"", .milliseconds(250)), ("[5, 0]", .seconds(5))])
    func durations(text: String, expected: Duration) throws {
        #expect(try ConfigFile.parse("default_timeout = \(text)").gateway.defaultTimeout == expected)
    }

    /// `upstream_http_client` picks the transport; a later file's choice wins; a bad value names the option.
    @Test func upstreamHTTPClientOption() throws {
        #expect(try ConfigFile.parse("port = 1").gateway.upstreamHTTPClient == nil)
        var merged = try ConfigFile.parse(#"upstream_http_client = "async-http-client""#).gateway
        #expect(merged.upstreamHTTPClient == .asyncHTTPClient)
        merged.merge(try ConfigFile.parse(#"upstream_http_client = "nio""#).gateway)
        #expect(merged.upstreamHTTPClient == .nio)
        merged.merge(try ConfigFile.parse("port = 2").gateway)
        #expect(merged.upstreamHTTPClient == .nio, "a file that does not set it keeps the earlier choice")
        do {
            _ = try ConfigFile.parse(#"upstream_http_client = "curl""#)
            Issue.record("an unknown transport was accepted")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("upstream_http_client"))
            #expect(error.description.contains("async-http-client"))
        }
    }

    /// Bad files say where the problem is.
    @Test func badFiles() {
        #expect(throws: ConfigurationError.self) { try ConfigFile.parse("default_timeout = \"soon\"") }
        #expect(throws: ConfigurationError.self) { try ConfigFile.parse("port = [") }
        #expect(throws: ConfigurationError.self) {
            try ConfigFile.parse("[[providers]]\nname = \"x\"\nurl = \"http://x\"\nformat = \"smoke-signals\"")
        }
    }

    /// Flags beat environment beat files, with or without .env; server URLs are not path-joined.
    @Test func precedence() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chronicle.toml")
        try "port = 1000\nhost = \"::1\"\ndatabase = \"data/chronicle.db\"\n".write(to: config, atomically: true, encoding: .utf8)

        let fromFile = try ServerSettings.load(overrides: .init(configPath: directory.path, loadDotenv: false),
                                               environment: { _ in nil })
        #expect(fromFile.port == 1000)
        #expect(fromFile.host == "::1")
        #expect(fromFile.database == directory.appendingPathComponent("data/chronicle.db").path)

        let env: @Sendable (String) -> String? = { ["PORT": "2000", "DATABASE_URL": "postgres://db/x"][$0] }
        let fromEnv = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false), environment: env)
        #expect(fromEnv.port == 2000)
        #expect(fromEnv.database == "postgres://db/x")

        let fromFlags = try ServerSettings.load(
            overrides: .init(configPath: config.path, host: "127.0.0.2", port: 3000, database: "sqlite://x.db", loadDotenv: false),
            environment: env)
        #expect(fromFlags.port == 3000)
        #expect(fromFlags.host == "127.0.0.2")
        #expect(fromFlags.database == "sqlite://x.db")

        try "database = \"postgresql://u@h/db\"\n".write(to: config, atomically: true, encoding: .utf8)
        let url = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false), environment: { _ in nil })
        #expect(url.database == "postgresql://u@h/db")
    }

    /// Discovery reads global then directory configs root-to-leaf, each once; no config means defaults.
    @Test func discovery() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-discovery-\(UUID())")
        let inner = root.appendingPathComponent("a/b")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try "port = 1\n".write(to: root.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)
        try "port = 2\n".write(to: inner.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)
        let settings = try ServerSettings.load(
            overrides: .init(loadDotenv: false), environment: { _ in nil }, currentDirectory: inner.path,
            homeDirectory: root.appendingPathComponent("home").path)
        #expect(settings.port == 2)
        #expect(settings.configFiles.count == 2)

        let empty = try ServerSettings.load(overrides: .init(loadDotenv: false), environment: { _ in nil },
                                            currentDirectory: "/", homeDirectory: "/nonexistent")
        #expect(empty.port == 9782)
        #expect(empty.host == "127.0.0.1")
    }

    /// Later files win by one rule: a scalar a later file sets replaces the earlier value, `false` and `0`
    /// included; a provider, alias, API key or gateway key replaces the earlier one of its name in place;
    /// other lists concatenate.
    @Test func laterFilesWin() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-precedence-\(UUID())")
        let inner = root.appendingPathComponent("project")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try """
            trace_payloads = true
            log_to_database = true
            retention_days = 30
            default_timeout = "30s"
            [security]
            allow_client_provider_keys = true
            cors_origins = ["https://a.example"]
            [[providers]]
            name = "shared"
            url = "http://outer.example/v1/chat/completions"
            [[providers]]
            name = "outer-only"
            url = "http://outer-only.example/v1/chat/completions"
            [[aliases]]
            name = "fast"
            models = [{ model = "outer-model", provider = "openai" }]
            [[api_keys]]
            name = "team"
            source = "literal"
            value = "outer-value"
            [[gateway_keys]]
            name = "app"
            key = "outer-gateway-key-0123456789"
            """.write(to: root.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)
        try """
            trace_payloads = false
            log_to_database = false
            retention_days = 0
            [security]
            allow_client_provider_keys = false
            cors_origins = ["https://b.example"]
            [[providers]]
            name = "shared"
            url = "http://inner.example/v1/chat/completions"
            [[aliases]]
            name = "fast"
            models = [{ model = "inner-model", provider = "groq" }]
            [[api_keys]]
            name = "team"
            source = "literal"
            value = "inner-value"
            [[gateway_keys]]
            name = "app"
            key = "inner-gateway-key-0123456789"
            """.write(to: inner.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)

        let settings = try ServerSettings.load(
            overrides: .init(loadDotenv: false), environment: { _ in nil }, currentDirectory: inner.path,
            homeDirectory: root.appendingPathComponent("home").path)
        #expect(settings.configFiles.count == 2)
        #expect(settings.gateway.providers.map(\.name) == ["shared", "outer-only"])
        #expect(settings.gateway.providers.first?.url == "http://inner.example/v1/chat/completions")
        #expect(settings.gateway.aliases == [AliasConfig(name: "fast", models: [AliasModel(model: "inner-model", provider: "groq")])])
        #expect(settings.gateway.apiKeys == [APIKeyConfig(name: "team", source: "literal", value: "inner-value")])
        #expect(settings.gateway.tracePayloads == false)
        #expect(settings.gateway.defaultTimeout == .seconds(30))
        #expect(settings.logToDatabase == false)
        #expect(settings.storage.retentionDays == 0)
        #expect(settings.security.allowClientProviderKeys == false)
        #expect(settings.security.corsOrigins == ["https://a.example", "https://b.example"])
        #expect(settings.security.gatewayKeys.map(\.name) == ["app"])
        #expect(settings.security.gatewayKeys.first?.digest == KeyDigest(of: "inner-gateway-key-0123456789"))
    }

    /// A gateway key in `CHRONICLE_GATEWAY_KEYS` replaces a file's key of the same name (the environment
    /// beats files); two keys of one name within one source are still refused.
    @Test func environmentGatewayKeyReplacesFileKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-keys-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chronicle.toml")
        try """
            [[gateway_keys]]
            name = "team"
            key = "file-key-0123456789"
            requests_per_minute = 5
            [[gateway_keys]]
            name = "other"
            key = "other-key-0123456789"
            """.write(to: config, atomically: true, encoding: .utf8)
        let env: @Sendable (String) -> String? = { ["CHRONICLE_GATEWAY_KEYS": "team:env-key-0123456789"][$0] }
        let settings = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false), environment: env)
        #expect(settings.security.gatewayKeys.map(\.name) == ["team", "other"])
        #expect(settings.security.gatewayKeys.first?.digest == KeyDigest(of: "env-key-0123456789"))
        #expect(settings.security.gatewayKeys.first?.requestsPerMinute == nil)

        let twice: @Sendable (String) -> String? = { ["CHRONICLE_GATEWAY_KEYS": "a:key-one-0123456789,a:key-two-0123456789"][$0] }
        #expect(throws: ConfigurationError.self) {
            try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false), environment: twice)
        }
        try """
            [[gateway_keys]]
            name = "team"
            key = "file-key-0123456789"
            [[gateway_keys]]
            name = "team"
            key = "file-key-9876543210"
            """.write(to: config, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) {
            try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false), environment: { _ in nil })
        }
    }

    /// Relative SQLite paths in a file, bare or in a `sqlite:` / `sqlite://` URL, and `spill_dir` are relative to
    /// the file; the same values from the environment or a flag stay relative to the working directory.
    @Test(arguments: [("data/x.db", "{dir}/data/x.db"), ("sqlite://data/x.db", "sqlite://{dir}/data/x.db"),
                      ("sqlite:x.db?mode=rwc", "sqlite:{dir}/x.db?mode=rwc"), ("sqlite:///abs/x.db", "sqlite:///abs/x.db"),
                      ("/abs/x.db", "/abs/x.db"), ("sqlite::memory:", "sqlite::memory:"),
                      ("postgres://u@h/db", "postgres://u@h/db")])
    func fileRelativePaths(value: String, expected: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-paths-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chronicle.toml")
        try "database = \"\(value)\"\nspill_dir = \"spill\"\n".write(to: config, atomically: true, encoding: .utf8)

        let settings = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false),
                                               environment: { _ in nil }, currentDirectory: "/elsewhere")
        #expect(settings.database == expected.replacingOccurrences(of: "{dir}", with: directory.path))
        #expect(settings.storage.spillDirectory == directory.appendingPathComponent("spill").path)
        if expected.contains("{dir}") {
            guard case .sqlite(let path) = try DatabaseLocation(settings.database ?? "") else {
                Issue.record("not a SQLite location"); return
            }
            #expect(path.hasPrefix(directory.path + "/"))
        }

        let env: @Sendable (String) -> String? = { ["DATABASE_URL": value][$0] }
        let fromEnv = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false), environment: env)
        #expect(fromEnv.database == value)
        let fromFlag = try ServerSettings.load(
            overrides: .init(configPath: config.path, database: value, loadDotenv: false), environment: { _ in nil })
        #expect(fromFlag.database == value)
    }

    /// The crash journal is on by default; `log_journal_path` is relative to the file, and a later file's
    /// `log_journal = false` turns it off.
    @Test func journalSettings() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-journal-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(ServerSettings().storage.journal)
        #expect(ServerSettings().storage.journalPath == nil)
        let config = directory.appendingPathComponent("chronicle.toml")
        try "log_journal_path = \"state/j\"\n".write(to: config, atomically: true, encoding: .utf8)
        let settings = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false),
                                               environment: { _ in nil }, currentDirectory: "/elsewhere")
        #expect(settings.storage.journal)
        #expect(settings.storage.journalPath == directory.appendingPathComponent("state/j").path)
        try "log_journal = false\n".write(to: config, atomically: true, encoding: .utf8)
        let off = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false),
                                          environment: { _ in nil })
        #expect(!off.storage.journal)
    }

    /// A missing explicit config is an error naming the path.
    @Test func missingExplicitConfig() {
        #expect(throws: ConfigurationError.self) {
            try ServerSettings.load(overrides: .init(configPath: "/nonexistent/chronicle.toml"), environment: { _ in nil })
        }
    }
}

@Suite("Configuration: retry table")
struct RetryConfigurationTests {
    /// A `[retry]` table sets the default retry options.
    @Test func retryTable() throws {
        let file = try ConfigFile.parse("[retry]\nmax_tries = 2\ninitial_backoff = 50\nincrease = { type = \"constant\" }\n")
        #expect(file.gateway.retry == RetryOptions(initialBackoff: .milliseconds(50), increase: .constant, maxTries: 2))
    }
}
