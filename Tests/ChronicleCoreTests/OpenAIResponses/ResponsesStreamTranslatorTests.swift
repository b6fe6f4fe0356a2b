@testable import ChronicleCore
import Foundation
import Testing

/// The internal chunks of any provider, written as the Responses event stream OpenAI's SDK accumulates.
@Suite struct ResponsesStreamTranslatorTests {
    static func translator(echo: [String: JSONValue] = [:]) -> ResponsesStreamTranslator {
        ResponsesStreamTranslator(echo: echo, requestedModel: "claude-sonnet-4-5", idSeed: "seed", createdAt: 1_741_476_542)
    }

    static func chunks(_ fixture: String, _ format: RecordedStream.Format) throws -> [ChatChunk] {
        try RecordedStream.decode([Array(Fixtures.text(fixture).utf8)], format: format).compactMap { event in
            if case .chunk(let chunk) = event { return try chunk.decoded() }
            return nil
        }
    }

    static func run(_ chunks: [ChatChunk], echo: [String: JSONValue] = [:]) -> (events: [JSONValue], response: JSONValue) {
        var translator = translator(echo: echo)
        let events = chunks.flatMap { translator.receive($0) } + translator.finish()
        return (events.map(\.json), translator.response)
    }

    /// Every event's SSE bytes are `event: TYPE` and the same JSON on one `data:` line.
    static func wire(_ events: [ResponsesStreamEvent]) throws -> [JSONValue] {
        try events.map { event in
            let text = String(decoding: try event.serverSentEvent(), as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.first == "event: \(event.type)")
            #expect(text.hasSuffix("\n\n"))
            return try JSONCoding.decode(JSONValue.self, from: Array(lines[1].dropFirst(6).utf8))
        }
    }

    static func chunk(_ delta: ChatMessage, finish: FinishReason? = nil, usage: Usage? = nil) -> ChatChunk {
        ChatChunk(id: "chatcmpl-1", model: "claude-sonnet-4-5", choices: [ChunkChoice(delta: delta, finishReason: finish)], usage: usage)
    }

    /// OpenAI's recorded chat text stream becomes the documented event sequence: one message item with
    /// all the text, closed, then `response.completed` with the usage in Responses terms.
    @Test func recordedTextStream() throws {
        let (events, response) = Self.run(try Self.chunks("openai_text_response_streaming.txt", .openAI))
        let accumulated = ResponsesAccumulator(events)
        #expect(Array(accumulated.types.prefix(4)) == [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        ])
        #expect(Array(accumulated.types.suffix(4)) == [
            "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
        ])
        #expect(accumulated.terminal == "response.completed")
        #expect(accumulated.text.hasPrefix("Lassie"))
        let final = try #require(accumulated.final)
        #expect(final == response)
        #expect(final["status"] == "completed")
        #expect(final["object"] == "response")
        #expect(final["id"] == "resp_seed")
        #expect(final["output"]?[0]?["content"]?[0]?["text"]?.stringValue == accumulated.text)
        #expect(final["output"]?.arrayValue?.map { $0.objectValue ?? [:] } == accumulated.items)
        let usage = try #require(final["usage"])
        #expect(usage["input_tokens"]?.intValue ?? 0 > 0)
        #expect(usage["output_tokens"]?.intValue ?? 0 > 0)
        #expect(usage["input_tokens_details"]?["cached_tokens"] != nil)
        #expect(usage["output_tokens_details"]?["reasoning_tokens"] != nil)
    }

    /// A recorded chat tool-call stream becomes one function_call item with its `call_id`, name and
    /// whole arguments, its `function_call_arguments.done` naming it.
    @Test func recordedToolStream() throws {
        let chunks = try Self.chunks("openai_tools_response_streaming.txt", .openAI)
        let (events, _) = Self.run(chunks)
        let accumulated = ResponsesAccumulator(events)
        let calls = accumulated.items.filter { $0["type"] == "function_call" }
        let expected = ResponseCollectorFold.toolCalls(chunks)
        #expect(calls.count == expected.count)
        for (call, wanted) in zip(calls, expected) {
            #expect(call["call_id"]?.stringValue == wanted.id)
            #expect(call["name"]?.stringValue == wanted.function.name)
            #expect(call["arguments"]?.stringValue == wanted.function.arguments)
            #expect(call["status"] == "completed")
        }
        let done = try #require(events.first { $0["type"] == "response.function_call_arguments.done" })
        #expect(done["name"]?.stringValue == expected.first?.function.name)
        #expect(accumulated.terminal == "response.completed")
    }

    /// Text, then two tool calls: the message is closed before the first call opens, every item gets the
    /// next output index, and the calls are closed in order at the end.
    @Test func textThenCalls() throws {
        let chunks = [
            Self.chunk(ChatMessage(role: "assistant", content: .text("Let me check."))),
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 0, id: "call_a", function: FunctionCall(name: "weather", arguments: "{\"ci"))])),
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 0, function: FunctionCall(arguments: "ty\":\"Paris\"}"))])),
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 1, id: "call_b", function: FunctionCall(name: "time", arguments: "{}"))])),
            Self.chunk(ChatMessage(), finish: .toolCalls, usage: Usage(promptTokens: 10, completionTokens: 5, totalTokens: 15)),
        ]
        let (events, response) = Self.run(chunks)
        let accumulated = ResponsesAccumulator(events)
        #expect(accumulated.items.map { $0["type"]?.stringValue } == ["message", "function_call", "function_call"])
        #expect(accumulated.items[1]["arguments"] == "{\"city\":\"Paris\"}")
        #expect(accumulated.items[2]["call_id"] == "call_b")
        let messageDone = try #require(accumulated.types.firstIndex(of: "response.output_item.done"))
        let secondAdded = try #require(accumulated.types.indices.filter { accumulated.types[$0] == "response.output_item.added" }.dropFirst().first)
        #expect(messageDone < secondAdded)
        #expect(response["usage"]?["total_tokens"] == 15)
        #expect(response["status"] == "completed")
    }

    /// A finish for length ends the stream with `response.incomplete`, reason `max_output_tokens`.
    @Test func lengthIsIncomplete() {
        let (events, response) = Self.run([
            Self.chunk(ChatMessage(content: .text("Once upon"))), Self.chunk(ChatMessage(), finish: .length),
        ])
        #expect(events.last?["type"] == "response.incomplete")
        #expect(response["status"] == "incomplete")
        #expect(response["incomplete_details"]?["reason"] == "max_output_tokens")
    }

    /// A failure after the start ends the stream with `response.failed` holding the error; nothing follows.
    @Test func failureAfterStart() {
        var translator = Self.translator()
        _ = translator.receive(Self.chunk(ChatMessage(content: .text("Hi"))))
        let events = translator.fail(ResponsesError(status: 502, type: "server_error", message: "upstream reset"))
        #expect(events.map(\.type) == ["response.failed"])
        #expect(translator.response["status"] == "failed")
        #expect(translator.response["error"]?["message"] == "upstream reset")
        #expect(translator.finish().isEmpty)
    }

    /// With `text.format` asked for, a call to the structured-output stand-in is the answer's text, not a
    /// function call; a client tool of that name stays a call.
    @Test func structuredOutputStandIn() {
        let echo: [String: JSONValue] = ["text": ["format": ["type": "json_schema", "name": "person", "schema": ["type": "object"]]]]
        let chunks = [
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 0, id: "toolu_1", function: FunctionCall(name: ResponsesIngress.structuredOutputTool, arguments: "{\"name\":"))])),
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 0, function: FunctionCall(arguments: "\"Ada\"}"))])),
            Self.chunk(ChatMessage(), finish: .toolCalls),
        ]
        let (events, response) = Self.run(chunks, echo: echo)
        let accumulated = ResponsesAccumulator(events)
        #expect(accumulated.items.map { $0["type"]?.stringValue } == ["message"])
        #expect(accumulated.text == "{\"name\":\"Ada\"}")
        #expect(response["status"] == "completed")
        #expect(response["text"] == echo["text"])

        var own = echo
        own["tools"] = [["type": "function", "name": .string(ResponsesIngress.structuredOutputTool)]]
        let (ownEvents, _) = Self.run(chunks, echo: own)
        #expect(ResponsesAccumulator(ownEvents).items.map { $0["type"]?.stringValue } == ["function_call"])
    }

    /// Signed thinking (Anthropic's) becomes a reasoning item ahead of the message, its text streamed as
    /// `response.reasoning_text.delta`, its signature in `encrypted_content`; a signature closes the item.
    @Test func signedThinkingIsAReasoningItem() throws {
        let chunks = [
            Self.chunk(ChatMessage(thinkingBlocks: [.thinking("Collies are dogs. ")])),
            Self.chunk(ChatMessage(thinkingBlocks: [.thinking("Lassie is one.")])),
            Self.chunk(ChatMessage(thinkingBlocks: [.thinking("", signature: "EqQBCgIYAhIM")])),
            Self.chunk(ChatMessage(content: .text("Lassie is a Collie.")), finish: .stop),
        ]
        let (events, response) = Self.run(chunks)
        let accumulated = ResponsesAccumulator(events)
        #expect(accumulated.items.map { $0["type"]?.stringValue } == ["reasoning", "message"])
        let reasoning = try #require(response["output"]?[0])
        #expect(reasoning["content"]?[0]?["text"] == "Collies are dogs. Lassie is one.")
        #expect(reasoning["encrypted_content"] == .string(ResponsesStreamTranslator.signaturePrefix + "EqQBCgIYAhIM"))
        #expect(reasoning["summary"] == [])
        let types = accumulated.types
        #expect(types.filter { $0 == "response.reasoning_text.delta" }.count == 2)
        #expect(types.firstIndex(of: "response.reasoning_text.done") ?? 99 < types.firstIndex(of: "response.content_part.added") ?? 0)
        #expect(accumulated.text == "Lassie is a Collie.")
        // Unsigned reasoning (DeepSeek's `reasoning_content`) is an item without `encrypted_content`.
        let (_, plain) = Self.run([Self.chunk(ChatMessage(unknownFields: [:]).with(reasoning: "Hmm.")), Self.chunk(ChatMessage(content: .text("Yes.")))])
        #expect(plain["output"]?[0]?["type"] == "reasoning")
        #expect(plain["output"]?[0]?["encrypted_content"] == .null)
    }

    /// An empty answer still opens and closes: created, in_progress, completed, and the bytes carry the
    /// same JSON.
    @Test func emptyAnswerAndBytes() throws {
        var translator = Self.translator(echo: ["instructions": "Be brief", "temperature": 0.2])
        let events = translator.finish()
        #expect(events.map(\.type) == ["response.created", "response.in_progress", "response.completed"])
        // Compared after a round trip: a double such as 1.0 reads back as the integer 1.
        #expect(try Self.wire(events) == events.map { try JSONCoding.decode(JSONValue.self, from: JSONCoding.encodeBytes($0.json)) })
        #expect(translator.response["instructions"] == "Be brief")
        #expect(translator.response["temperature"] == 0.2)
        #expect(translator.response["store"] == false)
        #expect(translator.response["model"] == "claude-sonnet-4-5")
    }
}

/// The tool calls a chunk stream folds into, as the gateway's collector folds them.
enum ResponseCollectorFold {
    static func toolCalls(_ chunks: [ChatChunk]) -> [ToolCall] {
        var collector = ResponseCollector()
        for chunk in chunks { collector.add(chunk) }
        return collector.collected.choices.first?.message.toolCalls ?? []
    }
}

extension ChatMessage {
    init(thinkingBlocks: [ThinkingBlock]) {
        self.init()
        self.thinkingBlocks = thinkingBlocks
    }

    func with(reasoning: String) -> ChatMessage {
        var message = self
        message.reasoningContent = reasoning
        return message
    }
}
