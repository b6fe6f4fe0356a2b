@testable import ChronicleCore
import Foundation
import Testing

/// The Anthropic provider's side of the format folder: reading an Anthropic upstream's answers.
@Suite struct AnthropicEgressTests {
    /// Event data without a `type` takes it from the SSE event name, as before the events were typed.
    @Test func eventNameStandsInForType() throws {
        let stream = "event: message_start\ndata: {\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\n"
            + "event: content_block_delta\ndata: {\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
            + "event: message_delta\ndata: {\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":2}}\n\n"
        var collector = ResponseCollector()
        for event in try RecordedStream.decode([Array(stream.utf8)], format: .anthropic) {
            if case .chunk(let chunk) = event { collector.add(chunk) }
        }
        let response = collector.collected
        #expect(response.id == "msg_1")
        #expect(response.choices.first?.message.text == "Hi")
        #expect(response.choices.first?.finishReason == .length)
        #expect(response.usage?.promptTokens == 3 && response.usage?.completionTokens == 2)
    }

    /// An error body or event keeps Anthropic's type in the provider error it becomes.
    @Test func errorBodies() throws {
        let reply = try JSONCoding.decode(AnthropicReply.self, from: Array(
            #"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#.utf8))
        guard case .error(let error) = reply else {
            Issue.record("read as a message")
            return
        }
        let converted = AnthropicConversion.providerError(error)
        #expect(converted.kind == .rateLimit)
        #expect(converted.status == 429)
        #expect(converted.body == ["type": "error", "error": ["type": "rate_limit_error", "message": "slow"]])
        #expect(throws: ProviderError.self) {
            try RecordedStream.decode([Array("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"o\"}}\n\n".utf8)],
                                      format: .anthropic)
        }
    }
}
