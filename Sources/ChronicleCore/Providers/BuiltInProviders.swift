/// The providers Chronicle knows without configuration.
import Foundation

public enum BuiltInProviders {
    /// One OpenAI-format built-in: its routing name, endpoint, key variable and prefixes.
    public struct Definition: Sendable {
        public let name: String
        public let label: String
        public let url: String
        public let keyVariable: String
        public let routingPrefixes: [String]
        public let transforms: OpenAIRequestTransforms
        /// A few current models, listed by `GET /v1/models` when the key is set.
        public var models: [String] = []
    }

    /// The OpenAI-format built-ins. Each strips its own routing prefix, and needs its key only at its
    /// vendor's URL: sent to an `override_url` without one, it sends no `Authorization` header.
    public static let openAIFormat: [Definition] = [
        Definition(
            name: "openai", label: "OpenAI", url: "https://api.openai.com/v1/chat/completions",
            keyVariable: "OPENAI_API_KEY",
            routingPrefixes: ["openai/", "gpt-", "chatgpt-", "o1", "o3", "o4-", "text-embedding-"],
            transforms: {
                var transforms = OpenAIRequestTransforms(stripModelPrefix: "openai/", requestStreamUsage: true)
                transforms.servesResponses = true
                return transforms
            }(),
            models: ["gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini"]),
        Definition(
            name: "groq", label: "Groq", url: "https://api.groq.com/openai/v1/chat/completions",
            keyVariable: "GROQ_API_KEY", routingPrefixes: ["groq/"],
            transforms: {
                var transforms = OpenAIRequestTransforms(
                    stripModelPrefix: "groq/", unsupportedFields: ["logprobs", "logit_bias", "top_logprobs", "n"],
                    usageInXGroq: true)
                transforms.recoversToolUseFailures = true
                return transforms
            }(),
            models: ["groq/llama-3.1-8b-instant", "groq/llama-3.3-70b-versatile"]),
        Definition(
            name: "mistral", label: "Mistral", url: "https://api.mistral.ai/v1/chat/completions",
            keyVariable: "MISTRAL_API_KEY", routingPrefixes: ["mistral/"],
            transforms: OpenAIRequestTransforms(stripModelPrefix: "mistral/"),
            models: ["mistral/mistral-large-latest", "mistral/mistral-small-latest"]),
        Definition(
            name: "together", label: "together.ai", url: "https://api.together.xyz/v1/chat/completions",
            keyVariable: "TOGETHER_API_KEY", routingPrefixes: ["together/"],
            transforms: OpenAIRequestTransforms(stripModelPrefix: "together/"),
            models: ["together/meta-llama/Llama-3.3-70B-Instruct-Turbo"]),
        Definition(
            name: "fireworks", label: "fireworks.ai", url: "https://api.fireworks.ai/inference/v1/chat/completions",
            keyVariable: "FIREWORKS_API_KEY", routingPrefixes: ["fireworks/"],
            transforms: OpenAIRequestTransforms(stripModelPrefix: "fireworks/"),
            models: ["fireworks/accounts/fireworks/models/llama-v3p1-70b-instruct"]),
        Definition(
            name: "deepinfra", label: "DeepInfra", url: "https://api.deepinfra.com/v1/openai/chat/completions",
            keyVariable: "DEEPINFRA_API_KEY", routingPrefixes: ["deepinfra/"],
            transforms: OpenAIRequestTransforms(stripModelPrefix: "deepinfra/"),
            models: ["deepinfra/meta-llama/Meta-Llama-3.1-70B-Instruct"]),
        Definition(
            name: "anyscale", label: "Anyscale", url: "https://api.endpoints.anyscale.com/v1/chat/completions",
            keyVariable: "ANYSCALE_API_KEY", routingPrefixes: ["anyscale/"],
            transforms: OpenAIRequestTransforms(stripModelPrefix: "anyscale/"),
            models: ["anyscale/meta-llama/Meta-Llama-3-70B-Instruct"]),
    ]

    /// Instances of every built-in, keyed from their environment variables.
    public static func all(transport: UpstreamHTTPClient) -> [any ChatModelProvider] {
        let ollamaURL = getenv("OLLAMA_HOST").map { String(cString: $0) }.map(ollamaChatURL) ?? OllamaProvider.defaultURL
        let azureVersion = getenv("AZURE_OPENAI_API_VERSION").map { String(cString: $0) } ?? azureDefaultAPIVersion
        let azure = OpenAICompatibleProvider(
            name: "azure", label: "Azure OpenAI",
            endpoint: .azure(endpoint: .environment("AZURE_OPENAI_ENDPOINT"), apiVersion: azureVersion),
            key: .environment("AZURE_OPENAI_API_KEY"), routingPrefixes: ["azure/"],
            transforms: OpenAIRequestTransforms(stripModelPrefix: "azure/", requestStreamUsage: true), transport: transport)
        let geminiKey: ProviderKey = getenv("GEMINI_API_KEY") == nil && getenv("GOOGLE_API_KEY") != nil
            ? .environment("GOOGLE_API_KEY") : .environment("GEMINI_API_KEY")
        var anthropic = AnthropicProvider(transport: transport)
        anthropic.models = ["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"]
        var gemini = GeminiProvider(key: geminiKey, transport: transport)
        gemini.models = ["gemini/gemini-2.5-pro", "gemini/gemini-2.5-flash"]
        var bedrock = BedrockProvider(transport: transport)
        bedrock.models = ["aws-bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "aws-bedrock/amazon.nova-lite-v1:0"]
        return [anthropic, OllamaProvider(url: ollamaURL, transport: transport), azure, gemini, bedrock]
            + openAIFormat.map { definition in
            var provider = OpenAICompatibleProvider(
                name: definition.name, label: definition.label, url: definition.url,
                key: .environment(definition.keyVariable), routingPrefixes: definition.routingPrefixes,
                transforms: definition.transforms, keyRequiredOnlyAt: definition.url, transport: transport)
            provider.models = definition.models
            return provider
        }
    }

    /// The Azure OpenAI API version used unless configured.
    public static let azureDefaultAPIVersion = "2024-10-21"

    /// The chat endpoint for an `OLLAMA_HOST` value such as `10.0.0.5:11434` or `http://gpu-box:11434`.
    static func ollamaChatURL(_ host: String) -> String {
        var base = host.hasPrefix("http://") || host.hasPrefix("https://") ? host : "http://\(host)"
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/api/chat"
    }
}
