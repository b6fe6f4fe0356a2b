import Foundation

/// Chronicle's options for one call, sent beside the chat request in its body (as the gateway reads them).
///
/// ```swift
/// var options = ChronicleOptions()
/// options.models = [ModelChoice(model: "gpt-4o-mini", provider: "openai"),
///                   ModelChoice(model: "claude-3-5-haiku-latest", provider: "anthropic")]
/// options.retry = RetryPolicy(maxTries: 3)
/// options.timeout = .seconds(20)
/// ```
public struct ChronicleOptions: Sendable, Hashable {
    /// Forces a named provider (when `models` is empty and the model is not an alias).
    public var provider: String?
    /// Ordered choices to try; when set, the request's model and `provider` are ignored.
    public var models: [ModelChoice]
    /// With `models`, start at a random choice.
    public var randomChoice: Bool?
    /// How failed attempts are retried.
    public var retry: RetryPolicy?
    /// Per-attempt timeout (sent in whole milliseconds).
    public var timeout: Duration?
    /// A provider key for this call (single-model calls only).
    public var apiKey: String?
    /// A URL replacing the provider's endpoint.
    public var overrideURL: String?
    /// Stored with the call's record.
    public var metadata: CallMetadata

    public init(provider: String? = nil, models: [ModelChoice] = [], randomChoice: Bool? = nil,
                retry: RetryPolicy? = nil, timeout: Duration? = nil, apiKey: String? = nil,
                overrideURL: String? = nil, metadata: CallMetadata = CallMetadata()) {
        self.provider = provider
        self.models = models
        self.randomChoice = randomChoice
        self.retry = retry
        self.timeout = timeout
        self.apiKey = apiKey
        self.overrideURL = overrideURL
        self.metadata = metadata
    }

    /// Writes the options as body members beside the chat request's.
    func encode(into c: inout KeyedEncodingContainer<AnyKey>) throws {
        try c.encodeIfPresent(provider, forKey: AnyKey("provider"))
        if !models.isEmpty { try c.encode(models, forKey: AnyKey("models")) }
        try c.encodeIfPresent(randomChoice, forKey: AnyKey("random_choice"))
        try c.encodeIfPresent(retry, forKey: AnyKey("retry"))
        try c.encodeIfPresent(timeout.map(\.wholeMilliseconds), forKey: AnyKey("timeout"))
        try c.encodeIfPresent(apiKey, forKey: AnyKey("api_key"))
        try c.encodeIfPresent(overrideURL, forKey: AnyKey("override_url"))
        if !metadata.isEmpty { try c.encode(metadata, forKey: AnyKey("metadata")) }
    }
}

/// One model to try, on a named provider, optionally with its own key.
public struct ModelChoice: Sendable, Hashable, Codable {
    public var model: String
    public var provider: String
    /// A literal key (wins over `apiKeyName`).
    public var apiKey: String?
    /// The name of a key configured in the gateway.
    public var apiKeyName: String?

    public init(model: String, provider: String, apiKey: String? = nil, apiKeyName: String? = nil) {
        self.model = model
        self.provider = provider
        self.apiKey = apiKey
        self.apiKeyName = apiKeyName
    }

    enum CodingKeys: String, CodingKey {
        case model, provider
        case apiKey = "api_key"
        case apiKeyName = "api_key_name"
    }
}

/// How the gateway retries a failed attempt: backoff growing from `initialBackoff` up to `maxBackoff`.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// How the backoff grows between attempts.
    public enum Increase: Sendable, Hashable, Codable {
        case constant
        case additive(Duration)
        case exponential(multiplier: Double)

        public init(from decoder: any Decoder) throws {
            let value = try JSONValue(from: decoder)
            switch value["type"]?.stringValue {
            case "constant": self = .constant
            case "additive":
                if case .integer(let ms)? = value["amount"] { self = .additive(.milliseconds(ms)) } else { self = .constant }
            default:
                if case .number(let multiplier)? = value["multiplier"] {
                    self = .exponential(multiplier: multiplier)
                } else if case .integer(let multiplier)? = value["multiplier"] {
                    self = .exponential(multiplier: Double(multiplier))
                } else {
                    self = .exponential(multiplier: 2)
                }
            }
        }

        public func encode(to encoder: any Encoder) throws {
            let value: JSONValue
            switch self {
            case .constant: value = ["type": "constant"]
            case .additive(let amount): value = ["type": "additive", "amount": .integer(amount.wholeMilliseconds)]
            case .exponential(let multiplier): value = ["type": "exponential", "multiplier": .number(multiplier)]
            }
            try value.encode(to: encoder)
        }
    }

    public var maxTries: Int?
    public var initialBackoff: Duration?
    public var increase: Increase?
    public var jitter: Duration?
    public var maxBackoff: Duration?
    /// Fail at once when a provider's rate-limit wait is longer than `maxBackoff`.
    public var failIfRateLimitExceedsMaxBackoff: Bool?

    /// Unset fields keep the gateway's defaults.
    public init(maxTries: Int? = nil, initialBackoff: Duration? = nil, increase: Increase? = nil,
                jitter: Duration? = nil, maxBackoff: Duration? = nil, failIfRateLimitExceedsMaxBackoff: Bool? = nil) {
        self.maxTries = maxTries
        self.initialBackoff = initialBackoff
        self.increase = increase
        self.jitter = jitter
        self.maxBackoff = maxBackoff
        self.failIfRateLimitExceedsMaxBackoff = failIfRateLimitExceedsMaxBackoff
    }

    enum CodingKeys: String, CodingKey {
        case maxTries = "max_tries", initialBackoff = "initial_backoff", increase, jitter
        case maxBackoff = "max_backoff"
        case failIfRateLimitExceedsMaxBackoff = "fail_if_rate_limit_exceeds_max_backoff"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func ms(_ key: CodingKeys) throws -> Duration? {
            try c.decodeIfPresent(Int64.self, forKey: key).map { .milliseconds($0) }
        }
        maxTries = try c.decodeIfPresent(Int.self, forKey: .maxTries)
        initialBackoff = try ms(.initialBackoff)
        increase = try c.decodeIfPresent(Increase.self, forKey: .increase)
        jitter = try ms(.jitter)
        maxBackoff = try ms(.maxBackoff)
        failIfRateLimitExceedsMaxBackoff = try c.decodeIfPresent(Bool.self, forKey: .failIfRateLimitExceedsMaxBackoff)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(maxTries, forKey: .maxTries)
        try c.encodeIfPresent(initialBackoff?.wholeMilliseconds, forKey: .initialBackoff)
        try c.encodeIfPresent(increase, forKey: .increase)
        try c.encodeIfPresent(jitter?.wholeMilliseconds, forKey: .jitter)
        try c.encodeIfPresent(maxBackoff?.wholeMilliseconds, forKey: .maxBackoff)
        try c.encodeIfPresent(failIfRateLimitExceedsMaxBackoff, forKey: .failIfRateLimitExceedsMaxBackoff)
    }
}

/// What is stored with a call's record. The run and step ids are filled from the enclosing
/// `ChronicleClient.run(_:input:_:)` scope unless set here.
public struct CallMetadata: Sendable, Hashable, Codable {
    public var application: String?
    public var environment: String?
    public var organizationID: String?
    public var projectID: String?
    public var userID: String?
    public var workflowID: String?
    public var workflowName: String?
    public var runID: UUID?
    public var stepID: UUID?
    public var stepIndex: UInt32?
    public var promptID: String?
    public var promptVersion: UInt32?
    /// Any other keys, stored in the record's `meta`.
    public var extra: [String: JSONValue]

    public init(application: String? = nil, environment: String? = nil, organizationID: String? = nil,
                projectID: String? = nil, userID: String? = nil, workflowID: String? = nil,
                workflowName: String? = nil, runID: UUID? = nil, stepID: UUID? = nil, stepIndex: UInt32? = nil,
                promptID: String? = nil, promptVersion: UInt32? = nil, extra: [String: JSONValue] = [:]) {
        self.application = application
        self.environment = environment
        self.organizationID = organizationID
        self.projectID = projectID
        self.userID = userID
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.runID = runID
        self.stepID = stepID
        self.stepIndex = stepIndex
        self.promptID = promptID
        self.promptVersion = promptVersion
        self.extra = extra
    }

    var isEmpty: Bool { self == CallMetadata() }

    /// Fills every field this metadata lacks from `defaults`; keys already set win.
    func filled(from defaults: CallMetadata) -> CallMetadata {
        var merged = self
        merged.application = application ?? defaults.application
        merged.environment = environment ?? defaults.environment
        merged.organizationID = organizationID ?? defaults.organizationID
        merged.projectID = projectID ?? defaults.projectID
        merged.userID = userID ?? defaults.userID
        merged.workflowID = workflowID ?? defaults.workflowID
        merged.workflowName = workflowName ?? defaults.workflowName
        merged.runID = runID ?? defaults.runID
        merged.stepID = stepID ?? defaults.stepID
        merged.stepIndex = stepIndex ?? defaults.stepIndex
        merged.promptID = promptID ?? defaults.promptID
        merged.promptVersion = promptVersion ?? defaults.promptVersion
        merged.extra = defaults.extra.merging(extra) { _, own in own }
        return merged
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case application, environment
        case organizationID = "organization_id", projectID = "project_id", userID = "user_id"
        case workflowID = "workflow_id", workflowName = "workflow_name"
        case runID = "run_id", stepID = "step_id", stepIndex = "step_index"
        case promptID = "prompt_id", promptVersion = "prompt_version"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        application = try c.decodeIfPresent(String.self, forKey: .application)
        environment = try c.decodeIfPresent(String.self, forKey: .environment)
        organizationID = try c.decodeIfPresent(String.self, forKey: .organizationID)
        projectID = try c.decodeIfPresent(String.self, forKey: .projectID)
        userID = try c.decodeIfPresent(String.self, forKey: .userID)
        workflowID = try c.decodeIfPresent(String.self, forKey: .workflowID)
        workflowName = try c.decodeIfPresent(String.self, forKey: .workflowName)
        runID = try c.decodeIfPresent(UUID.self, forKey: .runID)
        stepID = try c.decodeIfPresent(UUID.self, forKey: .stepID)
        stepIndex = try c.decodeIfPresent(UInt32.self, forKey: .stepIndex)
        promptID = try c.decodeIfPresent(String.self, forKey: .promptID)
        promptVersion = try c.decodeIfPresent(UInt32.self, forKey: .promptVersion)
        // The known keys come from CodingKeys; every other member is extra.
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        let all = try decoder.container(keyedBy: AnyKey.self)
        var extra: [String: JSONValue] = [:]
        for key in all.allKeys where !known.contains(key.stringValue) {
            extra[key.stringValue] = try all.decode(JSONValue.self, forKey: key)
        }
        self.extra = extra
    }

    public func encode(to encoder: any Encoder) throws {
        // Extra keys first, so that a named field always wins over an extra key of the same name.
        var all = encoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for (key, value) in extra.sorted(by: { $0.key < $1.key }) where !known.contains(key) {
            try all.encode(value, forKey: AnyKey(key))
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(application, forKey: .application)
        try c.encodeIfPresent(environment, forKey: .environment)
        try c.encodeIfPresent(organizationID, forKey: .organizationID)
        try c.encodeIfPresent(projectID, forKey: .projectID)
        try c.encodeIfPresent(userID, forKey: .userID)
        try c.encodeIfPresent(workflowID, forKey: .workflowID)
        try c.encodeIfPresent(workflowName, forKey: .workflowName)
        try c.encodeIfPresent(runID.map { $0.uuidString.lowercased() }, forKey: .runID)
        try c.encodeIfPresent(stepID.map { $0.uuidString.lowercased() }, forKey: .stepID)
        try c.encodeIfPresent(stepIndex, forKey: .stepIndex)
        try c.encodeIfPresent(promptID, forKey: .promptID)
        try c.encodeIfPresent(promptVersion, forKey: .promptVersion)
    }
}

extension Duration {
    /// Whole milliseconds, as Chronicle's JSON carries durations.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
