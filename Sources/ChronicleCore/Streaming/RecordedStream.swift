import Logging
import NIOCore

/// Decodes a provider's streamed response body offline, exactly as the gateway decodes it on the wire:
/// for replaying recorded traffic, and for fuzzing the decoders with arbitrary bytes.
public enum RecordedStream {
    public enum Format: String, CaseIterable, Sendable {
        /// OpenAI-format server-sent events (also Groq, Mistral, Together, Fireworks, DeepInfra, Azure).
        case openAI
        /// Anthropic Messages server-sent events.
        case anthropic
        /// Ollama's newline-delimited JSON.
        case ollama
        /// Gemini `streamGenerateContent?alt=sse`.
        case gemini
        /// AWS Bedrock ConverseStream binary event-stream frames.
        case bedrock
    }

    /// The events the body's `parts` (as they arrived on the socket) decode to.
    /// - Throws: ``ProviderError`` for a body the gateway would reject.
    public static func decode(_ parts: [[UInt8]], format: Format, model: String = "model") throws(ProviderError)
        -> [ChatStreamEvent]
    {
        switch format {
        case .openAI:
            return try run(ServerSentEventDecoder(OpenAIStreamHandler(requestedModel: model, usageInXGroq: false)), parts)
        case .anthropic:
            return try run(ServerSentEventDecoder(AnthropicStreamState(requestedModel: model)), parts)
        case .ollama:
            // Skipped lines are not reported offline: fuzzing would flood the log.
            let quiet = Logger(label: "chronicle.recorded-stream") { _ in SwiftLogNoOpLogHandler() }
            return try run(OllamaStreamDecoder(state: OllamaStreamState(model: model, created: 0), logger: quiet), parts)
        case .gemini:
            return try run(ServerSentEventDecoder(GeminiState(model: model)), parts)
        case .bedrock:
            return try run(BedrockStreamDecoder(state: BedrockState(model: model)), parts)
        }
    }

    private static func run(_ decoder: some ResponseStreamDecoder, _ parts: [[UInt8]]) throws(ProviderError)
        -> [ChatStreamEvent]
    {
        var decoder = decoder
        var events: [ChatStreamEvent] = []
        for part in parts {
            let buffer = ByteBuffer(bytes: part)
            try decoder.decode(buffer.readableBytesView, into: &events)
        }
        try decoder.finish(into: &events)
        return events
    }
}
