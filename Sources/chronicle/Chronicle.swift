import ArgumentParser
import ChronicleServer
import ChronicleCore
import ChronicleStorage
import Foundation

@main
struct Chronicle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chronicle",
        abstract: "An OpenAI-compatible LLM gateway that records every call.",
        version: ChronicleServer.version,
        subcommands: [Serve.self, Prices.self, Usage.self, Keys.self, Providers.self, Aliases.self],
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

/// `chronicle prices [filter]`: the price table calls are priced with (bundled, with the configuration's
/// `[[prices]]` on top).
struct Prices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the price table (USD per million tokens), bundled prices with chronicle.toml's [[prices]].")

    @Argument(help: "Show only providers or models containing this text.")
    var filter: String?

    @Option(name: [.short, .long], help: "A chronicle.toml file, or a directory holding one (env CHRONICLE_CONFIG).")
    var config: String?

    func run() async throws {
        let settings: ServerSettings
        do {
            settings = try ServerSettings.load(overrides: .init(configPath: config))
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        print(settings.cost.priceTable.listing(filter: filter), terminator: "")
    }
}

/// `chronicle usage`: the usage report of `GET /v1/usage`, read from the database directly (the one the
/// configuration or `--db` names), so it works whether or not a server runs.
struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show requests, tokens, cost and latency per group, read from the database.")

    @Option(help: "Start: RFC 3339, Unix milliseconds, or a span before now such as 24h or 7d.")
    var since = "24h"

    @Option(help: "End (default now), in the same forms as --since.")
    var until: String?

    @Option(help: "Group by any of model, provider, application, environment, user_id, gateway_key, run_id (comma-separated).")
    var by: String?

    @Option(help: "Split into buckets: hour, day or none.")
    var interval = "none"

    @Flag(help: "Print the JSON of GET /v1/usage instead of a table.")
    var json = false

    @Option(name: [.short, .long], help: "A chronicle.toml file, or a directory holding one (env CHRONICLE_CONFIG).")
    var config: String?

    @Option(help: "A SQLite path or sqlite:// URL, or a postgres:// URL (env DATABASE_URL; default ./chronicle.db).")
    var db: String?

    func run() async throws {
        let now = Date()
        guard let start = UsageQuery.parseTime(since, now: now) else {
            throw ValidationError("--since must be an RFC 3339 time, Unix milliseconds, or a span such as 7d")
        }
        let end = try until.map { text -> Date in
            guard let date = UsageQuery.parseTime(text, now: now) else {
                throw ValidationError("--until must be an RFC 3339 time, Unix milliseconds, or a span such as 1d")
            }
            return date
        } ?? now
        guard start < end else { throw ValidationError("--since must be before --until") }
        var query = UsageQuery(since: start, until: end)
        do { query.groupBy = try by.map(UsageQuery.parseGroupBy) ?? [] } catch let error as InvalidQuery {
            throw ValidationError("--by: \(error.description)")
        }
        switch interval {
        case "none": query.interval = nil
        case "hour": query.interval = .hour
        case "day": query.interval = .day
        default: throw ValidationError("--interval must be hour, day or none")
        }
        let settings: ServerSettings
        do {
            settings = try ServerSettings.load(overrides: .init(configPath: config, database: db))
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        let report: UsageReport
        switch try DatabaseLocation(settings.database ?? "chronicle.db") {
        case .sqlite(let path):
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("No database at \(path)") }
            let store = try await SQLiteLogStore.open(path: path)
            defer { Task { try? await store.close() } }
            try await store.migrate()
            report = try await store.usage(query)
        case .postgres(let url):
            let store = try PostgresLogStore(url: url, maxConnections: 1)
            let pool = Task { try await store.run() }
            defer { pool.cancel() }
            try await store.migrate()
            report = try await store.usage(query)
        }
        if json {
            print(String(decoding: try JSONCoding.encodeBytes(report.json), as: UTF8.self))
        } else {
            print(report.table(), terminator: "")
        }
    }
}
