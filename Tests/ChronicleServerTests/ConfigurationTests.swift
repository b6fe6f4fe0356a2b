import ChronicleCore
import ChronicleServer
import Foundation
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    /// The reference's chronicle.toml parses: table-form and shorthand formats, aliases, keys, durations.
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

    /// default_timeout takes milliseconds, duration strings or the reference's table.
    @Test(arguments: [("1500", Duration.milliseconds(1500)), ("\"30s\"", .seconds(30)), ("\"2m\"", .seconds(120)),
                      ("\"250ms\"", .milliseconds(250)), ("[5, 0]", .seconds(5))])
    func durations(text: String, expected: Duration) throws {
        #expect(try ConfigFile.parse("default_timeout = \(text)").gateway.defaultTimeout == expected)
    }

    /// Bad files say where the problem is.
    @Test func badFiles() {
        #expect(throws: ConfigurationError.self) { try ConfigFile.parse("default_timeout = \"soon\"") }
        #expect(throws: ConfigurationError.self) { try ConfigFile.parse("port = [") }
        #expect(throws: ConfigurationError.self) {
            try ConfigFile.parse("[[providers]]\nname = \"x\"\nurl = \"http://x\"\nformat = \"smoke-signals\"")
        }
    }

    /// Flags beat environment beat files, with or without .env (gap 8); URLs are not path-joined (gap 7).
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
