import ChronicleCore
import ChronicleStorage
import Foundation
import Logging

/// The routing configuration in force: providers, aliases, named provider keys and gateway keys with their
/// limits. Built whole from the files and the database (the database wins for a name) and put in force at
/// once; a call already routed keeps the providers it resolved, and a request already admitted keeps its key.
public struct RoutingConfiguration: Sendable {
    /// Providers, aliases and named keys, with stored keys decrypted.
    public var gateway: GatewayConfiguration
    public var gatewayKeys: [GatewayKeyConfig]

    public init(gateway: GatewayConfiguration, gatewayKeys: [GatewayKeyConfig]) {
        self.gateway = gateway
        self.gatewayKeys = gatewayKeys
    }
}

/// Builds and swaps the ``RoutingConfiguration`` on start-up, `SIGHUP` (files), `NOTIFY chronicle_config`
/// and admin changes (database). Reloads run one at a time. A reload that fails keeps the configuration in
/// force and logs why.
public actor ConfigReloader {
    /// The part the files give: re-read on `SIGHUP`.
    public struct FileLayer: Sendable {
        public var gateway: GatewayConfiguration
        public var gatewayKeys: [GatewayKeyConfig]

        public init(gateway: GatewayConfiguration, gatewayKeys: [GatewayKeyConfig]) {
            self.gateway = gateway
            self.gatewayKeys = gatewayKeys
        }
    }

    public let gateway: Gateway
    public let access: AccessControl
    public nonisolated let store: (any ConfigStore)?
    public nonisolated let secrets: SecretBox?
    /// The budgets whose gateway keys' limits follow the keys in force; nil without cost tracking.
    public nonisolated let budgets: Budgets?
    private let readFiles: (@Sendable () throws -> FileLayer)?
    private let logger: Logger
    private var files: FileLayer
    /// The database's configuration as last read; what admin reads list and changes are checked against.
    public private(set) var stored = StoredConfiguration()
    /// Whether the first load has succeeded (``ServerReadiness``).
    public private(set) var loaded = false
    /// How many reloads have put a configuration in force.
    public private(set) var generation = 0

    public init(gateway: Gateway, access: AccessControl, files: FileLayer, store: (any ConfigStore)?,
                secrets: SecretBox?, logger: Logger, budgets: Budgets? = nil,
                readFiles: (@Sendable () throws -> FileLayer)? = nil) {
        self.gateway = gateway
        self.budgets = budgets
        self.access = access
        self.files = files
        self.store = store
        self.secrets = secrets
        self.logger = logger
        self.readFiles = readFiles
    }

    /// Re-reads the files (`SIGHUP`) and puts the result in force with the database's last configuration.
    /// - Returns: whether the new configuration is in force.
    @discardableResult
    public func reloadFiles() -> Bool {
        guard let readFiles else { return false }
        do {
            let layer = try readFiles()
            try put(files: layer, stored: stored)
            files = layer
            logger.notice("configuration files reloaded", metadata: ["generation": "\(generation)"])
            return true
        } catch {
            logger.error("configuration files not reloaded; keeping the configuration in force",
                         metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Re-reads the database (start-up, a notification, an admin change) and puts the result in force.
    @discardableResult
    public func reloadDatabase() async -> Bool {
        guard let store else {
            if !loaded {
                do { try put(files: files, stored: stored) } catch {
                    logger.error("configuration not applied", metadata: ["error": "\(error)"])
                    return false
                }
            }
            return true
        }
        do {
            let fresh = try await store.loadConfiguration()
            for problem in fresh.problems { logger.error("configuration row skipped", metadata: ["problem": "\(problem)"]) }
            try put(files: files, stored: fresh)
            stored = fresh
            return true
        } catch {
            logger.error("configuration not reloaded from the database; keeping the configuration in force",
                         metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Applies an admin change: stores it with its audit entry, then reloads this replica at once (others
    /// reload on the notification).
    public func apply(_ change: ConfigChange, audit: AuditEntry) async throws {
        guard let store else { throw AdminError.noDatabase }
        try await store.apply(change, audit: audit, at: Date())
        await reloadDatabase()
    }

    /// Merges, checks and swaps; throws (leaving everything as it was) when the result cannot be built.
    private func put(files: FileLayer, stored: StoredConfiguration) throws {
        let routing = try Self.merge(files: files, stored: stored, secrets: secrets, logger: logger)
        try gateway.replaceRouting(routing.gateway)
        access.replaceGatewayKeys(routing.gatewayKeys)
        budgets?.replaceKeyLimits(with: routing.gatewayKeys)
        generation += 1
        loaded = true
        let known = gateway.fixedProviderNames.union(routing.gateway.providers.map(\.name))
        for alias in routing.gateway.aliases {
            for model in alias.models where !known.contains(model.provider) {
                logger.warning("alias names an unknown provider; calls to it fail until the provider exists",
                               metadata: ["alias": "\(alias.name)", "provider": "\(model.provider)"])
            }
        }
    }

    /// The files' configuration with the database's laid over it: the database wins for a name.
    static func merge(files: FileLayer, stored: StoredConfiguration, secrets: SecretBox?, logger: Logger) throws
        -> RoutingConfiguration
    {
        var providers: [CustomProviderConfig] = []
        for var provider in stored.providers {
            if provider.apiKeySource == SecretBox.source, let sealed = provider.apiKey {
                guard let secrets else {
                    logger.error("provider key is encrypted and CHRONICLE_SECRET_KEY is not set; provider left out",
                                 metadata: ["provider": "\(provider.name)"])
                    continue
                }
                do {
                    provider.apiKey = try secrets.open(sealed)
                    provider.apiKeySource = nil
                } catch {
                    logger.error("provider left out", metadata: ["provider": "\(provider.name)", "error": "\(error)"])
                    continue
                }
            }
            providers.append(provider)
        }
        var apiKeys: [APIKeyConfig] = []
        for var key in stored.apiKeys {
            if key.source == SecretBox.source {
                guard let secrets else {
                    logger.error("API key is encrypted and CHRONICLE_SECRET_KEY is not set; key left out",
                                 metadata: ["key": "\(key.name)"])
                    continue
                }
                do {
                    key.value = try secrets.open(key.value)
                    key.source = "literal"
                } catch {
                    logger.error("API key left out", metadata: ["key": "\(key.name)", "error": "\(error)"])
                    continue
                }
            }
            apiKeys.append(key)
        }
        var gateway = files.gateway
        gateway.merge(GatewayConfiguration(providers: providers, aliases: stored.aliases, apiKeys: apiKeys))
        var gatewayKeys: [GatewayKeyConfig] = []
        for key in stored.gatewayKeys {
            guard let digest = KeyDigest(hex: key.keySHA256) else {
                logger.error("gateway key has no valid digest; left out", metadata: ["key": "\(key.name)"])
                continue
            }
            gatewayKeys.append(GatewayKeyConfig(
                name: key.name, digest: digest, requestsPerMinute: key.requestsPerMinute,
                tokensPerMinute: key.tokensPerMinute, maxConcurrentRequests: key.maxConcurrentRequests, admin: key.admin,
                maxCostUSDPerDay: key.maxCostUSDPerDay, maxCostUSDPerMonth: key.maxCostUSDPerMonth))
        }
        return RoutingConfiguration(
            gateway: gateway,
            gatewayKeys: ConfigurationPrecedence.mergeNamed(files.gatewayKeys, gatewayKeys, name: \.name))
    }

    /// The files' part, for admin reads that tell where an entry comes from.
    public var fileLayer: FileLayer { files }
}
