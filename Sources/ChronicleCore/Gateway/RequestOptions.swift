import Foundation

/// How one request is routed, retried and recorded.
///
/// The server reads these from the request body keys next to the chat request and from `x-chronicle-*` headers.
public struct RequestOptions: Sendable, Hashable {
    /// Overrides the body's model, or names an alias. Settable over HTTP only through `x-chronicle-model`.
    public var model: String?
    /// Forces a named provider when the model is not an alias and `models` is empty.
    public var provider: String?
    /// Replaces the provider's endpoint URL for every attempt.
    public var overrideURL: String?
    /// A provider key for the single-model path.
    public var apiKey: String?
    /// The name of a configured API key for the single-model path (`apiKey` wins over it). Aliases and
    /// explicit `models` name their own keys.
    public var apiKeyName: String?
    /// Explicit ordered choices; when non-empty, `model`, `provider`, `apiKey` and aliases are ignored.
    public var models: [ModelChoice]
    /// With `models`, start at a random choice.
    public var randomChoice: Bool?
    /// How long one attempt may wait for the upstream's response headers.
    public var timeout: Duration?
    public var retry: RetryOptions?
    public var metadata: RequestMetadata
    /// Set only by embedders; stored in the `organization_id`, `project_id` and `user_id` columns.
    public var internalMetadata: InternalMetadata

    public init(model: String? = nil, provider: String? = nil, overrideURL: String? = nil, apiKey: String? = nil,
                models: [ModelChoice] = [], randomChoice: Bool? = nil, timeout: Duration? = nil,
                retry: RetryOptions? = nil, metadata: RequestMetadata = RequestMetadata(),
                internalMetadata: InternalMetadata = InternalMetadata(), apiKeyName: String? = nil) {
        self.model = model
        self.apiKeyName = apiKeyName
        self.provider = provider
        self.overrideURL = overrideURL
        self.apiKey = apiKey
        self.models = models
        self.randomChoice = randomChoice
        self.timeout = timeout
        self.retry = retry
        self.metadata = metadata
        self.internalMetadata = internalMetadata
    }

    /// The body keys read as options; everything else in the body belongs to the chat request.
    public static let bodyKeys: Set<String> = [
        "provider", "override_url", "api_key", "api_key_name", "models", "random_choice", "timeout", "retry", "metadata",
    ]
}

extension RequestOptions: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.model = nil
        self.provider = try c.decodeIfPresent(String.self, "provider")
        self.overrideURL = try c.decodeIfPresent(String.self, "override_url")
        self.apiKey = try c.decodeIfPresent(String.self, "api_key")
        self.apiKeyName = try c.decodeIfPresent(String.self, "api_key_name")
        self.models = try c.decodeIfPresent([ModelChoice].self, "models") ?? []
        self.randomChoice = try c.decodeIfPresent(Bool.self, "random_choice")
        self.timeout = try c.decodeIfPresent(Int64.self, "timeout", in: 0...Int64(Int32.max)).map { .milliseconds($0) }
        self.retry = try c.decodeIfPresent(RetryOptions.self, "retry")
        self.metadata = try c.decodeIfPresent(RequestMetadata.self, "metadata") ?? RequestMetadata()
        self.internalMetadata = InternalMetadata()
    }

    /// Encodes the options for logs and traces, without any API key.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(model, "model")
        try c.encodeIfPresent(provider, "provider")
        try c.encodeIfPresent(overrideURL, "override_url")
        try c.encodeIfPresent(apiKeyName, "api_key_name")
        if !models.isEmpty { try c.encode(models, "models") }
        try c.encodeIfPresent(randomChoice, "random_choice")
        try c.encodeIfPresent(timeout.map(\.milliseconds), "timeout")
        try c.encodeIfPresent(retry, "retry")
        try c.encode(metadata, "metadata")
    }
}

/// One explicit routing choice: a model at a named provider, with an optional key.
public struct ModelChoice: Sendable, Hashable {
    public var model: String
    public var provider: String
    /// A literal key; wins over `apiKeyName`. Never logged.
    public var apiKey: String?
    /// The name of a configured API key.
    public var apiKeyName: String?

    public init(model: String, provider: String, apiKey: String? = nil, apiKeyName: String? = nil) {
        self.model = model
        self.provider = provider
        self.apiKey = apiKey
        self.apiKeyName = apiKeyName
    }
}

extension ModelChoice: Codable {
    enum CodingKeys: String, CodingKey {
        case model, provider
        case apiKey = "api_key"
        case apiKeyName = "api_key_name"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(model, forKey: .model)
        try c.encode(provider, forKey: .provider)
        try c.encodeIfPresent(apiKeyName, forKey: .apiKeyName)
    }
}

/// Caller-supplied metadata stored with the call. Unknown keys are kept in ``extra``.
public struct RequestMetadata: Sendable, Hashable {
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
    /// Every other key. A key named `extra` holding an object is merged in, as the JS client sends it.
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

    static let knownKeys: Set<String> = [
        "application", "environment", "organization_id", "project_id", "user_id", "workflow_id", "workflow_name",
        "run_id", "step_id", "step_index", "prompt_id", "prompt_version",
    ]

    /// Fills every field this metadata lacks from `other`; `extra` keys already set win.
    public mutating func fillMissing(from other: RequestMetadata) {
        application = application ?? other.application
        environment = environment ?? other.environment
        organizationID = organizationID ?? other.organizationID
        projectID = projectID ?? other.projectID
        userID = userID ?? other.userID
        workflowID = workflowID ?? other.workflowID
        workflowName = workflowName ?? other.workflowName
        runID = runID ?? other.runID
        stepID = stepID ?? other.stepID
        stepIndex = stepIndex ?? other.stepIndex
        promptID = promptID ?? other.promptID
        promptVersion = promptVersion ?? other.promptVersion
        extra.merge(other.extra) { mine, _ in mine }
    }
}

extension RequestMetadata: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        self.application = try c.decodeIfPresent(String.self, "application")
        self.environment = try c.decodeIfPresent(String.self, "environment")
        self.organizationID = try c.decodeIfPresent(String.self, "organization_id")
        self.projectID = try c.decodeIfPresent(String.self, "project_id")
        self.userID = try c.decodeIfPresent(String.self, "user_id")
        self.workflowID = try c.decodeIfPresent(String.self, "workflow_id")
        self.workflowName = try c.decodeIfPresent(String.self, "workflow_name")
        self.runID = try c.decodeIfPresent(UUID.self, "run_id")
        self.stepID = try c.decodeIfPresent(UUID.self, "step_id")
        self.stepIndex = try c.decodeIfPresent(UInt32.self, "step_index", in: 0...Int64(UInt32.max))
        self.promptID = try c.decodeIfPresent(String.self, "prompt_id")
        self.promptVersion = try c.decodeIfPresent(UInt32.self, "prompt_version", in: 0...Int64(UInt32.max))
        var extra = try c.decodeUnknownFields(excluding: Self.knownKeys)
        // The JS client's types put free-form keys under `extra`: merge them rather than nesting.
        if case .object(let nested)? = extra["extra"] {
            extra.removeValue(forKey: "extra")
            extra.merge(nested) { outer, _ in outer }
        }
        self.extra = extra
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(application, "application")
        try c.encodeIfPresent(environment, "environment")
        try c.encodeIfPresent(organizationID, "organization_id")
        try c.encodeIfPresent(projectID, "project_id")
        try c.encodeIfPresent(userID, "user_id")
        try c.encodeIfPresent(workflowID, "workflow_id")
        try c.encodeIfPresent(workflowName, "workflow_name")
        try c.encodeIfPresent(runID, "run_id")
        try c.encodeIfPresent(stepID, "step_id")
        try c.encodeIfPresent(stepIndex, "step_index")
        try c.encodeIfPresent(promptID, "prompt_id")
        try c.encodeIfPresent(promptVersion, "prompt_version")
        try c.encodeUnknownFields(extra, excluding: Self.knownKeys)
    }
}

/// Metadata only an embedding application can set.
public struct InternalMetadata: Sendable, Hashable, Codable {
    public var organizationID: String?
    public var projectID: String?
    public var userID: String?
    /// The name of the gateway key the client authenticated with (never the key itself).
    public var gatewayKey: String?

    public init(organizationID: String? = nil, projectID: String? = nil, userID: String? = nil,
                gatewayKey: String? = nil) {
        self.organizationID = organizationID
        self.projectID = projectID
        self.userID = userID
        self.gatewayKey = gatewayKey
    }

    enum CodingKeys: String, CodingKey {
        case organizationID = "organization_id"
        case projectID = "project_id"
        case userID = "user_id"
        case gatewayKey = "gateway_key"
    }
}

extension Duration {
    /// The duration in whole milliseconds.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
