import Foundation

/// A chat-completions request: the OpenAI format, with Chronicle's ``ChronicleOptions`` beside it.
///
/// ```swift
/// let request = ChatRequest(
///     model: "openai/gpt-4o-mini",
///     messages: [.system("Be brief."), .user("Summarize this page: …")],
///     maxTokens: 300,
///     options: ChronicleOptions(retry: RetryPolicy(maxTries: 3), timeout: .seconds(30)))
/// ```
public struct ChatRequest: Sendable, Hashable, Encodable {
    /// The model, `provider/model` or an alias configured in the gateway.
    public var model: String?
    /// The conversation so far, oldest first.
    public var messages: [ChatMessage]
    /// The most tokens the answer may have.
    public var maxTokens: Int?
    /// Sampling temperature (0 to 2).
    public var temperature: Double?
    /// Nucleus sampling: the probability mass to sample from.
    public var topP: Double?
    /// Sequences that end the answer.
    public var stop: [String]?
    /// A seed for providers that sample deterministically.
    public var seed: Int64?
    /// Functions the model may call.
    public var tools: [Tool]?
    /// Whether, and which, tool the model must call.
    public var toolChoice: ToolChoice?
    /// Free text, a JSON object, or JSON matching a schema.
    public var responseFormat: ResponseFormat?
    /// The end user's id, passed to the provider.
    public var user: String?
    /// Any other OpenAI fields (`parallel_tool_calls`, `reasoning_effort`, …), sent as given.
    public var extraFields: [String: JSONValue]
    /// Chronicle's options: models to try, retry, timeout, provider, metadata.
    public var options: ChronicleOptions

    public init(model: String? = nil, messages: [ChatMessage], maxTokens: Int? = nil, temperature: Double? = nil,
                topP: Double? = nil, stop: [String]? = nil, seed: Int64? = nil, tools: [Tool]? = nil,
                toolChoice: ToolChoice? = nil, responseFormat: ResponseFormat? = nil, user: String? = nil,
                extraFields: [String: JSONValue] = [:], options: ChronicleOptions = ChronicleOptions()) {
        self.model = model
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.stop = stop
        self.seed = seed
        self.tools = tools
        self.toolChoice = toolChoice
        self.responseFormat = responseFormat
        self.user = user
        self.extraFields = extraFields
        self.options = options
    }

    /// Whether the body asks for a stream; the client sets it for ``ChronicleClient/streamChat(_:)``.
    var stream = false

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        for (key, value) in extraFields.sorted(by: { $0.key < $1.key }) { try c.encode(value, forKey: AnyKey(key)) }
        try c.encodeIfPresent(model, forKey: AnyKey("model"))
        try c.encode(messages, forKey: AnyKey("messages"))
        try c.encodeIfPresent(maxTokens, forKey: AnyKey("max_tokens"))
        try c.encodeIfPresent(temperature, forKey: AnyKey("temperature"))
        try c.encodeIfPresent(topP, forKey: AnyKey("top_p"))
        try c.encodeIfPresent(stop, forKey: AnyKey("stop"))
        try c.encodeIfPresent(seed, forKey: AnyKey("seed"))
        try c.encodeIfPresent(tools, forKey: AnyKey("tools"))
        try c.encodeIfPresent(toolChoice, forKey: AnyKey("tool_choice"))
        try c.encodeIfPresent(responseFormat, forKey: AnyKey("response_format"))
        try c.encodeIfPresent(user, forKey: AnyKey("user"))
        if stream {
            try c.encode(true, forKey: AnyKey("stream"))
            // The final chunk then carries the usage.
            try c.encode(["include_usage": true], forKey: AnyKey("stream_options"))
        }
        try options.encode(into: &c)
    }
}
