import Foundation

/// Routing configuration: custom providers, aliases, named API keys and timeouts (the proxy part of
/// `chronicle.toml`).
public struct GatewayConfiguration: Sendable, Hashable {
    public var providers: [CustomProviderConfig]
    public var aliases: [AliasConfig]
    public var apiKeys: [APIKeyConfig]
    /// How long one attempt waits for the upstream's response headers (default 60 s).
    public var defaultTimeout: Duration?
    /// How long a stream may stay silent between chunks before it is failed (default 120 s).
    public var streamIdleTimeout: Duration?
    public var userAgent: String?
    public var retry: RetryOptions?
    /// Whether spans carry prompt and completion text (`llm.prompts`, `llm.completions`); off when nil.
    /// Optional so that a later configuration can turn it off again.
    public var tracePayloads: Bool?
    /// Whether an embeddings call's record keeps its vectors (`log_embedding_vectors`); when off or nil it
    /// keeps only their count and dimension.
    public var logEmbeddingVectors: Bool?
    /// Limits on fetching image URLs for Bedrock and Ollama (`max_image_bytes`, `image_url_allowlist`).
    public var imageFetch: ImageFetchPolicy?
    /// The upstream transport (`upstream_http_client`): pooled HTTP/1.1 over SwiftNIO unless set to AsyncHTTPClient.
    public var upstreamHTTPClient: UpstreamHTTPClientKind?

    public init(providers: [CustomProviderConfig] = [], aliases: [AliasConfig] = [], apiKeys: [APIKeyConfig] = [],
                defaultTimeout: Duration? = nil, streamIdleTimeout: Duration? = nil, userAgent: String? = nil,
                retry: RetryOptions? = nil, tracePayloads: Bool? = nil, imageFetch: ImageFetchPolicy? = nil) {
        self.imageFetch = imageFetch
        self.tracePayloads = tracePayloads
        self.providers = providers
        self.aliases = aliases
        self.apiKeys = apiKeys
        self.defaultTimeout = defaultTimeout
        self.streamIdleTimeout = streamIdleTimeout
        self.userAgent = userAgent
        self.retry = retry
    }

    /// Lays `other`, a later configuration, over this one (``ConfigurationPrecedence``): its providers,
    /// aliases and keys replace those of the same name, and each scalar it sets replaces this one's.
    public mutating func merge(_ other: GatewayConfiguration) {
        providers = ConfigurationPrecedence.mergeNamed(providers, other.providers, name: \.name)
        aliases = ConfigurationPrecedence.mergeNamed(aliases, other.aliases, name: \.name)
        apiKeys = ConfigurationPrecedence.mergeNamed(apiKeys, other.apiKeys, name: \.name)
        defaultTimeout = other.defaultTimeout ?? defaultTimeout
        streamIdleTimeout = other.streamIdleTimeout ?? streamIdleTimeout
        userAgent = other.userAgent ?? userAgent
        retry = other.retry ?? retry
        tracePayloads = other.tracePayloads ?? tracePayloads
        logEmbeddingVectors = other.logEmbeddingVectors ?? logEmbeddingVectors
        imageFetch = other.imageFetch ?? imageFetch
        upstreamHTTPClient = other.upstreamHTTPClient ?? upstreamHTTPClient
    }
}

/// A provider defined in configuration (a `[[providers]]` entry) rather than built in.
public struct CustomProviderConfig: Sendable, Hashable, Codable {
    public var name: String
    public var label: String?
    /// The full chat endpoint URL.
    public var url: String
    /// The key, or with `apiKeySource = "env"` the name of the variable holding it.
    public var apiKey: String?
    public var apiKeySource: String?
    public var format: ProviderFormat
    public var headers: [String: String]
    /// Model names starting with this route here by default.
    public var prefix: String?
    /// The models `GET /v1/models` lists for this provider (otherwise its prefix).
    public var models: [String]?

    public init(name: String, label: String? = nil, url: String, apiKey: String? = nil, apiKeySource: String? = nil,
                format: ProviderFormat = .openAI(OpenAIFormatTransforms()), headers: [String: String] = [:],
                prefix: String? = nil, models: [String]? = nil) {
        self.models = models
        self.name = name
        self.label = label
        self.url = url
        self.apiKey = apiKey
        self.apiKeySource = apiKeySource
        self.format = format
        self.headers = headers
        self.prefix = prefix
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, label, url, format, headers, prefix, models
        case apiKey = "api_key"
        case apiKeySource = "api_key_source"
    }

    /// The fields a provider's JSON or TOML form may have.
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try c.decode(String.self, forKey: .name)
        self.label = try c.decodeIfPresent(String.self, forKey: .label)
        self.url = try c.decode(String.self, forKey: .url)
        self.apiKey = try c.decodeIfPresent(String.self, forKey: .apiKey)
        self.apiKeySource = try c.decodeIfPresent(String.self, forKey: .apiKeySource)
        self.format = try c.decodeIfPresent(ProviderFormat.self, forKey: .format) ?? .openAI(OpenAIFormatTransforms())
        self.headers = try c.decodeIfPresent([String: String].self, forKey: .headers) ?? [:]
        self.prefix = try c.decodeIfPresent(String.self, forKey: .prefix)
        self.models = try c.decodeIfPresent([String].self, forKey: .models)
    }

    /// What `GET /v1/models` lists for this provider, named so that each routes here: the configured models
    /// (behind the prefix when it ends in `/`), otherwise the prefix itself.
    var advertisedModels: [String] {
        guard let models, !models.isEmpty else { return prefix.map { [$0] } ?? [] }
        guard let prefix, prefix.hasSuffix("/") else { return models }
        return models.map { $0.hasPrefix(prefix) ? $0 : prefix + $0 }
    }

    /// The extra headers in a stable order.
    var headerList: [(String, String)] { headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// What is removed from the front of the model name before sending. A routing prefix ending in `/`
    /// (`corp/`) names the provider, not the model, so it is stripped whatever the format, as the built-ins
    /// strip theirs. An OpenAI-format `strip_model_prefix` replaces it; set to `""` it strips nothing.
    var strippedPrefix: String? {
        if case .openAI(let transforms) = format, let explicit = transforms.stripModelPrefix {
            return explicit.isEmpty ? nil : explicit
        }
        return prefix.flatMap { $0.hasSuffix("/") ? $0 : nil }
    }

    /// Where this provider's key comes from.
    public var key: ProviderKey {
        guard let apiKey, !apiKey.isEmpty else { return .none }
        return apiKeySource == "env" ? .environment(apiKey) : .literal(apiKey)
    }
}

/// The wire format a custom provider speaks. `format = "openai"` or Rust Chronicle's table form
/// `{ type = "open_ai", transforms = { … } }`.
public enum ProviderFormat: Sendable, Hashable {
    case openAI(OpenAIFormatTransforms)
    /// Anthropic's Messages API (`format = "anthropic"`); the URL is the messages endpoint.
    case anthropic
    /// Ollama's native API (`format = "ollama"`); the URL is the `/api/chat` endpoint.
    case ollama
    /// Azure OpenAI (`format = { type = "azure", api_version = "2024-10-21" }`); the URL is the resource
    /// endpoint and the model name is the deployment.
    case azure(apiVersion: String)
    /// Google Gemini (`format = "gemini"`); the URL is the API base, e.g. `https://generativelanguage.googleapis.com/v1beta`.
    case gemini
}

extension ProviderFormat: Codable {
    enum CodingKeys: String, CodingKey {
        case type, transforms
        case apiVersion = "api_version"
    }

    public init(from decoder: any Decoder) throws {
        if let shorthand = try? decoder.singleValueContainer().decode(String.self) {
            self = try Self.named(shorthand, transforms: nil, apiVersion: nil, codingPath: decoder.codingPath)
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        let transforms = try c.decodeIfPresent(OpenAIFormatTransforms.self, forKey: .transforms)
        let apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion)
        self = try Self.named(type, transforms: transforms, apiVersion: apiVersion, codingPath: decoder.codingPath)
    }

    private static func named(_ name: String, transforms: OpenAIFormatTransforms?, apiVersion: String?,
                              codingPath: [any CodingKey]) throws -> ProviderFormat
    {
        switch name.lowercased() {
        case "azure", "azure_openai":
            return .azure(apiVersion: apiVersion ?? BuiltInProviders.azureDefaultAPIVersion)
        case "openai", "open_ai":
            return .openAI(transforms ?? OpenAIFormatTransforms())
        case "anthropic":
            return .anthropic
        case "ollama":
            return .ollama
        case "gemini", "google":
            return .gemini
        default:
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath,
                debugDescription: "unknown provider format \"\(name)\"; expected \"openai\", \"anthropic\", \"ollama\", \"gemini\" or \"azure\""))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .openAI(let transforms):
            try c.encode("open_ai", forKey: .type)
            try c.encode(transforms, forKey: .transforms)
        case .anthropic:
            try c.encode("anthropic", forKey: .type)
        case .ollama:
            try c.encode("ollama", forKey: .type)
        case .gemini:
            try c.encode("gemini", forKey: .type)
        case .azure(let apiVersion):
            try c.encode("azure", forKey: .type)
            try c.encode(apiVersion, forKey: .apiVersion)
        }
    }
}

/// The `transforms` table of an OpenAI-format custom provider.
public struct OpenAIFormatTransforms: Sendable, Hashable, Codable {
    public var supportsMessageName: Bool
    public var systemInMessages: Bool
    public var stripModelPrefix: String?
    /// Ask for `stream_options.include_usage` when streaming (off by default: some servers reject it).
    public var includeStreamUsage: Bool
    /// The server also serves OpenAI's Responses API (`/responses` next to `/chat/completions`): Responses
    /// requests then pass through instead of being translated. Off by default: most OpenAI-compatible
    /// servers serve chat completions only.
    public var responsesAPI: Bool

    public init(supportsMessageName: Bool = true, systemInMessages: Bool = true, stripModelPrefix: String? = nil,
                includeStreamUsage: Bool = false, responsesAPI: Bool = false) {
        self.supportsMessageName = supportsMessageName
        self.systemInMessages = systemInMessages
        self.stripModelPrefix = stripModelPrefix
        self.includeStreamUsage = includeStreamUsage
        self.responsesAPI = responsesAPI
    }

    enum CodingKeys: String, CodingKey {
        case supportsMessageName = "supports_message_name"
        case systemInMessages = "system_in_messages"
        case stripModelPrefix = "strip_model_prefix"
        case includeStreamUsage = "include_stream_usage"
        case responsesAPI = "responses_api"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.supportsMessageName = try c.decodeIfPresent(Bool.self, forKey: .supportsMessageName) ?? true
        self.systemInMessages = try c.decodeIfPresent(Bool.self, forKey: .systemInMessages) ?? true
        self.stripModelPrefix = try c.decodeIfPresent(String.self, forKey: .stripModelPrefix)
        self.includeStreamUsage = try c.decodeIfPresent(Bool.self, forKey: .includeStreamUsage) ?? false
        self.responsesAPI = try c.decodeIfPresent(Bool.self, forKey: .responsesAPI) ?? false
    }

    var requestTransforms: OpenAIRequestTransforms {
        var transforms = OpenAIRequestTransforms(
            supportsMessageName: supportsMessageName, systemInMessages: systemInMessages,
            stripModelPrefix: stripModelPrefix, requestStreamUsage: includeStreamUsage)
        transforms.servesResponses = responsesAPI
        return transforms
    }
}

/// A model name that expands to an ordered list of choices.
public struct AliasConfig: Sendable, Hashable, Codable {
    public var name: String
    public var randomOrder: Bool
    public var models: [AliasModel]

    public init(name: String, randomOrder: Bool = false, models: [AliasModel]) {
        self.name = name
        self.randomOrder = randomOrder
        self.models = models
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, models
        case randomOrder = "random_order"
    }

    /// The fields an alias's JSON or TOML form may have.
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try c.decode(String.self, forKey: .name)
        self.randomOrder = try c.decodeIfPresent(Bool.self, forKey: .randomOrder) ?? false
        self.models = try c.decodeIfPresent([AliasModel].self, forKey: .models) ?? []
    }
}

/// One choice of an alias.
public struct AliasModel: Sendable, Hashable, Codable {
    public var model: String
    public var provider: String
    public var apiKeyName: String?

    public init(model: String, provider: String, apiKeyName: String? = nil) {
        self.model = model
        self.provider = provider
        self.apiKeyName = apiKeyName
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, provider
        case apiKeyName = "api_key_name"
    }

    /// The fields an alias choice's JSON or TOML form may have.
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
}

/// A named API key: a literal value, or with `source = "env"` the name of an environment variable.
public struct APIKeyConfig: Sendable, Hashable, Codable {
    public var name: String
    public var source: String
    public var value: String

    public init(name: String, source: String, value: String) {
        self.name = name
        self.source = source
        self.value = value
    }

    public var key: ProviderKey {
        source == "env" ? .environment(value) : .literal(value)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, source, value
    }

    /// The fields a named key's JSON or TOML form may have.
    public static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))
}

/// A duration in configuration: integer milliseconds, a string such as `"30s"`, `"1500ms"` or `"2m"`,
/// or Rust Chronicle's `{ secs = 30, nanos = 0 }` table.
public struct ConfigDuration: Sendable, Hashable, Codable {
    public var duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    enum TableKeys: String, CodingKey { case secs, nanos }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.singleValueContainer() {
            if let ms = try? container.decode(Int64.self) {
                guard ms >= 0 else { throw Self.invalid(decoder, "a duration cannot be negative") }
                self.duration = .milliseconds(ms)
                return
            }
            if let text = try? container.decode(String.self) {
                guard let parsed = RateLimitHeaders.parseGoDuration(text) else {
                    throw Self.invalid(decoder, "cannot read duration \"\(text)\"; write e.g. \"30s\", \"1500ms\" or \"2m\"")
                }
                self.duration = parsed
                return
            }
        }
        if let table = try? decoder.container(keyedBy: TableKeys.self) {
            let secs = try table.decodeIfPresent(Int64.self, forKey: .secs) ?? 0
            let nanos = try table.decodeIfPresent(Int64.self, forKey: .nanos) ?? 0
            self.duration = .seconds(secs) + .nanoseconds(nanos)
            return
        }
        if var array = try? decoder.unkeyedContainer() {
            let secs = try array.decode(Int64.self)
            let nanos = try array.decodeIfPresent(Int64.self) ?? 0
            self.duration = .seconds(secs) + .nanoseconds(nanos)
            return
        }
        throw Self.invalid(decoder, "expected milliseconds, a string such as \"30s\", or { secs, nanos }")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(duration.milliseconds)
    }

    private static func invalid(_ decoder: any Decoder, _ message: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
    }
}
