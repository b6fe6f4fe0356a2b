import Foundation

/// What one model costs, in US dollars per million tokens, from a date on.
///
/// Token counts are read from the gateway's usage, which follows OpenAI's terms for every provider:
/// prompt tokens include cached reads and cache writes (the providers' adapters add Anthropic's and
/// Bedrock's separate counts in), and completion tokens include reasoning tokens. So the prompt is split
/// into uncached, cache-read and cache-write parts, and the completion into reasoning and the rest.
public struct ModelPrice: Sendable, Hashable {
    /// The provider's name, as calls record it (`openai`, `anthropic`, `aws-bedrock`, a custom provider's name).
    public var provider: String
    /// The model string, as calls record it.
    public var model: String
    public var inputPerMillion: Double
    public var outputPerMillion: Double
    /// Prompt tokens read from the provider's cache; priced as input when nil.
    public var cachedInputPerMillion: Double?
    /// Prompt tokens written to the cache (Anthropic, Bedrock); priced as input when nil.
    public var cacheWritePerMillion: Double?
    /// Reasoning tokens, when priced apart from output; billed as output when nil.
    public var reasoningPerMillion: Double?
    /// A fixed amount per call (the database's pricing plans have one).
    public var perRequest: Double
    /// The first day the price applies (UTC); nil for "always".
    public var effectiveFrom: Date?

    public init(provider: String, model: String, inputPerMillion: Double, outputPerMillion: Double,
                cachedInputPerMillion: Double? = nil, cacheWritePerMillion: Double? = nil,
                reasoningPerMillion: Double? = nil, perRequest: Double = 0, effectiveFrom: Date? = nil) {
        self.provider = provider
        self.model = model
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
        self.cachedInputPerMillion = cachedInputPerMillion
        self.cacheWritePerMillion = cacheWritePerMillion
        self.reasoningPerMillion = reasoningPerMillion
        self.perRequest = perRequest
        self.effectiveFrom = effectiveFrom
    }

    /// The cost of a call with this usage, in US dollars.
    public func cost(of usage: Usage) -> Double {
        let prompt = max(0, usage.promptTokens ?? 0)
        let cacheRead = min(max(0, usage.cachedTokens ?? 0), prompt)
        let cacheWrite = min(max(0, usage.cacheCreationTokens ?? 0), prompt - cacheRead)
        let uncached = prompt - cacheRead - cacheWrite
        let completion = max(0, usage.completionTokens ?? 0)
        var dollars = Double(uncached) * inputPerMillion
            + Double(cacheRead) * (cachedInputPerMillion ?? inputPerMillion)
            + Double(cacheWrite) * (cacheWritePerMillion ?? inputPerMillion)
        if let reasoningPerMillion {
            let reasoning = min(max(0, usage.reasoningTokens ?? 0), completion)
            dollars += Double(completion - reasoning) * outputPerMillion + Double(reasoning) * reasoningPerMillion
        } else {
            dollars += Double(completion) * outputPerMillion
        }
        return dollars / 1_000_000 + perRequest
    }
}

extension Usage {
    /// Prompt tokens written to the provider's cache (Anthropic's `cache_creation_input_tokens`, Bedrock's
    /// `cacheWriteInputTokens`), when it reports them.
    public var cacheCreationTokens: Int? {
        unknownFields["prompt_tokens_details"]?["cache_creation_tokens"]?.intValue
    }
}
