/// Exposes the request conversion so tests can check the exact upstream JSON without a server.
public enum AnthropicTestAccess {
    public static func convert(_ request: ChatRequest) throws -> JSONValue {
        try JSONCoding.decode(JSONValue.self, from: JSONCoding.encodeBytes(AnthropicConversion.request(request)))
    }
}

/// Exposes built-in provider helpers to tests.
public enum BuiltInProvidersTestAccess {
    public static func ollamaChatURL(_ host: String) -> String { BuiltInProviders.ollamaChatURL(host) }
}

/// Exposes the Gemini request conversion to tests.
public enum GeminiTestAccess {
    public static func convert(_ request: ChatRequest) throws -> JSONValue {
        try GeminiConversion.request(request)
    }
}

/// Exposes the Bedrock and Ollama request conversions to tests.
public enum ConversionTestAccess {
    public static func bedrock(_ request: ChatRequest) throws -> JSONValue { try BedrockConversion.request(request) }
    public static func ollama(_ request: ChatRequest) throws -> JSONValue { try OllamaConversion.request(request) }
}
