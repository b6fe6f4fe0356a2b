import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

/// Extended thinking with tools: the signed thinking blocks come back in `thinking_blocks`, and an assistant
/// turn that carries them is sent back to the provider unchanged.
@Suite("Thinking blocks round-trip")
struct ThinkingBlockTests {
    let thinkingWithTool = #"""
    {"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_reason":"tool_use",
     "content":[
       {"type":"thinking","thinking":"I should look up the weather.","signature":"sig-AAA"},
       {"type":"redacted_thinking","data":"ENCRYPTED=="},
       {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
     "usage":{"input_tokens":10,"output_tokens":20}}
    """#

    let streamedThinkingWithTool = """
    event: message_start
    data: {"type":"message_start","message":{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}

    event: content_block_start
    data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"I should "}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"check."}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig-BBB"}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":0}

    event: content_block_start
    data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"ENC2=="}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":1}

    event: content_block_start
    data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"get_weather","input":{}}}

    event: content_block_delta
    data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":\\"Oslo\\"}"}}

    event: content_block_stop
    data: {"type":"content_block_stop","index":2}

    event: message_delta
    data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}

    event: message_stop
    data: {"type":"message_stop"}

    """

    func anthropicGateway(_ upstream: MockUpstream) throws -> Gateway {
        let config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "anthropic", url: upstream.url("/v1/messages"), apiKey: "sk-ant-test", format: .anthropic,
            prefix: "anthropic/")])
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withClock(ManualClock(autoAdvance: true)).build()
    }

    /// Sends the answer's assistant message back as history, through JSON as a client would.
    func followUp(after message: ChatMessage) throws -> ChatRequest {
        let wire = try JSONCoding.decode(ChatMessage.self, from: JSONCoding.encode(message))
        return ChatRequest(model: "anthropic/claude-sonnet-4-5", messages: [
            ChatMessage(role: "user", content: .text("Weather?")),
            wire,
            ChatMessage(role: "tool", content: .text("sunny"), toolCallID: wire.toolCalls?.first?.id),
        ])
    }

    @Test func anthropicResponseAndRoundTrip() async throws {
        let upstream = try await MockUpstream.start(.json(thinkingWithTool))
        defer { Task { await upstream.stop() } }
        let gateway = try anthropicGateway(upstream)
        let first = try await gateway.send(ChatRequest(
            model: "anthropic/claude-sonnet-4-5", messages: [ChatMessage(role: "user", content: .text("Weather?"))]))
            .collect()
        let message = try #require(first.response.choices.first?.message)
        #expect(message.reasoningContent == "I should look up the weather.")
        let encoded = try encodeToJSON(message)
        #expect(encoded["thinking_blocks"] == [
            ["type": "thinking", "thinking": "I should look up the weather.", "signature": "sig-AAA"],
            ["type": "redacted_thinking", "data": "ENCRYPTED=="],
        ])

        _ = try await gateway.send(try followUp(after: message)).collect()
        let sent = try #require(upstream.requests.last?.json)
        #expect(sent["messages"]?.arrayValue?[1] == [
            "role": "assistant",
            "content": [
                ["type": "thinking", "thinking": "I should look up the weather.", "signature": "sig-AAA"],
                ["type": "redacted_thinking", "data": "ENCRYPTED=="],
                ["type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": ["city": "Paris"]],
            ],
        ])
    }

    /// In the stream, thinking text arrives as `reasoning_content` with a `thinking_blocks` fragment, the
    /// signature as a fragment of its own; collected, the blocks are whole again.
    @Test func anthropicStream() async throws {
        let upstream = try await MockUpstream.start(.sse(streamedThinkingWithTool))
        defer { Task { await upstream.stop() } }
        var body = ChatRequest(
            model: "anthropic/claude-sonnet-4-5", messages: [ChatMessage(role: "user", content: .text("Weather?"))])
        body.stream = true
        let stream = try await anthropicGateway(upstream).send(body)
        var fragments: [JSONValue] = []
        var collector = ResponseCollector()
        for try await event in stream {
            guard case .chunk(let chunk) = event else { continue }
            collector.add(chunk)
            for block in chunk.choices.first?.delta.thinkingBlocks ?? [] { fragments.append(.object(block.fields)) }
        }
        #expect(fragments == [
            ["type": "thinking", "thinking": "I should "],
            ["type": "thinking", "thinking": "check."],
            ["type": "thinking", "thinking": "", "signature": "sig-BBB"],
            ["type": "redacted_thinking", "data": "ENC2=="],
        ])
        let message = try #require(collector.collected.choices.first?.message)
        #expect(message.reasoningContent == "I should check.")
        #expect(message.thinkingBlocks == [.thinking("I should check.", signature: "sig-BBB"), .redacted("ENC2==")])
        #expect(message.toolCalls?.first?.function.arguments == #"{"city":"Oslo"}"#)
    }

    /// Bedrock: `reasoningContent` with its signature and redacted content, out and back.
    @Test func bedrockResponseAndRoundTrip() async throws {
        let reply = #"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"Think.","signature":"sig-CCC"}}},{"reasoningContent":{"redactedContent":"RED=="}},{"toolUse":{"toolUseId":"t1","name":"get_weather","input":{"city":"Rome"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#
        let upstream = try await MockUpstream.start(.json(reply))
        defer { Task { await upstream.stop() } }
        let provider = BedrockProvider(
            endpoint: "http://127.0.0.1:\(upstream.port)",
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret"), region: "us-east-1",
            transport: UpstreamHTTPClient(httpClient: HTTPClient.shared))
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withProvider(provider)
            .withoutDefaultProviders().build()
        let model = "aws-bedrock/anthropic.claude-sonnet-4-5"
        let first = try await gateway.send(ChatRequest(model: model, messages: [
            ChatMessage(role: "user", content: .text("Weather?")),
        ])).collect()
        let message = try #require(first.response.choices.first?.message)
        #expect(message.reasoningContent == "Think.")
        #expect(message.thinkingBlocks == [.thinking("Think.", signature: "sig-CCC"), .redacted("RED==")])

        var followUp = try followUp(after: message)
        followUp.model = model
        _ = try await gateway.send(followUp).collect()
        let sent = try #require(upstream.requests.last?.json)
        #expect(sent["messages"]?.arrayValue?[1]["content"] == [
            ["reasoningContent": ["reasoningText": ["text": "Think.", "signature": "sig-CCC"]]],
            ["reasoningContent": ["redactedContent": "RED=="]],
            ["toolUse": ["toolUseId": "t1", "name": "get_weather", "input": ["city": "Rome"]]],
        ])
    }

    /// ConverseStream's reasoning deltas, signature included, fold into whole blocks.
    @Test func bedrockStream() throws {
        var collector = ResponseCollector()
        let deltas = [
            #"{"reasoningContent":{"text":"Th"}}"#, #"{"reasoningContent":{"text":"ink."}}"#,
            #"{"reasoningContent":{"signature":"sig-DDD"}}"#, #"{"reasoningContent":{"redactedContent":"RED=="}}"#,
        ]
        let frames = deltas.flatMap { delta in
            EventStreamDecoder.encode(
                headers: [(":event-type", "contentBlockDelta"), (":message-type", "event")],
                payload: Array(#"{"contentBlockIndex":0,"delta":\#(delta)}"#.utf8))
        }
        for case .chunk(let chunk) in try RecordedStream.decode([frames], format: .bedrock) { collector.add(chunk) }
        let message = try #require(collector.collected.choices.first?.message)
        #expect(message.reasoningContent == "Think.")
        #expect(message.thinkingBlocks == [.thinking("Think.", signature: "sig-DDD"), .redacted("RED==")])
    }

    /// A malformed `thinking_blocks` is a decoding error naming the field.
    @Test func badThinkingBlocks() {
        #expect(throws: DecodingError.self) {
            _ = try decode(ChatMessage.self, #"{"role":"assistant","thinking_blocks":[{"thinking":"x"}]}"#)
        }
    }
}
