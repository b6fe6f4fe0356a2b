import ChronicleCore
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers

/// Authenticates gateway keys and enforces the in-process limits: per-key requests and tokens per
/// minute and concurrent requests, and the server-wide concurrency bound.
public final class AccessControl: Sendable {
    /// A request let in; hand it back with ``release(_:)`` when the response is finished.
    public struct Admission: Sendable {
        /// The key's index in the settings, or nil when no keys are configured.
        let keyIndex: Int?
        public let keyName: String?
    }

    private struct KeyState {
        var requests: TokenBucket?
        var tokens: TokenBucket?
        var inFlight = 0
    }

    private struct State {
        var keys: [KeyState]
        var inFlight = 0
    }

    public let settings: SecuritySettings
    private let state: NIOLockedValueBox<State>
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(settings: SecuritySettings, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.settings = settings
        self.now = now
        let start = now()
        state = NIOLockedValueBox(State(keys: settings.gatewayKeys.map { key in
            KeyState(requests: key.requestsPerMinute.map { TokenBucket(perMinute: $0, now: start) },
                     tokens: key.tokensPerMinute.map { TokenBucket(perMinute: $0, now: start) })
        }))
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

    /// The configured key matching `presented`, comparing digests in constant time.
    func matchKey(_ presented: Substring?) -> Int? {
        guard let presented, !presented.isEmpty else { return nil }
        let digest = KeyDigest(of: presented)
        var match: Int?
        // Every key is compared, so the time does not tell which (or whether one) matched.
        for (index, key) in settings.gatewayKeys.enumerated() where key.digest.constantTimeEquals(digest) {
            match = index
        }
        return match
    }

    /// Checks the key and the limits for a request to the gateway's API.
    /// - Throws: ``APIError`` 401 (no or wrong key), 429 (a key limit, with `Retry-After`) or 503 (overall).
    public func admit(_ headers: HTTPFields) throws(APIError) -> Admission {
        var keyIndex: Int?
        if settings.requiresAuthentication {
            let presented = Self.presentedKey(headers)
            guard let index = matchKey(presented) else {
                throw presented == nil || presented?.isEmpty == true
                    ? APIError(status: 401, kind: "missing_gateway_key",
                               message: "This gateway requires a key: send Authorization: Bearer <key> or x-api-key",
                               headers: [.wwwAuthenticate: "Bearer"])
                    : APIError(status: 401, kind: "invalid_gateway_key", message: "The gateway key is not valid",
                               headers: [.wwwAuthenticate: "Bearer"])
            }
            keyIndex = index
        }
        let instant = now()
        let limits = settings.limits
        let keys = settings.gatewayKeys
        let outcome: Result<Void, APIError> = state.withLockedValue { state in
            guard state.inFlight < limits.maxConcurrentRequests else {
                return .failure(APIError(status: 503, kind: "overloaded",
                                         message: "The gateway is handling too many requests; retry shortly",
                                         headers: [.retryAfter: "1"]))
            }
            if let index = keyIndex {
                let config = keys[index]
                var key = state.keys[index]
                if let limit = config.maxConcurrentRequests, key.inFlight >= limit {
                    return .failure(Self.limited("Key \"\(config.name)\" has \(limit) requests in flight, its limit",
                                                 retryAfter: .seconds(1)))
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
                state.keys[index] = key
            }
            state.inFlight += 1
            return .success(())
        }
        if case .failure(let error) = outcome { throw error }
        return Admission(keyIndex: keyIndex, keyName: keyIndex.map { keys[$0].name })
    }

    /// Requests admitted and not yet finished (all keys).
    public var inFlight: Int { state.withLockedValue { $0.inFlight } }

    public func release(_ admission: Admission) {
        state.withLockedValue { state in
            state.inFlight -= 1
            if let index = admission.keyIndex { state.keys[index].inFlight -= 1 }
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
        guard tokens > 0, let index = settings.gatewayKeys.firstIndex(where: { $0.name == keyName }),
              settings.gatewayKeys[index].tokensPerMinute != nil else { return }
        let instant = now()
        state.withLockedValue { state in
            state.keys[index].tokens?.charge(Double(tokens), now: instant)
        }
    }

    /// Checks access to the read APIs and `/metrics`: the admin key when one is set, otherwise any gateway
    /// key (or nothing, when the gateway has no keys).
    public func authorizeAdmin(_ headers: HTTPFields) throws(APIError) {
        let presented = Self.presentedKey(headers)
        if let admin = settings.adminKeyDigest {
            if let presented, !presented.isEmpty, KeyDigest(of: presented).constantTimeEquals(admin) { return }
            if let index = matchKey(presented), settings.gatewayKeys[index].admin { return }
            throw APIError(status: presented == nil ? 401 : 403, kind: "admin_key_required",
                           message: "This endpoint requires the admin key", headers: [.wwwAuthenticate: "Bearer"])
        }
        guard settings.requiresAuthentication else { return }
        guard matchKey(presented) != nil else {
            throw APIError(status: 401, kind: presented == nil ? "missing_gateway_key" : "invalid_gateway_key",
                           message: "This endpoint requires a gateway key", headers: [.wwwAuthenticate: "Bearer"])
        }
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
