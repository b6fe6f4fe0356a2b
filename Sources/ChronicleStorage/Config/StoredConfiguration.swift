import ChronicleCore
import Foundation

/// The routing configuration kept in the database: the Rust Chronicle's tables (`chronicle_custom_providers`,
/// `chronicle_aliases` with `chronicle_alias_providers`, `chronicle_api_keys`) and the gateway keys managed
/// through the admin API (`chronicle_gateway_keys`).
///
/// Keys are as stored: a provider key with source `"encrypted"` is still ciphertext, an `"env"` key is still
/// a variable's name. The server decrypts and resolves them.
public struct StoredConfiguration: Sendable, Hashable {
    public var providers: [CustomProviderConfig] = []
    public var aliases: [AliasConfig] = []
    public var apiKeys: [APIKeyConfig] = []
    public var gatewayKeys: [StoredGatewayKey] = []
    /// Rows that could not be read, each with the reason; the rest of the configuration still loads.
    public var problems: [String] = []

    public init(providers: [CustomProviderConfig] = [], aliases: [AliasConfig] = [], apiKeys: [APIKeyConfig] = [],
                gatewayKeys: [StoredGatewayKey] = []) {
        self.providers = providers
        self.aliases = aliases
        self.apiKeys = apiKeys
        self.gatewayKeys = gatewayKeys
    }
}

/// A gateway key in `chronicle_gateway_keys`: its SHA-256 digest (never the key), its limits and budgets.
public struct StoredGatewayKey: Sendable, Hashable, Codable {
    public var name: String
    /// 64 lowercase hexadecimal digits.
    public var keySHA256: String
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var maxConcurrentRequests: Int?
    /// Budgets, stored for the cost accounting to enforce.
    public var maxCostUSDPerDay: Double?
    public var maxCostUSDPerMonth: Double?
    public var admin: Bool
    public var createdAt: Date

    public init(name: String, keySHA256: String, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil,
                maxConcurrentRequests: Int? = nil, maxCostUSDPerDay: Double? = nil, maxCostUSDPerMonth: Double? = nil,
                admin: Bool = false, createdAt: Date = Date()) {
        self.name = name
        self.keySHA256 = keySHA256
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrentRequests = maxConcurrentRequests
        self.maxCostUSDPerDay = maxCostUSDPerDay
        self.maxCostUSDPerMonth = maxCostUSDPerMonth
        self.admin = admin
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case name, admin
        case keySHA256 = "key_sha256"
        case requestsPerMinute = "requests_per_minute"
        case tokensPerMinute = "tokens_per_minute"
        case maxConcurrentRequests = "max_concurrent_requests"
        case maxCostUSDPerDay = "max_cost_usd_per_day"
        case maxCostUSDPerMonth = "max_cost_usd_per_month"
        case createdAt = "created_at"
    }
}

/// One change to the stored configuration; each replaces any entry of the same name, or removes it.
public enum ConfigChange: Sendable, Hashable {
    case setProvider(CustomProviderConfig)
    case removeProvider(String)
    case setAlias(AliasConfig)
    case removeAlias(String)
    case setAPIKey(APIKeyConfig)
    case removeAPIKey(String)
    case setGatewayKey(StoredGatewayKey)
    case removeGatewayKey(String)
}

/// Who changed what, with the values before and after (secrets already masked by the caller).
public struct AuditEntry: Sendable, Hashable {
    public var actor: String
    /// `create`, `update` or `delete`.
    public var action: String
    /// `provider`, `alias`, `api_key` or `gateway_key`.
    public var kind: String
    public var name: String
    public var before: JSONValue?
    public var after: JSONValue?

    public init(actor: String, action: String, kind: String, name: String, before: JSONValue?, after: JSONValue?) {
        self.actor = actor
        self.action = action
        self.kind = kind
        self.name = name
        self.before = before
        self.after = after
    }
}

/// A database holding the routing configuration: SQLite or PostgreSQL.
public protocol ConfigStore: Sendable {
    /// Reads every configuration table.
    func loadConfiguration() async throws -> StoredConfiguration
    /// Applies a change and records its audit entry in one transaction. With PostgreSQL the same
    /// transaction sends `NOTIFY chronicle_config`, so that every replica reloads once it commits.
    func apply(_ change: ConfigChange, audit: AuditEntry, at time: Date) async throws
    /// The latest audit entries, newest first.
    func auditTrail(limit: Int) async throws -> [JSONValue]
}

/// The channel replicas listen on for configuration changes.
public let configChangeChannel = "chronicle_config"
