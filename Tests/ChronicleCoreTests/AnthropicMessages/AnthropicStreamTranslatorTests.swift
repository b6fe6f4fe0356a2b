@testable import ChronicleCore
import Foundation
import Testing

/// The internal chunks of any provider, written as the Anthropic event stream an Anthropic SDK accumulates.
@Suite struct AnthropicStreamTranslatorTests {
    /// What an Anthropic SDK's accumulator builds from a stream, checking the order it relies on and the
    /// stricter order Anthropic itself keeps (one block open at a time, each closed before the next opens).
    struct Accumulated: Equatable {
        struct Block: Equatable {
            var type: String
            var text = ""
            var json = ""
            var signature: String?
            var id: String?
            var name: String?
        }

        var id = ""
        var model = ""
        var blocks: [Block] = []
        var stopReason: String?
        var stopSequence: String?
        var inputTokens = 0
        var outputTokens = 0
        var error: AnthropicError?

        /// Accumulates `events`; with `strict`, a delta to a block other than the open one is a failure.
        init(_ events: [AnthropicStreamEvent], strict: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
            var open: Int?
            var stopped = Set<Int>()
            var phase = 0  // 0 before message_start, 1 blocks, 2 after message_delta, 3 after message_stop
            func fail(_ what: String) { Issue.record(Comment(rawValue: what), sourceLocation: sourceLocation) }
            for event in events {
                if case .ping = event { continue }
                if phase == 0, case .error = event {} else if phase == 0 {
                    guard case .messageStart = event else { fail("\(event.type) before message_start"); return }
                }
                if phase == 3 { fail("\(event.type) after message_stop"); return }
                switch event {
                case .messageStart(let message):
                    guard phase == 0 else { fail("a second message_start"); return }
                    phase = 1
                    id = message.id ?? ""
                    model = message.model ?? ""
                    guard message.content.isEmpty, let usage = message.usage else { fail("message_start with content or no usage"); return }
                    inputTokens = usage.inputTokens ?? -1
                case .contentBlockStart(let index, let block):
                    guard phase == 1, index == blocks.count else { fail("block \(index) started as block \(blocks.count)"); return }
                    if strict, open != nil { fail("block \(index) started while \(open ?? -1) is open"); return }
                    open = index
                    var started = Block(type: block.type)
                    switch block {
                    case .text(let text): started.text = text.text
                    case .toolUse(let use):
                        guard use.input == [:] else { fail("tool_use started with input"); return }
                        started.id = use.id
                        started.name = use.name
                    case .thinking(let thinking):
                        started.text = thinking.thinking ?? thinking.data ?? ""
                        started.signature = thinking.signature
                    default: break
                    }
                    blocks.append(started)
                case .contentBlockDelta(let index, let delta):
                    guard phase == 1, blocks.indices.contains(index) else { fail("delta for block \(index), never started"); return }
                    if strict, open != index { fail("delta for block \(index) while \(open.map(String.init) ?? "none") is open"); return }
                    switch (delta, blocks[index].type) {
                    case (.text(let text), "text"): blocks[index].text += text
                    case (.inputJSON(let json), "tool_use"): blocks[index].json += json
                    case (.thinking(let text), "thinking"): blocks[index].text += text
                    case (.signature(let signature), "thinking"): blocks[index].signature = signature
                    default: fail("\(delta) in a \(blocks[index].type) block"); return
                    }
                case .contentBlockStop(let index):
                    guard open == index, stopped.insert(index).inserted else { fail("stop of block \(index), open is \(open ?? -1)"); return }
                    open = nil
                case .messageDelta(let reason, let sequence, let usage):
                    guard phase == 1, open == nil, stopped.count == blocks.count else { fail("message_delta with a block open"); return }
                    phase = 2
                    stopReason = reason
                    stopSequence = sequence
                    guard let output = usage.outputTokens else { fail("message_delta without output_tokens"); return }
                    outputTokens = output
                    if let input = usage.inputTokens { inputTokens = input }
                case .messageStop:
                    guard phase == 2 else { fail("message_stop before message_delta"); return }
                    phase = 3
                case .error(let error):
                    self.error = error
                    phase = 3
                case .ping, .other:
                    break
                }
            }
            if phase != 3 { fail("the stream does not end with message_stop or error") }
        }

        /// Each tool call's input, parsed from its joined fragments.
        var inputs: [JSONValue] {
            blocks.filter { $0.type == "tool_use" }.map { block in
                (try? JSONCoding.decode(JSONValue.self, from: Array((block.json.isEmpty ? "{}" : block.json).utf8))) ?? "not JSON"
            }
        }
    }

    static func chunks(_ fixture: String, _ format: RecordedStream.Format) throws -> [ChatChunk] {
        try RecordedStream.decode([Array(Fixtures.text(fixture).utf8)], format: format).compactMap { event in
            if case .chunk(let chunk) = event { return try chunk.decoded() }
            return nil
        }
    }

    static func translate(_ chunks: [ChatChunk], model: String = "gpt-4o") -> [AnthropicStreamEvent] {
        var translator = AnthropicStreamTranslator(requestedModel: model)
        return chunks.flatMap { translator.receive($0) } + translator.finish()
    }

    static func chunk(_ delta: ChatMessage, finish: FinishReason? = nil, usage: Usage? = nil) -> ChatChunk {
        ChatChunk(id: "chatcmpl-1", model: "gpt-4o", choices: [ChunkChoice(delta: delta, finishReason: finish)], usage: usage)
    }

    /// The events Anthropic sent in a recording, as the SDK reads them.
    static func recordedEvents(_ fixture: String) throws -> [AnthropicStreamEvent] {
        try Fixtures.text(fixture).split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { line in
            try JSONCoding.decode(AnthropicStreamEvent.self, from: Array(line.dropFirst(6).utf8))
        }
    }

    /// OpenAI's recorded text stream: one text block with all the text, end_turn, and the usage.
    @Test func openAIText() throws {
        let chunks = try Self.chunks("openai_text_response_streaming.txt", .openAI)
        var collector = ResponseCollector()
        chunks.forEach { collector.add($0) }
        let expected = collector.collected
        let message = Accumulated(Self.translate(chunks))
        #expect(message.blocks.map(\.type) == ["text"])
        #expect(message.blocks.first?.text == expected.choices.first?.message.text)
        #expect(message.stopReason == "end_turn")
        #expect(message.id == "msg_" + (expected.id ?? "?"))
        #expect(message.model == expected.model)
        #expect(message.outputTokens == expected.usage?.completionTokens)
        #expect(message.inputTokens == expected.usage?.promptTokens)
    }

    /// OpenAI's recorded tool stream: the call's arguments arrive as input_json_delta fragments that join
    /// to its input, and the stop reason is tool_use.
    @Test func openAITools() throws {
        let chunks = try Self.chunks("openai_tools_response_streaming.txt", .openAI)
        var collector = ResponseCollector()
        chunks.forEach { collector.add($0) }
        let call = try #require(collector.collected.choices.first?.message.toolCalls?.first)
        let events = Self.translate(chunks)
        let message = Accumulated(events)
        #expect(message.blocks.map(\.type) == ["tool_use"])
        #expect(message.blocks.first?.id == "toolu_" + (call.id ?? "?"))
        #expect(message.blocks.first?.name == call.function.name)
        #expect(message.inputs == [try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "").utf8))])
        #expect(events.filter { if case .contentBlockDelta(_, .inputJSON) = $0 { true } else { false } }.count > 1)
        #expect(message.stopReason == "tool_use")
    }

    /// Anthropic's own recordings, read by the Anthropic provider and written back, accumulate to what the
    /// SDK accumulates from the recording itself.
    @Test(arguments: ["anthropic_text_response_streaming.txt", "anthropic_tools_response_streaming.txt",
                      "anthropic_text_and_tools_response_streaming.txt"])
    func anthropicRoundTrip(fixture: String) throws {
        let direct = Accumulated(try Self.recordedEvents(fixture))
        let translated = Accumulated(Self.translate(try Self.chunks(fixture, .anthropic)))
        #expect(translated == direct)
        #expect(!direct.blocks.isEmpty)
    }

    /// Thinking streams as thinking_delta then signature_delta in its own block, before the text; a
    /// redacted block is whole; text after a signed block does not reopen it.
    @Test func thinking() {
        func delta(_ blocks: [ThinkingBlock], reasoning: String? = nil) -> ChatChunk {
            var message = ChatMessage()
            message.thinkingBlocks = blocks
            message.reasoningContent = reasoning
            return Self.chunk(message)
        }
        let chunks = [
            Self.chunk(ChatMessage(role: "assistant", content: .text(""))),
            delta([.thinking("Let me ")], reasoning: "Let me "),
            delta([.thinking("think.")], reasoning: "think."),
            delta([.thinking("", signature: "c2ln")]),
            delta([.redacted("ZW5j")]),
            Self.chunk(ChatMessage(content: .text("Answer."))),
            Self.chunk(ChatMessage(), finish: .stop, usage: Usage(promptTokens: 5, completionTokens: 9)),
        ]
        let events = Self.translate(chunks)
        let message = Accumulated(events)
        #expect(message.blocks == [
            .init(type: "thinking", text: "Let me think.", signature: "c2ln"),
            .init(type: "redacted_thinking", text: "ZW5j"),
            .init(type: "text", text: "Answer."),
        ])
        #expect(events.contains(.contentBlockDelta(index: 0, delta: .signature("c2ln"))))
        #expect(message.inputTokens == 5 && message.outputTokens == 9)

        // Reasoning from a provider without signed blocks (reasoning_content) is a thinking block too.
        let plain = Accumulated(Self.translate([
            { var m = ChatMessage(); m.reasoningContent = "Hmm."; return Self.chunk(m) }(),
            Self.chunk(ChatMessage(content: .text("Yes."))),
        ]))
        #expect(plain.blocks == [.init(type: "thinking", text: "Hmm.", signature: ""), .init(type: "text", text: "Yes.")])
    }

    /// Text, then several tool calls streamed one after another, each in its own block with its own input.
    @Test func multipleTools() {
        func call(_ index: Int, id: String? = nil, name: String? = nil, _ arguments: String) -> ChatChunk {
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: index, id: id, type: id == nil ? nil : "function",
                                                        function: FunctionCall(name: name, arguments: arguments))]))
        }
        let events = Self.translate([
            Self.chunk(ChatMessage(role: "assistant", content: .text("Checking both."))),
            call(0, id: "call_a", name: "weather", ""), call(0, #"{"city":"#), call(0, #""Paris"}"#),
            call(1, id: "call_b", name: "weather", #"{"city":"Lyon"}"#),
            call(2, id: "call_c", name: "time", ""),
            Self.chunk(ChatMessage(), finish: .toolCalls),
        ])
        let message = Accumulated(events)
        #expect(message.blocks.map(\.type) == ["text", "tool_use", "tool_use", "tool_use"])
        #expect(message.blocks.map(\.id) == [nil, "toolu_call_a", "toolu_call_b", "toolu_call_c"])
        #expect(message.inputs == [["city": "Paris"], ["city": "Lyon"], [:]])
        #expect(message.stopReason == "tool_use")
    }

    /// Text and tool deltas interleaved: text after a call opens a new text block, and a late fragment of
    /// a closed call still reaches that call's input (the SDKs add deltas by index).
    @Test func interleaved() {
        let events = Self.translate([
            Self.chunk(ChatMessage(content: .text("A"))),
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 0, id: "call_1", function: FunctionCall(name: "f", arguments: #"{"a""#))])),
            Self.chunk(ChatMessage(content: .text("B"))),
            Self.chunk(ChatMessage(toolCalls: [ToolCall(index: 0, type: nil, function: FunctionCall(arguments: ":1}"))])),
            Self.chunk(ChatMessage(), finish: .toolCalls),
        ])
        let message = Accumulated(events, strict: false)
        #expect(message.blocks.map(\.type) == ["text", "tool_use", "text"])
        #expect(message.blocks.map(\.text) == ["A", "", "B"])
        #expect(message.inputs == [["a": 1]])
    }

    /// Usage that arrives in a usage-only chunk after the finish reason still reaches message_delta, with
    /// cache reads counted apart from input tokens.
    @Test func usageOnlyTail() {
        let events = Self.translate([
            Self.chunk(ChatMessage(role: "assistant", content: .text("Hi"))),
            Self.chunk(ChatMessage(), finish: .length),
            ChatChunk(id: "chatcmpl-1", model: "gpt-4o", choices: [], usage: Usage(
                promptTokens: 50, completionTokens: 3, unknownFields: ["prompt_tokens_details": ["cached_tokens": 20]])),
        ])
        let message = Accumulated(events)
        #expect(message.stopReason == "max_tokens")
        #expect(message.outputTokens == 3)
        #expect(message.inputTokens == 30)
        guard case .messageDelta(_, _, let usage)? = events.dropLast().last else {
            Issue.record("no message_delta before message_stop")
            return
        }
        #expect(usage.cacheReadInputTokens == 20)
    }

    /// A failure after the start ends the stream with Anthropic's error event and nothing after it.
    @Test func errorMidStream() throws {
        var translator = AnthropicStreamTranslator(requestedModel: "m")
        #expect(translator.state == .idle)
        var events = translator.receive(Self.chunk(ChatMessage(content: .text("Par"))))
        #expect(translator.state == .streaming)
        let error = AnthropicError(ProviderError(kind: .server, status: 529, message: "Overloaded"))
        events += translator.fail(error)
        #expect(translator.state == .finished)
        #expect(translator.finish().isEmpty)
        #expect(translator.receive(Self.chunk(ChatMessage(content: .text("is")))).isEmpty)
        let message = Accumulated(events)
        #expect(message.error == AnthropicError(.overloaded, message: "Overloaded"))
        #expect(message.blocks.map(\.text) == ["Par"])
        let bytes = String(decoding: try events.last?.serverSentEvent() ?? [], as: UTF8.self)
        #expect(bytes == "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
    }

    /// A whole answer given as one chunk (a provider that did not stream) accumulates to the answer itself.
    @Test func wholeAnswerAsOneChunk() throws {
        let native = try Fixtures.json("anthropic_tools_response_nonstreaming.json")
        let reply = try JSONCoding.decode(AnthropicMessagesResponse.self, from: Array(Fixtures.text("anthropic_tools_response_nonstreaming.json").utf8))
        let message = Accumulated(Self.translate([ChatChunk(response: AnthropicConversion.response(reply, requestedModel: "m"))]))
        #expect(message.id == native["id"]?.stringValue)
        #expect(message.blocks.map(\.id) == ["toolu_018FXg1i7nbT3stUdoysiffi"])
        #expect(message.inputs == [["name": "Daniel", "hair_color": "brown"]])
        #expect(message.stopReason == "tool_use")
        #expect(message.inputTokens == 459 && message.outputTokens == 52)
    }

    /// A stream with no content still opens and closes properly.
    @Test func empty() {
        let message = Accumulated(Self.translate([]))
        #expect(message.blocks.isEmpty)
        #expect(message.stopReason == "end_turn")
        #expect(message.id.hasPrefix("msg_"))
        #expect(message.model == "gpt-4o")
    }

    /// Each event's bytes are SSE with the event's type as its name, and decode back to the event.
    @Test func serverSentEvents() throws {
        let events = Self.translate(try Self.chunks("openai_tools_response_streaming.txt", .openAI))
        for event in events {
            let text = String(decoding: try event.serverSentEvent(), as: UTF8.self)
            #expect(text.hasPrefix("event: \(event.type)\ndata: {") && text.hasSuffix("}\n\n"))
            let data = text.split(separator: "\n")[1].dropFirst(6)
            #expect(try JSONCoding.decode(AnthropicStreamEvent.self, from: Array(data.utf8)) == event)
        }
    }
}
