/// How failed attempts are retried. Durations are integer milliseconds in JSON.
public struct RetryOptions: Sendable, Hashable {
    /// The first wait.
    public var initialBackoff: Duration
    /// How each wait grows from the previous one.
    public var increase: BackoffIncrease
    /// Attempts in all, across every choice, the first included. Every choice is still tried once.
    public var maxTries: Int
    /// A random extra wait in `0...jitter` added to each wait.
    public var jitter: Duration
    /// Cap on each wait, jitter included.
    public var maxBackoff: Duration
    /// Give up at once when a rate limit asks us to wait longer than `maxBackoff`.
    public var failIfRateLimitExceedsMaxBackoff: Bool

    public init(initialBackoff: Duration = .milliseconds(200), increase: BackoffIncrease = .exponential(multiplier: 2),
                maxTries: Int = 4, jitter: Duration = .milliseconds(100), maxBackoff: Duration = .milliseconds(5000),
                failIfRateLimitExceedsMaxBackoff: Bool = true) {
        self.initialBackoff = initialBackoff
        self.increase = increase
        self.maxTries = maxTries
        self.jitter = jitter
        self.maxBackoff = maxBackoff
        self.failIfRateLimitExceedsMaxBackoff = failIfRateLimitExceedsMaxBackoff
    }
}

/// How a backoff wait grows.
public enum BackoffIncrease: Sendable, Hashable {
    case constant
    case additive(Duration)
    case exponential(multiplier: Double)

    func next(after value: Duration) -> Duration {
        switch self {
        case .constant: return value
        case .additive(let amount): return value + amount
        case .exponential(let multiplier): return value * multiplier
        }
    }
}

extension BackoffIncrease: Codable {
    enum CodingKeys: String, CodingKey { case type, multiplier, amount }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .type) {
        case "constant": self = .constant
        case "additive":
            let amount = try c.decode(Int64.self, forKey: .amount)
            guard amount >= 0 else {
                throw DecodingError.dataCorruptedError(forKey: .amount, in: c, debugDescription: "amount cannot be negative")
            }
            self = .additive(.milliseconds(amount))
        case "exponential": self = .exponential(multiplier: try c.decodeIfPresent(Double.self, forKey: .multiplier) ?? 2)
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c,
                debugDescription: "unknown increase type \"\(other)\"; expected constant, additive or exponential")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .constant: try c.encode("constant", forKey: .type)
        case .additive(let amount):
            try c.encode("additive", forKey: .type)
            try c.encode(amount.milliseconds, forKey: .amount)
        case .exponential(let multiplier):
            try c.encode("exponential", forKey: .type)
            try c.encode(multiplier, forKey: .multiplier)
        }
    }
}

extension RetryOptions: Codable {
    enum CodingKeys: String, CodingKey {
        case initialBackoff = "initial_backoff", increase, maxTries = "max_tries", jitter
        case maxBackoff = "max_backoff"
        case failIfRateLimitExceedsMaxBackoff = "fail_if_rate_limit_exceeds_max_backoff"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = RetryOptions()
        func ms(_ key: CodingKeys) throws -> Duration? {
            guard let value = try c.decodeIfPresent(Int64.self, forKey: key) else { return nil }
            guard value >= 0 else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "milliseconds cannot be negative")
            }
            return .milliseconds(value)
        }
        self.initialBackoff = try ms(.initialBackoff) ?? defaults.initialBackoff
        self.increase = try c.decodeIfPresent(BackoffIncrease.self, forKey: .increase) ?? defaults.increase
        let maxTries = try c.decodeIfPresent(Int.self, forKey: .maxTries) ?? defaults.maxTries
        guard maxTries >= 1 else {
            throw DecodingError.dataCorruptedError(forKey: .maxTries, in: c, debugDescription: "max_tries must be at least 1")
        }
        self.maxTries = maxTries
        self.jitter = try ms(.jitter) ?? defaults.jitter
        self.maxBackoff = try ms(.maxBackoff) ?? defaults.maxBackoff
        self.failIfRateLimitExceedsMaxBackoff =
            try c.decodeIfPresent(Bool.self, forKey: .failIfRateLimitExceedsMaxBackoff)
            ?? defaults.failIfRateLimitExceedsMaxBackoff
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(initialBackoff.milliseconds, forKey: .initialBackoff)
        try c.encode(increase, forKey: .increase)
        try c.encode(maxTries, forKey: .maxTries)
        try c.encode(jitter.milliseconds, forKey: .jitter)
        try c.encode(maxBackoff.milliseconds, forKey: .maxBackoff)
        try c.encode(failIfRateLimitExceedsMaxBackoff, forKey: .failIfRateLimitExceedsMaxBackoff)
    }
}
