@testable import ChronicleCore
import Foundation
import NIOCore
import Testing

/// Responses API clients: their requests to the internal chat request, refusals by name, and relayed
/// Responses answers back to the internal response.
@Suite struct ResponsesIngressTests {
    static func decode(_ json: String) throws(ResponsesError) -> ResponsesRequest {
        try ResponsesIngress.decode(Array(json.utf8))
    }

    static func refusal(_ json: String) -> ResponsesError? {
        do {
            _ = try decode(json)
            return nil
        } catch {
            return error
        }
    }

    /// The recorded Responses request with a tool becomes a chat request: instructions first as a system
    /// message, the input_text part as the user's text, the function tool and its schema, `tool_choice`.
    @Test func fixtureToolsRequest() throws {
        let native = try Fixtures.json("openai_responses_tools.json")
        let chat = ResponsesIngress.chatRequest(try ResponsesIngress.decode(Array(Fixtures.text("openai_responses_tools.json").utf8)),
                                                for: .openAICompatible)
        #expect(chat.model == "gpt-4.1")
        #expect(chat.messages == [
            ChatMessage(role: "system", content: .text("You are a weather bot.")),
            ChatMessage(role: "user", content: .text("What is the weather like in Boston today?")),
        ])
        #expect(chat.tools?.map(\.function.name) == ["get_current_weather"])
        #expect(chat.tools?.first?.function.parameters == native["tools"]?[0]?["parameters"])
        #expect(chat.tools?.first?.function.strict == true)
        #expect(chat.toolChoice == "auto")
        #expect(chat.isStreaming == false)
    }

    /// A string input is one user message; settings map to their chat names; a stream asks OpenAI-format
    /// upstreams for the usage chunk.
    @Test func stringInputAndSettings() throws {
        let request = try Self.decode(#"{"model":"m","input":"Hi","max_output_tokens":50,"temperature":0.3,"top_p":0.9,"stream":true,"user":"u-1","parallel_tool_calls":false}"#)
        let chat = ResponsesIngress.chatRequest(request, for: .openAICompatible)
        #expect(chat.messages == [ChatMessage(role: "user", content: .text("Hi"))])
        #expect(chat.maxTokens == 50)
        #expect(chat.temperature == 0.3)
        #expect(chat.topP == 0.9)
        #expect(chat.user == "u-1")
        #expect(chat.unknownFields["parallel_tool_calls"] == false)
        #expect(chat.streamOptions?["include_usage"] == true)
        let converting = ResponsesIngress.chatRequest(request, for: .converting)
        #expect(converting.unknownFields["parallel_tool_calls"] == nil)
        #expect(converting.streamOptions == nil)
    }

    /// The second turn of function calling: the model's call and its output become an assistant message
    /// with the tool call and a tool message with the same id; images become `image_url` parts.
    @Test func secondTurnItems() throws {
        let request = try Self.decode(#"""
        {"model":"m","input":[
          {"role":"developer","content":"Use tools."},
          {"type":"message","role":"user","content":[{"type":"input_text","text":"Weather?"},{"type":"input_image","image_url":"https://e.com/a.png","detail":"low"}]},
          {"type":"reasoning","id":"rs_1","summary":[]},
          {"type":"function_call","id":"fc_1","call_id":"call_1","name":"weather","arguments":"{\"city\":\"Paris\"}"},
          {"type":"function_call","call_id":"call_2","name":"time","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_1","output":"18C"},
          {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]},
          {"role":"assistant","content":[{"type":"output_text","text":"It is 18C.","annotations":[]}]}
        ]}
        """#)
        let chat = ResponsesIngress.chatRequest(request, for: .converting)
        #expect(chat.messages.map(\.role) == ["system", "user", "assistant", "tool", "tool", "assistant"])
        #expect(chat.messages[1].content == .parts([
            .text("Weather?"), ContentPart(type: "image_url", fields: ["image_url": ["url": "https://e.com/a.png", "detail": "low"]]),
        ]))
        #expect(chat.messages[2].toolCalls == [
            ToolCall(id: "call_1", function: FunctionCall(name: "weather", arguments: "{\"city\":\"Paris\"}")),
            ToolCall(id: "call_2", function: FunctionCall(name: "time", arguments: "{}")),
        ])
        #expect(chat.messages[3].toolCallID == "call_1")
        #expect(chat.messages[4].content == .text("noon"))
        #expect(chat.messages[5].content == .text("It is 18C."))
    }

    /// A reasoning item the gateway made goes back to a converting provider as signed thinking on the
    /// assistant turn it preceded; OpenAI's own reasoning items, and any to OpenAI-compatible APIs, are
    /// left out.
    @Test func signedReasoningGoesBack() throws {
        let signed = ResponsesStreamTranslator.signaturePrefix + "sig-1"
        let request = try Self.decode(#"""
        {"model":"m","input":[
          {"role":"user","content":"Weather?"},
          {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"Use the tool."}],"encrypted_content":"\#(signed)"},
          {"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gAAAAB-openai-own"},
          {"type":"function_call","call_id":"call_1","name":"weather","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_1","output":"18C"}
        ]}
        """#)
        let converting = ResponsesIngress.chatRequest(request, for: .converting)
        #expect(converting.messages.map(\.role) == ["user", "assistant", "tool"])
        #expect(converting.messages[1].thinkingBlocks == [.thinking("Use the tool.", signature: "sig-1")])
        #expect(converting.messages[1].toolCalls?.first?.id == "call_1")
        let compatible = ResponsesIngress.chatRequest(request, for: .openAICompatible)
        #expect(compatible.messages[1].thinkingBlocks == nil)
    }

    /// What needs OpenAI's state or tools is refused with a 400 naming the member; an absent or false
    /// `store` is not.
    @Test func refusalsNameTheMember() throws {
        let cases: [(String, String)] = [
            (#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#, "previous_response_id"),
            (#"{"model":"m","input":"x","store":true}"#, "store"),
            (#"{"model":"m","input":"x","conversation":"conv_1"}"#, "conversation"),
            (#"{"model":"m","input":"x","background":true}"#, "background"),
            (#"{"model":"m","input":"x","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}"#, "tools[1].type"),
            (#"{"model":"m","input":"x","tools":[{"type":"file_search","vector_store_ids":["v"]}]}"#, "tools[0].type"),
            (#"{"model":"m","input":"x","tools":[{"type":"computer_use_preview","display_width":1}]}"#, "tools[0].type"),
            (#"{"model":"m","input":"x","tool_choice":{"type":"web_search_preview"}}"#, "tool_choice"),
            (#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#, "input[0]"),
            (#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}"#, "input[0].content[0].type"),
            (#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]}"#, "input[0].content[0]"),
            (#"{"model":"m"}"#, "input"),
            (#"{"model":"","input":"x"}"#, "model"),
            (#"{"model":"m","input":"x","text":{"format":{"type":"xml"}}}"#, "text.format.type"),
        ]
        for (body, param) in cases {
            let error = try #require(Self.refusal(body), "\(body) was accepted")
            #expect(error.param == param, "\(body)")
            #expect(error.status == 400)
            #expect(error.type == "invalid_request_error")
            #expect(error.message.contains(param.split(separator: "[").first.map(String.init) ?? param), "\(error.message)")
            #expect(error.body["error"]?["param"] == .string(param))
        }
        #expect(Self.refusal(#"{"model":"m","input":"x","store":false}"#) == nil)
        #expect(Self.refusal(#"{"model":"m","input":"x"}"#) == nil)
        #expect(Self.refusal(#"{"model":"m","input":"x","previous_response_id":null}"#) == nil)
    }

    /// `text.format` becomes `response_format` where the provider has it; elsewhere the schema becomes the
    /// one tool the model must call.
    @Test func structuredOutput() throws {
        let request = try Self.decode(#"{"model":"m","input":"Who?","text":{"format":{"type":"json_schema","name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}"#)
        let native = ResponsesIngress.chatRequest(request, for: .openAICompatible)
        #expect(native.responseFormat == ["type": "json_schema", "json_schema": [
            "name": "person", "strict": true, "schema": ["type": "object", "properties": ["name": ["type": "string"]]],
        ]])
        #expect(native.tools == nil)
        let standIn = ResponsesIngress.chatRequest(request, for: .converting, nativeResponseFormat: false)
        #expect(standIn.responseFormat == nil)
        #expect(standIn.tools?.map(\.function.name) == [ResponsesIngress.structuredOutputTool])
        #expect(standIn.tools?.first?.function.parameters == ["type": "object", "properties": ["name": ["type": "string"]]])
        #expect(standIn.toolChoice == ["type": "function", "function": ["name": .string(ResponsesIngress.structuredOutputTool)]])
        let object = try Self.decode(#"{"model":"m","input":"x","text":{"format":{"type":"json_object"}}}"#)
        #expect(ResponsesIngress.chatRequest(object, for: .openAICompatible).responseFormat == ["type": "json_object"])
        let plain = try Self.decode(#"{"model":"m","input":"x","text":{"format":{"type":"text"}}}"#)
        #expect(ResponsesIngress.chatRequest(plain, for: .openAICompatible).responseFormat == nil)
    }

    /// `reasoning.effort` is `reasoning_effort` for OpenAI-compatible APIs, a thinking budget kept under the
    /// output limit for Anthropic's converter and `think` for Ollama's.
    @Test func reasoning() throws {
        let request = try Self.decode(#"{"model":"m","input":"x","reasoning":{"effort":"medium"},"max_output_tokens":3000}"#)
        #expect(ResponsesIngress.chatRequest(request, for: .openAICompatible).unknownFields["reasoning_effort"] == "medium")
        let converting = ResponsesIngress.chatRequest(request, for: .converting)
        #expect(converting.unknownFields["thinking"] == ["type": "enabled", "budget_tokens": 2999])
        #expect(converting.unknownFields["think"] == true)
        let tiny = try Self.decode(#"{"model":"m","input":"x","reasoning":{"effort":"high"},"max_output_tokens":500}"#)
        #expect(ResponsesIngress.chatRequest(tiny, for: .converting).unknownFields["thinking"] == nil)
    }

    // MARK: The wire request

    /// The scan reads the model, the stream flag, the input count and the user, and the passthrough body
    /// is the client's with only the model replaced.
    @Test func wireScan() throws {
        let body = #"{ "model" : "openai/gpt-4.1", "input":[{"role":"user","content":"a"},{"type":"function_call_output","call_id":"c","output":"o"}], "stream":true, "store":true, "previous_response_id":"resp_1", "tools":[{"type":"web_search"}], "user":"u\u00e9", "x_future":[1,2.5] }"#
        let wire = try #require(WireResponsesRequest.scan(ByteBuffer(string: body)))
        #expect(wire.model == "openai/gpt-4.1")
        #expect(wire.isStreaming)
        #expect(wire.inputCount == 2)
        #expect(wire.userID == "u\u{e9}")
        #expect(String(buffer: wire.upstreamBody(model: "gpt-4.1")) == body.replacingOccurrences(of: "openai/gpt-4.1", with: "gpt-4.1"))
        #expect(WireResponsesRequest.scan(ByteBuffer(string: #"{"model":"m","input":"x"}"#))?.inputCount == 1)
    }

    /// The scan declines what it cannot vouch for, so the route decodes it fully.
    @Test(arguments: [
        #"{"model":"m","input":"x","model":"n"}"#, #"{"model":"","input":"x"}"#, #"{"input":"x"}"#,
        #"{"model":"m","input":"x","stream":"yes"}"#, #"{"m\u006fdel":"m","input":"x"}"#, #"{"model":"m","input":7}"#,
        #"{"model":"m","input":"x"} x"#, #"["model"]"#,
    ])
    func wireScanDeclines(body: String) {
        #expect(WireResponsesRequest.scan(ByteBuffer(string: body)) == nil)
    }

    // MARK: Relayed answers

    /// A recorded Responses body's summary has its id, model and usage; its internal response has the
    /// text, the function call and the usage in chat terms.
    @Test func relayedBodies() throws {
        let text = try Fixtures.text("openai_responses_text_response_nonstreaming.json")
        let summary = try #require(ResponsesWireSummary.response(ByteBuffer(string: text).readableBytesView))
        #expect(summary.id == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b")
        #expect(summary.model == "gpt-4.1-2025-04-14")
        #expect(summary.usage?.promptTokens == 36)
        #expect(summary.usage?.completionTokens == 87)
        #expect(summary.usage?.cachedTokens == 0)
        #expect(summary.error == nil)
        let chat = try #require(ResponsesEgress.chatResponse(try Fixtures.json("openai_responses_text_response_nonstreaming.json")))
        #expect(chat.choices.first?.message.text?.hasPrefix("In a peaceful grove") == true)
        #expect(chat.choices.first?.finishReason == .stop)

        let tools = try #require(ResponsesEgress.chatResponse(try Fixtures.json("openai_responses_tools_response_nonstreaming.json")))
        #expect(tools.choices.first?.message.toolCalls?.first?.id == "call_unLAR8MvFNptuiZK6K6HCy5k")
        #expect(tools.choices.first?.message.toolCalls?.first?.function.name == "get_current_weather")
        #expect(tools.choices.first?.finishReason == .toolCalls)
        #expect(tools.usage?.totalTokens == 314)

        let error = try #require(ResponsesWireSummary.response(ByteBuffer(string: #"{"error":{"message":"bad","type":"invalid_request_error","param":"input","code":null}}"#).readableBytesView))
        #expect(error.error?.param == "input")
        #expect(error.providerError != nil)
    }

    /// A recorded Responses stream: only the first and last events are read for the summary, the last
    /// ends the answer, and the stored response comes from `response.completed`.
    @Test(arguments: ["openai_responses_text_response_streaming.txt", "openai_responses_tools_response_streaming.txt"])
    func relayedStreams(fixture: String) throws {
        let bytes = Array(try Fixtures.text(fixture).utf8)
        var decoder = RelayedEventStreamDecoder<ResponsesWireSummary> { .relayedResponses($0) }
        var events: [ChatStreamEvent] = []
        // Fed in small pieces, as the network delivers them.
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 97, bytes.count)
            try decoder.decode(ByteBuffer(bytes: bytes[offset..<end]).readableBytesView, into: &events)
            offset = end
        }
        try decoder.finish(into: &events)
        var relayed: [UInt8] = []
        var summary = ResponsesWireSummary()
        var ends = 0
        for event in events {
            guard case .relayedResponses(let part) = event else { continue }
            relayed += part.bytes.readableBytesView
            if let read = part.summary { summary.merge(read) }
            if part.endsAnswer { ends += 1 }
        }
        #expect(relayed == bytes)
        #expect(ends == 1)
        #expect(summary.id?.hasPrefix("resp_") == true)
        #expect(summary.usage?.totalTokens != nil)
        let chat = try #require(ResponsesEgress.chatResponse(eventStream: bytes))
        #expect(chat.usage == summary.usage)
        #expect(chat.model == "gpt-4.1-2025-04-14")
    }
}
