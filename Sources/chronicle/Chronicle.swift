import ArgumentParser
import ChronicleServer
import ChronicleStorage

@main
struct Chronicle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chronicle",
        abstract: "An OpenAI-compatible LLM gateway that records every call.",
        version: ChronicleServer.version,
        subcommands: [Serve.self, Keys.self, Providers.self, Aliases.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway server (the default).")

    @Option(name: [.short, .long], help: "A chronicle.toml file, or a directory holding one (env CHRONICLE_CONFIG).")
    var config: String?

    @Option(help: "The address to bind (env HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "The port to listen on (env PORT; default 9782).")
    var port: Int?

    @Option(help: "A SQLite path or sqlite:// URL (relative to the working directory), or a postgres:// URL (env DATABASE_URL; default ./chronicle.db).")
    var db: String?

    @Flag(name: .customLong("no-dotenv"), help: "Do not load .env files.")
    var noDotenv = false

    @Flag(help: "Serve on a non-loopback address without gateway keys (only behind something that authenticates).")
    var allowUnauthenticated = false

    func run() async throws {
        MemoryTuning.apply()
        let overrides = ServerSettings.Overrides(
            configPath: config, host: host, port: port, database: db, loadDotenv: !noDotenv,
            allowUnauthenticated: allowUnauthenticated)
        do {
            try await ChronicleServer.run(overrides: overrides)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        } catch let error as StorageError {
            throw ValidationError(error.description)
        }
    }
}
