import ChronicleCore
import Foundation
import TOMLKit
import ChronicleStorage

/// One `chronicle.toml`: server settings plus the gateway's routing configuration.
public struct ConfigFile: Sendable, Decodable {
    public var database: String?
    public var port: Int?
    public var host: String?
    public var dotenv: Bool?
    public var logToDatabase: Bool?
    /// Whether coding agents' sessions become runs (`agent_sessions`, default true).
    public var agentSessions: Bool?
    /// `trace`, `debug`, `info` (default), `notice`, `warning`, `error` or `critical`; `CHRONICLE_LOG` wins.
    public var logLevel: String?
    /// The largest request body accepted, in bytes (default 20 MB).
    public var maxBodySize: Int?
    /// This replica's name on call rows, spans and logs (`instance_id`; default host name and pid).
    public var instanceID: String?
    /// How often replicas sharing PostgreSQL exchange their limit counters (`fleet_sync_interval`).
    public var fleetSyncInterval: Duration?
    /// How often replicas sharing PostgreSQL read the gateway keys' budget spend (`budget_sync_interval`).
    public var budgetSyncInterval: Duration?
    public var storage: StorageSettings.FileValues
    public var gateway: GatewayConfiguration
    var gatewayKeys: [GatewayKeyConfig.FileValues]
    var security: SecuritySettings.FileValues?
    var limits: SecuritySettings.LimitValues?
    var telemetry: TelemetrySettings.FileValues?
    var prices: [CostSettings.PriceValues]
    var budgets: [CostSettings.BudgetValues]

    enum CodingKeys: String, CodingKey {
        case database, port, host, dotenv, providers, aliases, retry, security, limits, telemetry, prices, budgets
        case gatewayKeys = "gateway_keys"
        case tracePayloads = "trace_payloads"
        case logEmbeddingVectors = "log_embedding_vectors"
        case logToDatabase = "log_to_database"
        case agentSessions = "agent_sessions"
        case logLevel = "log_level"
        case maxBodySize = "max_body_size"
        case instanceID = "instance_id"
        case fleetSyncInterval = "fleet_sync_interval"
        case budgetSyncInterval = "budget_sync_interval"
        case apiKeys = "api_keys"
        case defaultTimeout = "default_timeout"
        case streamIdleTimeout = "stream_idle_timeout"
        case userAgent = "user_agent"
        case upstreamHTTPClient = "upstream_http_client"
        case retentionDays = "retention_days"
        case logBatchSize = "log_batch_size"
        case logFlushInterval = "log_flush_interval"
        case logMaxBufferedRecords = "log_max_buffered_records"
        case logMaxBufferedBytes = "log_max_buffered_bytes"
        case spillDirectory = "spill_dir"
        case logJournal = "log_journal"
        case logJournalPath = "log_journal_path"
        case databaseMaxConnections = "database_max_connections"
        case maxImageBytes = "max_image_bytes"
        case imageURLAllowList = "image_url_allowlist"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        database = try c.decodeIfPresent(String.self, forKey: .database)
        port = try c.decodeIfPresent(Int.self, forKey: .port)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        dotenv = try c.decodeIfPresent(Bool.self, forKey: .dotenv)
        logToDatabase = try c.decodeIfPresent(Bool.self, forKey: .logToDatabase)
        agentSessions = try c.decodeIfPresent(Bool.self, forKey: .agentSessions)
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel)
        maxBodySize = try c.decodeIfPresent(Int.self, forKey: .maxBodySize)
        instanceID = try c.decodeIfPresent(String.self, forKey: .instanceID)
        fleetSyncInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .fleetSyncInterval)?.duration
        budgetSyncInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .budgetSyncInterval)?.duration
        storage = StorageSettings.FileValues(
            retentionDays: try c.decodeIfPresent(Int.self, forKey: .retentionDays),
            batchSize: try c.decodeIfPresent(Int.self, forKey: .logBatchSize),
            flushInterval: try c.decodeIfPresent(ConfigDuration.self, forKey: .logFlushInterval)?.duration,
            maxBufferedRecords: try c.decodeIfPresent(Int.self, forKey: .logMaxBufferedRecords),
            maxBufferedBytes: try c.decodeIfPresent(Int.self, forKey: .logMaxBufferedBytes),
            spillDirectory: try c.decodeIfPresent(String.self, forKey: .spillDirectory),
            journal: try c.decodeIfPresent(Bool.self, forKey: .logJournal),
            journalPath: try c.decodeIfPresent(String.self, forKey: .logJournalPath),
            maxConnections: try c.decodeIfPresent(Int.self, forKey: .databaseMaxConnections))
        gateway = GatewayConfiguration(
            providers: try c.decodeIfPresent([CustomProviderConfig].self, forKey: .providers) ?? [],
            aliases: try c.decodeIfPresent([AliasConfig].self, forKey: .aliases) ?? [],
            apiKeys: try c.decodeIfPresent([APIKeyConfig].self, forKey: .apiKeys) ?? [],
            defaultTimeout: try c.decodeIfPresent(ConfigDuration.self, forKey: .defaultTimeout)?.duration,
            streamIdleTimeout: try c.decodeIfPresent(ConfigDuration.self, forKey: .streamIdleTimeout)?.duration,
            userAgent: try c.decodeIfPresent(String.self, forKey: .userAgent),
            retry: try c.decodeIfPresent(RetryOptions.self, forKey: .retry),
            tracePayloads: try c.decodeIfPresent(Bool.self, forKey: .tracePayloads))
        gateway.logEmbeddingVectors = try c.decodeIfPresent(Bool.self, forKey: .logEmbeddingVectors)
        if let kind = try c.decodeIfPresent(String.self, forKey: .upstreamHTTPClient) {
            guard let parsed = UpstreamHTTPClientKind(rawValue: kind) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .upstreamHTTPClient, in: c,
                    debugDescription: "must be \"nio\" or \"async-http-client\", not \"\(kind)\"")
            }
            gateway.upstreamHTTPClient = parsed
        }
        let maxImageBytes = try c.decodeIfPresent(Int.self, forKey: .maxImageBytes)
        let imageAllowList = try c.decodeIfPresent([String].self, forKey: .imageURLAllowList)
        if maxImageBytes != nil || imageAllowList != nil {
            if let maxImageBytes, maxImageBytes <= 0 {
                throw DecodingError.dataCorruptedError(forKey: .maxImageBytes, in: c, debugDescription: "must be positive")
            }
            var policy = ImageFetchPolicy()
            if let maxImageBytes { policy.maxBytes = maxImageBytes }
            if let imageAllowList { policy.allowList = imageAllowList }
            gateway.imageFetch = policy
        }
        gatewayKeys = try c.decodeIfPresent([GatewayKeyConfig.FileValues].self, forKey: .gatewayKeys) ?? []
        security = try c.decodeIfPresent(SecuritySettings.FileValues.self, forKey: .security)
        limits = try c.decodeIfPresent(SecuritySettings.LimitValues.self, forKey: .limits)
        telemetry = try c.decodeIfPresent(TelemetrySettings.FileValues.self, forKey: .telemetry)
        prices = try c.decodeIfPresent([CostSettings.PriceValues].self, forKey: .prices) ?? []
        budgets = try c.decodeIfPresent([CostSettings.BudgetValues].self, forKey: .budgets) ?? []
    }

    public init() {
        storage = StorageSettings.FileValues()
        gateway = GatewayConfiguration()
        gatewayKeys = []
        prices = []
        budgets = []
    }

    /// Parses a configuration file's text.
    public static func parse(_ text: String, path: String = "chronicle.toml") throws -> ConfigFile {
        do {
            return try TOMLDecoder().decode(ConfigFile.self, from: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError("\(path): \(error.description) at line \(error.source.begin.line)")
        } catch let error as DecodingError {
            throw ConfigurationError("\(path): \(describeDecodingError(error))")
        }
    }
}

/// A configuration problem found at start-up.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The settings the server runs with, after files, `.env`, environment and flags are combined.
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 9782
    /// A SQLite path or URL, or a PostgreSQL URL.
    public var database: String?
    public var logToDatabase = true
    /// Whether chat calls carrying a coding agent's session header and no explicit run id are grouped into
    /// a run per session.
    public var agentSessions = true
    public var maxBodySize: Int {
        get { security.limits.maxBodySize }
        set { security.limits.maxBodySize = newValue }
    }
    /// This replica's name on call rows, spans and logs; by default the host name and the process id.
    public var instanceID = ServerSettings.defaultInstanceID
    /// How often replicas sharing PostgreSQL exchange their limit counters.
    public var fleetSyncInterval: Duration = .milliseconds(200)
    /// How often replicas sharing PostgreSQL read the gateway keys' budget spend from it.
    public var budgetSyncInterval: Duration = .seconds(1)
    public var storage = StorageSettings()
    public var gateway = GatewayConfiguration()
    public var security = SecuritySettings()
    public var telemetry = TelemetrySettings()
    /// Price overrides and end-user budgets.
    public var cost = CostSettings()
    public var logLevel: String?
    /// Secrets read from configuration (gateway and admin keys), kept only to scrub them from errors.
    var configuredSecrets: [String] = []
    /// The files read, in the order applied.
    public var configFiles: [String] = []

    public init() {}

    /// Command-line values; each wins over the environment and configuration files.
    public struct Overrides: Sendable {
        public var configPath: String?
        public var host: String?
        public var port: Int?
        public var database: String?
        public var loadDotenv = true
        public var allowUnauthenticated = false

        public init(configPath: String? = nil, host: String? = nil, port: Int? = nil, database: String? = nil,
                    loadDotenv: Bool = true, allowUnauthenticated: Bool = false) {
            self.configPath = configPath
            self.host = host
            self.port = port
            self.database = database
            self.loadDotenv = loadDotenv
            self.allowUnauthenticated = allowUnauthenticated
        }
    }

    /// Finds and merges configuration by one rule (``ConfigurationPrecedence``): files in the order read,
    /// then environment variables, then flags, each later source winning, whether or not `.env` files are
    /// loaded. Relative database and spill paths in a file are relative to that file.
    public static func load(
        overrides: Overrides,
        environment: @Sendable (String) -> String? = { getenv($0).map { String(cString: $0) } },
        currentDirectory: String = FileManager.default.currentDirectoryPath,
        homeDirectory: String = NSHomeDirectory()
    ) throws -> ServerSettings {
        let files: [String]
        if let explicit = overrides.configPath ?? environment("CHRONICLE_CONFIG") {
            files = [try resolveExplicitConfig(explicit)]
        } else {
            files = discoverConfigFiles(currentDirectory: currentDirectory, homeDirectory: homeDirectory,
                                        xdgConfigHome: environment("XDG_CONFIG_HOME"))
        }

        var settings = ServerSettings()
        var parsed: [(path: String, file: ConfigFile)] = []
        for path in files {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigurationError("Cannot read \(path): \(error.localizedDescription)")
            }
            let file = try ConfigFile.parse(text, path: path)
            parsed.append((path, file))
            let directory = (path as NSString).deletingLastPathComponent
            if let host = file.host { settings.host = host }
            if let port = file.port { settings.port = port }
            if let database = file.database { settings.database = resolveDatabase(database, relativeTo: directory) }
            if let log = file.logToDatabase { settings.logToDatabase = log }
            if let sessions = file.agentSessions { settings.agentSessions = sessions }
            if let size = file.maxBodySize { settings.maxBodySize = size }
            if let id = file.instanceID, !id.isEmpty { settings.instanceID = id }
            if let interval = file.fleetSyncInterval, interval > .zero { settings.fleetSyncInterval = interval }
            if let interval = file.budgetSyncInterval, interval > .zero { settings.budgetSyncInterval = interval }
            settings.storage.apply(file.storage, relativeTo: directory)
            settings.gateway.merge(file.gateway)
            if let limits = file.limits {
                do { try settings.security.apply(limits) } catch let error as ConfigurationError {
                    throw ConfigurationError("\(path): \(error.description)")
                }
            }
            if let telemetry = file.telemetry { settings.telemetry.apply(telemetry) }
            if let level = file.logLevel { settings.logLevel = level }
            do { try settings.cost.apply(prices: file.prices, budgets: file.budgets) } catch let error as ConfigurationError {
                throw ConfigurationError("\(path): \(error.description)")
            }
            settings.configuredSecrets += file.gatewayKeys.compactMap(\.key) + [file.security?.adminKey].compactMap { $0 }
        }
        settings.configFiles = files

        if overrides.loadDotenv {
            // Innermost configuration first: the first value loaded for a variable wins.
            for (path, file) in parsed.reversed() where file.dotenv != false {
                DotEnv.load(path: ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(".env"))
            }
            if parsed.allSatisfy({ $0.file.dotenv != false }) {
                var directory = currentDirectory
                while true {
                    DotEnv.load(path: (directory as NSString).appendingPathComponent(".env"))
                    let parent = (directory as NSString).deletingLastPathComponent
                    if parent == directory || parent.isEmpty { break }
                    directory = parent
                }
            }
        }

        // The environment is read after `.env` loading so that `.env` files can set these too.
        func env(_ name: String) -> String? { environment(name) }
        if let host = env("HOST") { settings.host = host }
        if let port = env("PORT") {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationError("PORT must be a port number, not \"\(port)\"")
            }
            settings.port = number
        }
        if let database = env("DATABASE_URL"), !database.isEmpty { settings.database = database }
        if let id = env("CHRONICLE_INSTANCE_ID"), !id.isEmpty { settings.instanceID = id }
        if let host = overrides.host { settings.host = host }
        if let port = overrides.port { settings.port = port }
        if let database = overrides.database { settings.database = database }

        // Keys may name variables that `.env` files set, so they are resolved last. A key replaces an
        // earlier source's key of the same name; two of one name in one source are a mistake.
        for (path, file) in parsed {
            do {
                if let security = file.security { try settings.security.apply(security, environment: env) }
                let keys = try file.gatewayKeys.map { try $0.resolve(environment: env) }
                try GatewayKeyConfig.checkUniqueNames(keys)
                settings.security.gatewayKeys = ConfigurationPrecedence.mergeNamed(
                    settings.security.gatewayKeys, keys, name: \.name)
            } catch let error as ConfigurationError {
                throw ConfigurationError("\(path): \(error.description)")
            }
        }
        if let list = env("CHRONICLE_GATEWAY_KEYS") {
            let keys = GatewayKeyConfig.parseEnvironmentList(list)
            do { try GatewayKeyConfig.checkUniqueNames(keys) } catch let error as ConfigurationError {
                throw ConfigurationError("CHRONICLE_GATEWAY_KEYS: \(error.description)")
            }
            settings.security.gatewayKeys = ConfigurationPrecedence.mergeNamed(
                settings.security.gatewayKeys, keys, name: \.name)
        }
        if let admin = env("CHRONICLE_ADMIN_KEY") { settings.security.adminKeyDigest = KeyDigest(of: admin) }
        if overrides.allowUnauthenticated { settings.security.allowUnauthenticated = true }
        return settings
    }

    /// The host name and the process id: unique among replicas on one host, and across hosts.
    public static var defaultInstanceID: String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Scrubs credential-like environment variables and configured keys from errors.
    public var redactor: SecretRedactor {
        var redactor = SecretRedactor.fromEnvironment()
        redactor.add(configuredSecrets)
        return redactor
    }

    static func resolveExplicitConfig(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError("No config found in path \(path)")
        }
        if isDirectory.boolValue {
            let file = (path as NSString).appendingPathComponent("chronicle.toml")
            guard FileManager.default.fileExists(atPath: file) else {
                throw ConfigurationError("No config found in path \(path)")
            }
            return file
        }
        return path
    }

    /// Global configurations, then every `chronicle.toml` from the root down to the current directory;
    /// each file once, even when two locations (such as `~/.config` and `$XDG_CONFIG_HOME`) are the same.
    static func discoverConfigFiles(currentDirectory: String, homeDirectory: String, xdgConfigHome: String?) -> [String] {
        var candidates = [(homeDirectory as NSString).appendingPathComponent(".config/chronicle/chronicle.toml")]
        if let xdg = xdgConfigHome, !xdg.isEmpty {
            candidates.append((xdg as NSString).appendingPathComponent("chronicle/chronicle.toml"))
        }
        var directories: [String] = []
        var directory = (currentDirectory as NSString).standardizingPath
        while true {
            directories.append(directory)
            let parent = (directory as NSString).deletingLastPathComponent
            if parent == directory || parent.isEmpty { break }
            directory = parent
        }
        candidates += directories.reversed().map { ($0 as NSString).appendingPathComponent("chronicle.toml") }
        var seen = Set<String>()
        return candidates.filter { path in
            let canonical = (path as NSString).resolvingSymlinksInPath
            guard FileManager.default.fileExists(atPath: canonical), seen.insert(canonical).inserted else { return false }
            return true
        }
    }

    /// A relative SQLite path in a configuration file, bare or in a `sqlite:` / `sqlite://` URL, is taken
    /// relative to the file's directory, so a file means the same database wherever Chronicle starts.
    /// Other URLs are left alone.
    static func resolveDatabase(_ value: String, relativeTo directory: String) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        for scheme in ["sqlite://", "sqlite:"] where trimmed.hasPrefix(scheme) {
            return scheme + resolvePath(String(trimmed.dropFirst(scheme.count)), relativeTo: directory)
        }
        if trimmed.contains("://") { return value }
        return resolvePath(trimmed, relativeTo: directory)
    }

    /// `path` joined to `directory` unless it is absolute, home-relative, empty or SQLite's `:memory:`.
    static func resolvePath(_ path: String, relativeTo directory: String) -> String {
        if path.isEmpty || path.hasPrefix("/") || path.hasPrefix(":memory:") { return path }
        if path.hasPrefix("~") { return (path as NSString).expandingTildeInPath }
        return (directory as NSString).appendingPathComponent(path)
    }
}

/// Loads `KEY=VALUE` lines into the environment without replacing variables already set.
enum DotEnv {
    static func load(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        for (key, value) in parse(text) where getenv(key) == nil {
            setenv(key, value, 0)
        }
    }

    static func parse(_ text: String) -> [(String, String)] {
        var result: [(String, String)] = []
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" { value = value.replacingOccurrences(of: "\\n", with: "\n") }
            } else if let hash = value.range(of: " #") {
                value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            guard !key.isEmpty else { continue }
            result.append((key, value))
        }
        return result
    }
}

/// How calls are recorded: retention, batching, spill and pool settings.
public struct StorageSettings: Sendable, Equatable {
    /// Rows older than this are deleted in the background; 0 keeps everything.
    public var retentionDays = 30
    public var batchSize = 100
    public var flushInterval: Duration = .seconds(1)
    public var maxBufferedRecords = 10_000
    /// Bytes of records kept in memory before new ones spill.
    public var maxBufferedBytes = 64 * 1024 * 1024
    /// Where the spill file goes; next to a SQLite database, or the working directory, by default.
    public var spillDirectory: String?
    /// Whether each record is appended to the crash journal before the call returns, so that a killed
    /// process loses no record.
    public var journal = true
    /// The crash journal's directory; `<db>.journal` next to the spill file by default.
    public var journalPath: String?
    /// PostgreSQL connection pool size.
    public var maxConnections = 10

    public init() {}

    /// The values one configuration file sets.
    public struct FileValues: Sendable {
        public var retentionDays: Int?
        public var batchSize: Int?
        public var flushInterval: Duration?
        public var maxBufferedRecords: Int?
        public var maxBufferedBytes: Int?
        public var spillDirectory: String?
        public var journal: Bool?
        public var journalPath: String?
        public var maxConnections: Int?
    }

    mutating func apply(_ values: FileValues, relativeTo directory: String) {
        if let value = values.retentionDays { retentionDays = max(0, value) }
        if let value = values.batchSize { batchSize = max(1, value) }
        if let value = values.flushInterval { flushInterval = value }
        if let value = values.maxBufferedRecords { maxBufferedRecords = max(1, value) }
        if let value = values.maxBufferedBytes { maxBufferedBytes = max(1, value) }
        if let value = values.spillDirectory {
            spillDirectory = ServerSettings.resolvePath(value, relativeTo: directory)
        }
        if let value = values.journal { journal = value }
        if let value = values.journalPath {
            journalPath = ServerSettings.resolvePath(value, relativeTo: directory)
        }
        if let value = values.maxConnections { maxConnections = max(1, value) }
    }
}
