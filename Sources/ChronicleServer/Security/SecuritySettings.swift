import ChronicleCore
import Crypto
import Foundation

/// A key clients present to use the gateway (`[[gateway_keys]]` in `chronicle.toml`).
///
/// The key itself is never kept: only its SHA-256 digest, which is what requests are compared against.
public struct GatewayKeyConfig: Sendable, Hashable {
    /// Logged and stored with each call made with the key.
    public var name: String
    public var digest: KeyDigest
    /// Requests per minute; nil for no limit.
    public var requestsPerMinute: Int?
    /// Prompt plus completion tokens per minute; nil for no limit.
    public var tokensPerMinute: Int?
    /// Requests in flight at once; nil for no limit.
    public var maxConcurrentRequests: Int?
    /// Whether the key may also read `/v1/runs`, `/v1/calls` and `/metrics` when an admin key is set.
    public var admin: Bool
    /// US dollars the key may spend per calendar day (UTC); nil for no limit.
    public var maxCostUSDPerDay: Double?
    /// US dollars the key may spend per calendar month (UTC); nil for no limit.
    public var maxCostUSDPerMonth: Double?

    public init(name: String, key: String, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil,
                maxConcurrentRequests: Int? = nil, admin: Bool = false, maxCostUSDPerDay: Double? = nil,
                maxCostUSDPerMonth: Double? = nil) {
        self.init(name: name, digest: KeyDigest(of: key), requestsPerMinute: requestsPerMinute,
                  tokensPerMinute: tokensPerMinute, maxConcurrentRequests: maxConcurrentRequests, admin: admin,
                  maxCostUSDPerDay: maxCostUSDPerDay, maxCostUSDPerMonth: maxCostUSDPerMonth)
    }

    public init(name: String, digest: KeyDigest, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil,
                maxConcurrentRequests: Int? = nil, admin: Bool = false, maxCostUSDPerDay: Double? = nil,
                maxCostUSDPerMonth: Double? = nil) {
        self.name = name
        self.digest = digest
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrentRequests = maxConcurrentRequests
        self.admin = admin
        self.maxCostUSDPerDay = maxCostUSDPerDay
        self.maxCostUSDPerMonth = maxCostUSDPerMonth
    }

    /// The file form: `key`, `key_env` (a variable holding the key) or `key_sha256` (its hex digest).
    struct FileValues: Decodable {
        var name: String
        var key: String?
        var keyEnv: String?
        var keySHA256: String?
        var requestsPerMinute: Int?
        var tokensPerMinute: Int?
        var maxConcurrentRequests: Int?
        var admin: Bool?
        var maxCostUSDPerDay: ConfigAmount?
        var maxCostUSDPerMonth: ConfigAmount?

        enum CodingKeys: String, CodingKey {
            case name, key, admin
            case keyEnv = "key_env"
            case keySHA256 = "key_sha256"
            case requestsPerMinute = "requests_per_minute"
            case tokensPerMinute = "tokens_per_minute"
            case maxConcurrentRequests = "max_concurrent_requests"
            case maxCostUSDPerDay = "max_cost_usd_per_day"
            case maxCostUSDPerMonth = "max_cost_usd_per_month"
        }

        func resolve(environment: (String) -> String?) throws -> GatewayKeyConfig {
            let digest: KeyDigest
            let sources = [key, keyEnv, keySHA256].compactMap { $0 }
            guard sources.count == 1 else {
                throw ConfigurationError("gateway key \"\(name)\": set exactly one of key, key_env and key_sha256")
            }
            if let key {
                digest = KeyDigest(of: key)
            } else if let keyEnv {
                guard let value = environment(keyEnv), !value.isEmpty else {
                    throw ConfigurationError("gateway key \"\(name)\": environment variable \(keyEnv) is not set")
                }
                digest = KeyDigest(of: value)
            } else {
                guard let hex = keySHA256, let parsed = KeyDigest(hex: hex) else {
                    throw ConfigurationError("gateway key \"\(name)\": key_sha256 must be 64 hexadecimal digits")
                }
                digest = parsed
            }
            for (label, value) in [("requests_per_minute", requestsPerMinute), ("tokens_per_minute", tokensPerMinute),
                                   ("max_concurrent_requests", maxConcurrentRequests)] {
                if let value, value <= 0 {
                    throw ConfigurationError("gateway key \"\(name)\": \(label) must be positive")
                }
            }
            let budget = BudgetLimits(perDay: maxCostUSDPerDay?.value, perMonth: maxCostUSDPerMonth?.value)
            if !budget.isEmpty { try CostSettings.check(budget, label: "gateway key \"\(name)\"") }
            return GatewayKeyConfig(name: name, digest: digest, requestsPerMinute: requestsPerMinute,
                                    tokensPerMinute: tokensPerMinute, maxConcurrentRequests: maxConcurrentRequests,
                                    admin: admin ?? false, maxCostUSDPerDay: maxCostUSDPerDay?.value,
                                    maxCostUSDPerMonth: maxCostUSDPerMonth?.value)
        }
    }

    /// Names identify keys in logs and in the database, so one source may not name two keys alike.
    static func checkUniqueNames(_ keys: [GatewayKeyConfig]) throws {
        var seen = Set<String>()
        for key in keys where !seen.insert(key.name).inserted {
            throw ConfigurationError("Two gateway keys are named \"\(key.name)\"; names identify keys in logs")
        }
    }

    /// `CHRONICLE_GATEWAY_KEYS`: comma-separated `name:key` pairs (a bare key is named `key-N`).
    static func parseEnvironmentList(_ text: String) -> [GatewayKeyConfig] {
        text.split(separator: ",").enumerated().compactMap { index, item in
            let entry = item.trimmingCharacters(in: .whitespaces)
            guard !entry.isEmpty else { return nil }
            if let colon = entry.firstIndex(of: ":") {
                let name = entry[..<colon].trimmingCharacters(in: .whitespaces)
                let key = entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                guard !key.isEmpty else { return nil }
                return GatewayKeyConfig(name: name.isEmpty ? "key-\(index + 1)" : name, key: key)
            }
            return GatewayKeyConfig(name: "key-\(index + 1)", key: entry)
        }
    }
}

/// Who may call the gateway and what requests may ask for.
public struct SecuritySettings: Sendable {
    public var gatewayKeys: [GatewayKeyConfig] = []
    /// Digest of the key required by `/v1/runs`, `/v1/calls` and `/metrics`; when unset, any gateway key
    /// reads them (and, with no gateway keys at all, anyone on the loopback interface).
    public var adminKeyDigest: KeyDigest?
    /// Serve on a non-loopback address without gateway keys.
    public var allowUnauthenticated = false
    /// URL prefixes `override_url` may point at; empty refuses every override (the default).
    public var overrideURLAllowList: [String] = []
    /// Whether clients may send their own provider keys (`api_key`, `x-chronicle-provider-api-key`).
    public var allowClientProviderKeys = true
    /// Origins allowed to call from browsers; empty disables CORS, `"*"` allows any origin.
    public var corsOrigins: [String] = []
    public var limits = Limits()

    public init() {}

    public var requiresAuthentication: Bool { !gatewayKeys.isEmpty }

    /// Size, count and concurrency limits, each answered with its own JSON error.
    public struct Limits: Sendable {
        /// The largest request body (413).
        public var maxBodySize = 20 * 1024 * 1024
        /// The largest total size of request headers (431).
        public var maxHeaderSize = 32 * 1024
        /// The most messages in one chat request (413).
        public var maxMessages = 10_000
        /// Requests handled at once over all keys (503 beyond).
        public var maxConcurrentRequests = 4096
        /// How long a client may take to send a request's headers (the connection is closed after).
        public var headerReadTimeout: Duration = .seconds(30)
        /// How long a client may take to send a request's body (408 after).
        public var bodyReadTimeout: Duration = .seconds(60)
        /// How long a response may wait on a client that stopped reading before the connection is closed.
        public var clientWriteTimeout: Duration = .seconds(60)
        /// How long an idle keep-alive connection stays open.
        public var idleTimeout: Duration = .seconds(75)

        public init() {}
    }

    /// The `[security]` and `[limits]` tables and `[[gateway_keys]]`.
    struct FileValues: Decodable {
        var allowUnauthenticated: Bool?
        var adminKey: String?
        var adminKeyEnv: String?
        var adminKeySHA256: String?
        var overrideURLAllowList: [String]?
        var allowClientProviderKeys: Bool?
        var corsOrigins: [String]?

        enum CodingKeys: String, CodingKey {
            case allowUnauthenticated = "allow_unauthenticated"
            case adminKey = "admin_key"
            case adminKeyEnv = "admin_key_env"
            case adminKeySHA256 = "admin_key_sha256"
            case overrideURLAllowList = "override_url_allowlist"
            case allowClientProviderKeys = "allow_client_provider_keys"
            case corsOrigins = "cors_origins"
        }
    }

    struct LimitValues: Decodable {
        var maxHeaderSize: Int?
        var maxMessages: Int?
        var maxConcurrentRequests: Int?
        var headerReadTimeout: ConfigDuration?
        var bodyReadTimeout: ConfigDuration?
        var clientWriteTimeout: ConfigDuration?
        var idleTimeout: ConfigDuration?

        enum CodingKeys: String, CodingKey {
            case maxHeaderSize = "max_header_size"
            case maxMessages = "max_messages"
            case maxConcurrentRequests = "max_concurrent_requests"
            case headerReadTimeout = "header_read_timeout"
            case bodyReadTimeout = "body_read_timeout"
            case clientWriteTimeout = "client_write_timeout"
            case idleTimeout = "idle_timeout"
        }
    }

    mutating func apply(_ values: FileValues, environment: (String) -> String?) throws {
        if let value = values.allowUnauthenticated { allowUnauthenticated = value }
        let adminSources = [values.adminKey, values.adminKeyEnv, values.adminKeySHA256].compactMap { $0 }
        if adminSources.count > 1 {
            throw ConfigurationError("[security]: set at most one of admin_key, admin_key_env and admin_key_sha256")
        }
        if let key = values.adminKey { adminKeyDigest = KeyDigest(of: key) }
        if let variable = values.adminKeyEnv {
            guard let key = environment(variable), !key.isEmpty else {
                throw ConfigurationError("[security]: admin_key_env names \(variable), which is not set")
            }
            adminKeyDigest = KeyDigest(of: key)
        }
        if let hex = values.adminKeySHA256 {
            guard let digest = KeyDigest(hex: hex) else {
                throw ConfigurationError("[security]: admin_key_sha256 must be 64 hexadecimal digits")
            }
            adminKeyDigest = digest
        }
        // Unnamed lists from several files are concatenated (``ConfigurationPrecedence``).
        if let list = values.overrideURLAllowList {
            for entry in list where OverrideURLPolicy.parse(entry) == nil {
                throw ConfigurationError("[security]: override_url_allowlist entry \"\(entry)\" is not an http(s) URL")
            }
            overrideURLAllowList += list.filter { !overrideURLAllowList.contains($0) }
        }
        if let value = values.allowClientProviderKeys { allowClientProviderKeys = value }
        if let origins = values.corsOrigins { corsOrigins += origins.filter { !corsOrigins.contains($0) } }
    }

    mutating func apply(_ values: LimitValues) throws {
        func positive(_ value: Int?, _ name: String) throws -> Int? {
            guard let value else { return nil }
            guard value > 0 else { throw ConfigurationError("[limits]: \(name) must be positive") }
            return value
        }
        if let value = try positive(values.maxHeaderSize, "max_header_size") { limits.maxHeaderSize = value }
        if let value = try positive(values.maxMessages, "max_messages") { limits.maxMessages = value }
        if let value = try positive(values.maxConcurrentRequests, "max_concurrent_requests") {
            limits.maxConcurrentRequests = value
        }
        if let value = values.headerReadTimeout?.duration { limits.headerReadTimeout = value }
        if let value = values.bodyReadTimeout?.duration { limits.bodyReadTimeout = value }
        if let value = values.clientWriteTimeout?.duration { limits.clientWriteTimeout = value }
        if let value = values.idleTimeout?.duration { limits.idleTimeout = value }
    }
}

/// The SHA-256 digest of a key. Keys are compared only through their digests, in constant time.
public struct KeyDigest: Sendable, Hashable {
    let bytes: [UInt8]

    public init(of key: some StringProtocol) {
        bytes = Array(SHA256.hash(data: Array(key.utf8)))
    }

    /// Parses 64 hexadecimal digits (what `key_sha256` holds: `printf %s "$KEY" | sha256sum`).
    public init?(hex: String) {
        let digits = Array(hex.trimmingCharacters(in: .whitespaces).utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The digest as 64 lowercase hexadecimal digits (what `key_sha256` and `chronicle_gateway_keys` hold).
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Equality that takes the same time wherever the digests differ.
    public func constantTimeEquals(_ other: KeyDigest) -> Bool {
        guard bytes.count == other.bytes.count else { return false }
        var difference: UInt8 = 0
        for index in bytes.indices { difference |= bytes[index] ^ other.bytes[index] }
        return difference == 0
    }
}
