import ChronicleCore
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers

/// Authenticates gateway keys and enforces the in-process limits: per-key requests and tokens per
/// minute and concurrent requests, and the server-wide concurrency bound. The keys can be replaced at any
/// time (a reload or an admin change); a key's counters survive a replacement that keeps its name.
///
/// With ``FleetCounters`` the per-key limits also hold for the whole fleet: each replica counts locally and
/// sees the others' counts as of the last exchange, so admission never waits on the database.
public final class AccessControl: Sendable {
    /// A request let in; hand it back with ``release(_:)`` when the response is finished.
    public struct Admission: Sendable {
        /// The key's name, or nil when no keys are configured.
        public let keyName: String?
    }

    private struct KeyState {
        var requests: TokenBucket?
        var tokens: TokenBucket?
        var inFlight = 0

        init(_ key: GatewayKeyConfig, now: ContinuousClock.Instant) {
            requests = key.requestsPerMinute.map { TokenBucket(perMinute: $0, now: now) }
            tokens = key.tokensPerMinute.map { TokenBucket(perMinute: $0, now: now) }
        }
    }

    private struct State {
        var keys: [GatewayKeyConfig]
        var keyStates: [String: KeyState]
        /// Once any key has been in force, a key stays required even when the last one is revoked: revoking
        /// keys must never open the gateway.
        var requiresKeys: Bool
        var inFlight = 0
    }

    /// The settings at start-up; the gateway keys in force are ``gatewayKeys``.
    public let settings: SecuritySettings
    /// Fleet-wide counters, when replicas share a PostgreSQL database.
    public let fleet: FleetCounters?
    private let state: NIOLockedValueBox<State>
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(settings: SecuritySettings, fleet: FleetCounters? = nil,
                now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.settings = settings
        self.fleet = fleet
        self.now = now
        let start = now()
        var keyStates: [String: KeyState] = [:]
        for key in settings.gatewayKeys { keyStates[key.name] = KeyState(key, now: start) }
        state = NIOLockedValueBox(State(keys: settings.gatewayKeys, keyStates: keyStates,
                                        requiresKeys: !settings.gatewayKeys.isEmpty))
    }

    /// The gateway keys in force.
    public var gatewayKeys: [GatewayKeyConfig] { state.withLockedValue { $0.keys } }

    /// Whether requests must present a key: once any key has been in force.
    public var requiresAuthentication: Bool { state.withLockedValue { $0.requiresKeys } }

    /// Puts `keys` in force at once. A request already admitted finishes under the key it was admitted with;
    /// a removed key is refused from the next request on. A kept key keeps its counters unless its limits
    /// changed.
    public func replaceGatewayKeys(_ keys: [GatewayKeyConfig]) {
        let instant = now()
        state.withLockedValue { state in
            var keyStates: [String: KeyState] = [:]
            let old = Dictionary(state.keys.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
            for key in keys {
                if let previous = old[key.name], let kept = state.keyStates[key.name],
                   previous.requestsPerMinute == key.requestsPerMinute, previous.tokensPerMinute == key.tokensPerMinute {
                    keyStates[key.name] = kept
                } else {
                    var fresh = KeyState(key, now: instant)
                    fresh.inFlight = state.keyStates[key.name]?.inFlight ?? 0
                    keyStates[key.name] = fresh
                }
            }
            state.keys = keys
            state.keyStates = keyStates
            state.requiresKeys = state.requiresKeys || !keys.isEmpty
        }
    }

    /// The key a request presents: `Authorization: Bearer …` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs).
    static func presentedKey(_ headers: HTTPFields) -> Substring? {
        if let authorization = headers[.authorization] {
            let value = authorization[...].drop { $0 == " " }
            if value.count > 7, value.prefix(7).lowercased() == "bearer " {
                return value.dropFirst(7).drop { $0 == " " }
            }
        }
        return headers[.xAPIKey].map { $0[...] }
    }

    /// The key in force matching `presented`, comparing digests in constant time.
    func matchKey(_ presented: Substring?, in keys: [GatewayKeyConfig]) -> GatewayKeyConfig? {
        guard let presented, !presented.isEmpty else { return nil }
        let digest = KeyDigest(of: presented)
        var match: GatewayKeyConfig?
        // Every key is compared, so the time does not tell which (or whether one) matched.
        for key in keys where key.digest.constantTimeEquals(digest) {
            match = key
        }
        return match
    }

    /// Checks the key and the limits for a request to the gateway's API.
    /// - Throws: ``APIError`` 401 (no or wrong key), 429 (a key limit, with `Retry-After`) or 503 (overall).
    public func admit(_ headers: HTTPFields) throws(APIError) -> Admission {
        // A copy of the keys (copy-on-write, no allocation), so that digests are compared outside the lock.
        let (keys, requiresKeys) = state.withLockedValue { ($0.keys, $0.requiresKeys) }
        var admitted: GatewayKeyConfig?
        if requiresKeys {
            let presented = Self.presentedKey(headers)
            guard let key = matchKey(presented, in: keys) else {
                throw presented == nil || presented?.isEmpty == true
                    ? APIError(status: 401, kind: "missing_gateway_key",
                               message: "This gateway requires a key: send Authorization: Bearer <key> or x-api-key",
                               headers: [.wwwAuthenticate: "Bearer"])
                    : APIError(status: 401, kind: "invalid_gateway_key", message: "The gateway key is not valid",
                               headers: [.wwwAuthenticate: "Bearer"])
            }
            admitted = key
        }
        let instant = now()
        let limits = settings.limits
        let fleet = self.fleet
        let outcome: Result<Void, APIError> = state.withLockedValue { state in
            guard state.inFlight < limits.maxConcurrentRequests else {
                return .failure(APIError(status: 503, kind: "overloaded",
                                         message: "The gateway is handling too many requests; retry shortly",
                                         headers: [.retryAfter: "1"]))
            }
            if let config = admitted {
                // Revoked between the digest check and here: refused like any unknown key.
                guard var key = state.keyStates[config.name] else {
                    return .failure(APIError(status: 401, kind: "invalid_gateway_key",
                                             message: "The gateway key is not valid", headers: [.wwwAuthenticate: "Bearer"]))
                }
                if let limit = config.maxConcurrentRequests,
                   key.inFlight + Int(fleet?.othersGauge(.inFlight, subject: config.name) ?? 0) >= limit {
                    return .failure(Self.limited("Key \"\(config.name)\" has \(limit) requests in flight, its limit",
                                                 retryAfter: .seconds(1)))
                }
                if let fleet {
                    if let error = fleet.refusal(for: config) { return .failure(error) }
                }
                if var tokens = key.tokens {
                    if let wait = tokens.waitUntilPositive(now: instant) {
                        return .failure(Self.limited(
                            "Key \"\(config.name)\" used its \(config.tokensPerMinute ?? 0) tokens per minute",
                            retryAfter: wait))
                    }
                    key.tokens = tokens
                }
                if var requests = key.requests {
                    if let wait = requests.take(1, now: instant) {
                        return .failure(Self.limited(
                            "Key \"\(config.name)\" reached its \(config.requestsPerMinute ?? 0) requests per minute",
                            retryAfter: wait))
                    }
                    key.requests = requests
                }
                key.inFlight += 1
                state.keyStates[config.name] = key
                if let fleet {
                    if config.requestsPerMinute != nil { fleet.add(1, .requests, subject: config.name) }
                    if config.maxConcurrentRequests != nil {
                        fleet.setGauge(Double(key.inFlight), .inFlight, subject: config.name)
                    }
                }
            }
            state.inFlight += 1
            return .success(())
        }
        if case .failure(let error) = outcome { throw error }
        return Admission(keyName: admitted?.name)
    }

    /// Requests admitted and not yet finished (all keys).
    public var inFlight: Int { state.withLockedValue { $0.inFlight } }

    public func release(_ admission: Admission) {
        let fleet = self.fleet
        state.withLockedValue { state in
            state.inFlight -= 1
            if let name = admission.keyName, var key = state.keyStates[name] {
                key.inFlight -= 1
                state.keyStates[name] = key
                fleet?.setGauge(Double(key.inFlight), .inFlight, subject: name)
            }
        }
    }

    /// Charges a finished call's tokens to the budget of the key that made it, if it has one; a call
    /// subscriber (``Gateway/Builder/chargingTokens(to:)``).
    public func charge(_ call: FinishedCall) {
        guard let keyName = call.context.gatewayKeyName, let usage = call.usage else { return }
        charge(tokens: usage.totalTokens ?? ((usage.promptTokens ?? 0) + (usage.completionTokens ?? 0)), keyName: keyName)
    }

    /// Charges a finished call's tokens to its key's tokens-per-minute budget.
    public func charge(tokens: Int, keyName: String) {
        guard tokens > 0 else { return }
        let instant = now()
        let fleet = self.fleet
        state.withLockedValue { state in
            guard state.keyStates[keyName]?.tokens != nil else { return }
            state.keyStates[keyName]?.tokens?.charge(Double(tokens), now: instant)
            fleet?.add(Double(tokens), .tokens, subject: keyName)
        }
    }

    /// Checks access to the read APIs and `/metrics`: the admin key when one is set, otherwise any gateway
    /// key (or nothing, when the gateway has no keys).
    public func authorizeAdmin(_ headers: HTTPFields) throws(APIError) {
        _ = try authorizeAdminActor(headers)
    }

    /// Like ``authorizeAdmin(_:)``, and names who was let in for the audit trail: `admin` for the admin key,
    /// the gateway key's name for an admin gateway key, `anonymous` when no key is needed.
    public func authorizeAdminActor(_ headers: HTTPFields) throws(APIError) -> String {
        let presented = Self.presentedKey(headers)
        let keys = gatewayKeys
        if let admin = settings.adminKeyDigest {
            if let presented, !presented.isEmpty, KeyDigest(of: presented).constantTimeEquals(admin) { return "admin" }
            if let key = matchKey(presented, in: keys), key.admin { return key.name }
            throw APIError(status: presented == nil ? 401 : 403, kind: "admin_key_required",
                           message: "This endpoint requires the admin key", headers: [.wwwAuthenticate: "Bearer"])
        }
        guard requiresAuthentication else { return "anonymous" }
        guard let key = matchKey(presented, in: keys) else {
            throw APIError(status: 401, kind: presented == nil ? "missing_gateway_key" : "invalid_gateway_key",
                           message: "This endpoint requires a gateway key", headers: [.wwwAuthenticate: "Bearer"])
        }
        return key.name
    }

    static func limited(_ message: String, retryAfter: Duration) -> APIError {
        let seconds = max(1, Int((retryAfter.fractionalSeconds).rounded(.up)))
        return APIError(status: 429, kind: "gateway_rate_limit", message: message,
                        headers: [.retryAfter: String(seconds)])
    }
}

/// A per-minute budget refilled continuously: full at `perMinute`, refilled at `perMinute / 60` a second.
struct TokenBucket {
    let capacity: Double
    let perSecond: Double
    var balance: Double
    var updatedAt: ContinuousClock.Instant

    init(perMinute: Int, now: ContinuousClock.Instant) {
        capacity = Double(perMinute)
        perSecond = Double(perMinute) / 60
        balance = capacity
        updatedAt = now
    }

    mutating func refill(now: ContinuousClock.Instant) {
        let elapsed = (now - updatedAt).fractionalSeconds
        if elapsed > 0 { balance = min(capacity, balance + elapsed * perSecond) }
        updatedAt = now
    }

    /// Takes `amount` if available; otherwise returns how long until it is.
    mutating func take(_ amount: Double, now: ContinuousClock.Instant) -> Duration? {
        refill(now: now)
        guard balance >= amount else { return .seconds((amount - balance) / perSecond) }
        balance -= amount
        return nil
    }

    /// Nil while anything is left; otherwise how long until the budget is positive again. Token budgets are
    /// charged after the fact, so they can go into debt.
    mutating func waitUntilPositive(now: ContinuousClock.Instant) -> Duration? {
        refill(now: now)
        guard balance <= 0 else { return nil }
        return .seconds((1 - balance) / perSecond)
    }

    mutating func charge(_ amount: Double, now: ContinuousClock.Instant) {
        refill(now: now)
        balance -= amount
    }
}

extension HTTPField.Name {
    static let xAPIKey = HTTPField.Name("x-api-key")!
}
