@testable import ChronicleCore
import Foundation
import Testing

/// Anthropic-format clients: their requests to the internal request, internal answers back to theirs.
@Suite struct AnthropicIngressTests {
    static func decodeRequest(_ json: String) throws -> AnthropicMessagesRequest {
        try AnthropicIngress.decode(Array(json.utf8))
    }

    static func json(_ value: some Encodable) throws -> JSONValue {
        try JSONCoding.decode(JSONValue.self, from: JSONCoding.encodeBytes(value))
    }

    /// The recorded native requests become the internal requests the OpenAI-format fixtures would be.
    @Test(arguments: ["anthropic_text.json", "anthropic_tools.json"])
    func fixtureRequests(name: String) throws {
        let native = try Fixtures.json(name)
        let request = try AnthropicIngress.decode(Array(Fixtures.text(name).utf8))
        let chat = try AnthropicIngress.chatRequest(request, for: .openAICompatible)
        #expect(chat.model == native["model"]?.stringValue)
        #expect(chat.maxTokens == native["max_tokens"]?.intValue)
        #expect(chat.messages == [ChatMessage(role: "user", content: .text(native["messages"]?.arrayValue?.first?["content"]?.stringValue ?? "?"))])
        if let tools = native["tools"]?.arrayValue {
            #expect(chat.tools?.map(\.function.name) == tools.map { $0["name"]?.stringValue ?? "?" })
            #expect(chat.tools?.first?.function.parameters == tools.first?["input_schema"])
            #expect(chat.tools?.first?.function.description == tools.first?["description"]?.stringValue)
            #expect(chat.toolChoice == ["type": "function", "function": ["name": "get_characteristics"]])
        } else {
            #expect(chat.tools == nil)
        }
    }

    /// A native request converted in and out again (through the Anthropic provider's conversion) is the
    /// request the client sent.
    @Test(arguments: ["anthropic_text.json", "anthropic_tools.json"])
    func fixtureRequestRoundTrip(name: String) throws {
        var native = try Fixtures.json(name).objectValue ?? [:]
        let chat = try AnthropicIngress.chatRequest(AnthropicIngress.decode(Array(Fixtures.text(name).utf8)), for: .converting)
        let back = try AnthropicTestAccess.convert(chat)
        // A string content goes back as the one text block it means.
        native["messages"] = .array((native["messages"]?.arrayValue ?? []).map { message in
            ["role": message["role"] ?? .null, "content": [["type": "text", "text": message["content"] ?? .null]]]
        })
        #expect(back == .object(native))
    }

    /// Every content type and member of a multi-turn tool conversation, converted for an OpenAI-format
    /// provider.
    @Test func conversation() throws {
        let request = try Self.decodeRequest(#"""
            {"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,"temperature":0.3,"top_p":0.9,"top_k":5,
             "stop_sequences":["END"],"metadata":{"user_id":"user-42"},
             "system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind.","cache_control":{"type":"ephemeral"}}],
             "thinking":{"type":"enabled","budget_tokens":8000},
             "tools":[{"name":"weather","description":"Weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true},
             "messages":[
               {"role":"user","content":[{"type":"text","text":"Weather here?"},
                 {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
                 {"type":"image","source":{"type":"url","url":"https://example.com/a.jpg"}}]},
               {"role":"assistant","content":[{"type":"thinking","thinking":"Need city.","signature":"sig"},
                 {"type":"text","text":"Checking."},
                 {"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}},
                 {"type":"tool_use","id":"toolu_2","name":"weather","input":{"city":"Lyon"}}]},
               {"role":"user","content":[
                 {"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
                 {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,"content":[{"type":"text","text":"no"},{"type":"text","text":"data"}]},
                 {"type":"text","text":"And tomorrow?"}]}
             ]}
            """#)
        #expect(request.metadata?.userID == "user-42")
        let chat = try AnthropicIngress.chatRequest(request, for: .openAICompatible)
        #expect(chat.user == "user-42")
        #expect(chat.isStreaming)
        #expect(chat.streamOptions == ["include_usage": true])
        #expect(chat.maxTokens == 512)
        #expect(chat.temperature == 0.3)
        #expect(chat.topP == 0.9)
        #expect(chat.stop == ["END"])
        #expect(chat.toolChoice == "required")
        #expect(chat.unknownFields == ["parallel_tool_calls": false, "reasoning_effort": "medium"])
        #expect(chat.tools == [Tool(function: FunctionDefinition(
            name: "weather", description: "Weather now",
            parameters: ["type": "object", "properties": ["city": ["type": "string"]]]))])
        var system = ChatMessage(role: "system", content: .parts([.text("Be brief."), .text("Be kind.")]))
        system.cacheControl = ["type": "ephemeral"]
        var assistant = ChatMessage(role: "assistant", content: .text("Checking."), toolCalls: [
            ToolCall(id: "toolu_1", function: FunctionCall(name: "weather", arguments: #"{"city":"Paris"}"#)),
            ToolCall(id: "toolu_2", function: FunctionCall(name: "weather", arguments: #"{"city":"Lyon"}"#)),
        ])
        #expect(chat.messages == [
            system,
            ChatMessage(role: "user", content: .parts([
                .text("Weather here?"), .imageURL("data:image/png;base64,iVBOR"), .imageURL("https://example.com/a.jpg"),
            ])),
            assistant,
            ChatMessage(role: "tool", content: .text("18C"), toolCallID: "toolu_1"),
            ChatMessage(role: "tool", content: .parts([.text("Error:"), .text("no"), .text("data")]), toolCallID: "toolu_2"),
            ChatMessage(role: "user", content: .text("And tomorrow?")),
        ])

        // For a converting provider the Anthropic-only members, the error flag and thinking are kept.
        let converting = try AnthropicIngress.chatRequest(request, for: .converting)
        #expect(converting.unknownFields["thinking"] == ["type": "enabled", "budget_tokens": 8000])
        #expect(converting.unknownFields["top_k"] == 5)
        #expect(converting.unknownFields["reasoning_effort"] == nil)
        #expect(converting.streamOptions == nil)
        assistant.thinkingBlocks = [.thinking("Need city.", signature: "sig")]
        #expect(converting.messages[2] == assistant)
        #expect(converting.messages[4] == ChatMessage(role: "tool", content: .parts([.text("no"), .text("data")]),
                                                      toolCallID: "toolu_2", unknownFields: ["is_error": true]))
        // And the Anthropic provider's conversion gives the client's conversation back.
        let back = try AnthropicTestAccess.convert(converting)
        #expect(back["thinking"] == ["type": "enabled", "budget_tokens": 8000])
        #expect(back["tool_choice"] == ["type": "any", "disable_parallel_tool_use": true])
        #expect(back["messages"]?.arrayValue?[1] == ["role": "assistant", "content": [
            ["type": "thinking", "thinking": "Need city.", "signature": "sig"], ["type": "text", "text": "Checking."],
            ["type": "tool_use", "id": "toolu_1", "name": "weather", "input": ["city": "Paris"]],
            ["type": "tool_use", "id": "toolu_2", "name": "weather", "input": ["city": "Lyon"]],
        ]])
        #expect(back["messages"]?.arrayValue?[2]["content"]?.arrayValue?[1] == ["type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                                                         "content": [["type": "text", "text": "no"], ["type": "text", "text": "data"]]])
    }

    /// Documents become OpenAI's file and text parts; blocks only Anthropic reads are refused for an
    /// OpenAI-compatible provider and kept whole for a converting one.
    @Test func documents() throws {
        let request = try Self.decodeRequest(#"""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
              {"type":"document","title":"a.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}},
              {"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain"},"citations":{"enabled":true}}]}]}
            """#)
        let chat = try AnthropicIngress.chatRequest(request, for: .openAICompatible)
        #expect(chat.messages == [ChatMessage(role: "user", content: .parts([
            ContentPart(type: "file", fields: ["file": ["filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"]]),
            .text("plain"),
        ]))])
        let converting = try AnthropicIngress.chatRequest(request, for: .converting)
        #expect(converting.messages.first?.content == .parts([
            ContentPart(type: "document", fields: [
                "title": "a.pdf", "source": ["type": "base64", "media_type": "application/pdf", "data": "JVBE"]]),
            ContentPart(type: "document", fields: [
                "source": ["type": "text", "media_type": "text/plain", "data": "plain"], "citations": ["enabled": true]]),
        ]))
        let search = try Self.decodeRequest(
            #"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"t","content":[]}]}]}"#)
        #expect(throws: AnthropicError(.invalidRequest, message: "messages[0].content: search_result blocks can only be sent to Anthropic")) {
            try AnthropicIngress.chatRequest(search, for: .openAICompatible)
        }
        #expect(try AnthropicIngress.chatRequest(search, for: .converting).messages.first?.content?.text == nil)
    }

    /// Each tool_choice maps to its OpenAI equivalent.
    static let toolChoices: [(String, JSONValue)] = [
        (#"{"type":"auto"}"#, "auto"), (#"{"type":"any"}"#, "required"), (#"{"type":"none"}"#, "none"),
        (#"{"type":"tool","name":"f"}"#, ["type": "function", "function": ["name": "f"]]),
    ]

    @Test(arguments: toolChoices)
    func toolChoice(choice: String, expected: JSONValue) throws {
        let request = try Self.decodeRequest(#"{"model":"m","max_tokens":1,"messages":[],"tools":[{"name":"f","input_schema":{}}],"tool_choice":"#
            + choice + "}")
        #expect(try AnthropicIngress.chatRequest(request, for: .openAICompatible).toolChoice == expected)
    }

    /// Bad input is an invalid_request_error that names the member at fault.
    @Test(arguments: [
        (#"{"max_tokens":1,"messages":[]}"#, "model"),
        (#"{"model":"m","messages":[]}"#, "max_tokens"),
        (#"{"model":"m","max_tokens":0,"messages":[]}"#, "max_tokens"),
        (#"{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]}"#, "messages[0].role"),
        (#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}"#, "type"),
        (#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64"}}]}]}"#, "media_type"),
        (#"{"model":"m","max_tokens":1,"messages":[],"tool_choice":{"type":"tool"}}"#, "tool_choice.name"),
        (#"{"model":"m","max_tokens":1,"messages":[],"tool_choice":{"type":"sometimes"}}"#, "tool_choice.type"),
        (#"{"model":"m","max_tokens":"many","messages":[]}"#, "max_tokens"),
        ("not json", "body"),
    ])
    func badRequests(json: String, member: String) {
        do {
            _ = try Self.decodeRequest(json)
            Issue.record("accepted \(json)")
        } catch let error as AnthropicError {
            #expect(error.type == "invalid_request_error")
            #expect(error.status == 400)
            #expect(error.message.contains(member), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// What the internal request cannot say is refused by name, not dropped.
    @Test(arguments: [
        (#"{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#, "server tool"),
        (#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}"#, "assistant"),
        (#"{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"t"}]}]}"#, "user messages"),
        (#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#, "file"),
    ])
    func untranslatable(json: String, words: String) throws {
        let request = try Self.decodeRequest(json)
        #expect {
            _ = try AnthropicIngress.chatRequest(request, for: .openAICompatible)
        } throws: { error in
            (error as? AnthropicError)?.type == "invalid_request_error" && (error as? AnthropicError)?.message.contains(words) == true
        }
    }

    /// The recorded answers, read by the Anthropic provider and written back for an Anthropic client, are
    /// the recorded answers (the id, tool ids, stop reason and usage kept).
    @Test(arguments: ["anthropic_text_response_nonstreaming.json", "anthropic_tools_response_nonstreaming.json"])
    func fixtureResponseRoundTrip(name: String) throws {
        let bytes = Array(try Fixtures.text(name).utf8)
        let native = try JSONCoding.decode(AnthropicMessagesResponse.self, from: bytes)
        let chat = AnthropicConversion.response(native, requestedModel: "m")
        let back = try AnthropicIngress.response(chat, requestedModel: "m")
        #expect(try Self.json(back) == Fixtures.json(name))
    }

    /// An OpenAI-format answer becomes an Anthropic one: ids in Anthropic's style, tool input as an
    /// object, stop reasons mapped, and cache tokens counted apart from input tokens.
    @Test func openAIResponse() throws {
        let response = try decode(ChatResponse.self, try Fixtures.text("openai_tools_response_nonstreaming.json"))
        let converted = try AnthropicIngress.response(response, requestedModel: "gpt")
        let json = try Self.json(converted)
        #expect(converted.id?.hasPrefix("msg_") == true)
        #expect(converted.id?.contains(response.id ?? "?") == true)
        #expect(converted.stopReason == "tool_use")
        #expect(json["type"] == "message")
        #expect(json["role"] == "assistant")
        let call = try #require(response.choices.first?.message.toolCalls?.first)
        guard case .toolUse(let use)? = converted.content.last else {
            Issue.record("no tool_use block in \(json)")
            return
        }
        #expect(use.id == "toolu_" + (call.id ?? "?"))
        #expect(use.name == call.function.name)
        #expect(use.input == (try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "").utf8))))
        let input = JSONValue.integer(Int64(response.usage?.promptTokens ?? -1))
        let output = JSONValue.integer(Int64(response.usage?.completionTokens ?? -1))
        let expectedUsage: JSONValue = ["input_tokens": input, "output_tokens": output]
        #expect(json["usage"] == expectedUsage)

        var cached = ChatResponse(id: "chatcmpl-9", model: "gpt", choices: [ChatChoice(
            message: ChatMessage(role: "assistant", content: .text("Hi")), finishReason: .length)],
            usage: Usage(promptTokens: 100, completionTokens: 7, unknownFields: [
                "prompt_tokens_details": ["cached_tokens": 60]]))
        cached.choices[0].message.reasoningContent = "Think."
        let second = try Self.json(try AnthropicIngress.response(cached, requestedModel: "gpt"))
        #expect(second["usage"] == ["input_tokens": 40, "cache_read_input_tokens": 60, "output_tokens": 7])
        #expect(second["stop_reason"] == "max_tokens")
        #expect(second["id"] == "msg_chatcmpl-9")
        #expect(second["content"] == [["type": "thinking", "thinking": "Think.", "signature": ""], ["type": "text", "text": "Hi"]])
    }

    /// Finish reasons map to Anthropic's stop reasons; a stop on a named stop sequence says which.
    @Test func stopReasons() {
        #expect(AnthropicIngress.stopReason(.stop) == ("end_turn", nil))
        #expect(AnthropicIngress.stopReason(nil) == ("end_turn", nil))
        #expect(AnthropicIngress.stopReason(.length) == ("max_tokens", nil))
        #expect(AnthropicIngress.stopReason(.toolCalls) == ("tool_use", nil))
        #expect(AnthropicIngress.stopReason(.contentFilter) == ("refusal", nil))
        #expect(AnthropicIngress.stopReason(.stop, details: ["stop_reason": "END"]) == ("stop_sequence", "END"))
        #expect(AnthropicIngress.stopReason(.stop, calledTools: true) == ("tool_use", nil))
        #expect(AnthropicIngress.stopReason("stop_sequence", details: ["stop_sequence": "###"]) == ("stop_sequence", "###"))
    }

    /// Ids keep an Anthropic id, prefix another, and are made up when there is none.
    @Test func ids() {
        #expect(AnthropicIngress.messageID("msg_01abc") == "msg_01abc")
        #expect(AnthropicIngress.messageID("chatcmpl-x/y") == "msg_chatcmpl-xy")
        #expect(AnthropicIngress.toolUseID("toolu_9") == "toolu_9")
        #expect(AnthropicIngress.toolUseID("call_abc") == "toolu_call_abc")
        let made = AnthropicIngress.toolUseID(nil)
        #expect(made.hasPrefix("toolu_") && made.count == 30)
        #expect(made != AnthropicIngress.toolUseID(nil))
    }

    /// Error bodies have Anthropic's shape, and each status its type.
    @Test func errors() throws {
        let statuses = [400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                        404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                        529: "overloaded_error"]
        for (status, type) in statuses {
            #expect(AnthropicErrorType(status: status).rawValue == type)
            #expect(AnthropicErrorType(status: status).status == status)
        }
        let body = try JSONCoding.decode(JSONValue.self, from: AnthropicError(.rateLimit, message: "slow down").body())
        #expect(body == ["type": "error", "error": ["type": "rate_limit_error", "message": "slow down"]])

        let cases: [(ProviderError, String, Int)] = [
            (ProviderError(kind: .badInput, status: 422), "invalid_request_error", 400),
            (ProviderError(kind: .badInput, status: 413), "request_too_large", 413),
            (ProviderError(kind: .transformingRequest), "invalid_request_error", 400),
            (ProviderError(kind: .authRejected, status: 403), "permission_error", 403),
            (ProviderError(kind: .authRejected), "authentication_error", 401),
            (ProviderError(kind: .rateLimit, status: 429), "rate_limit_error", 429),
            (ProviderError(kind: .server, status: 529), "overloaded_error", 529),
            (ProviderError(kind: .server, status: 500), "api_error", 500),
            (ProviderError(kind: .connection), "api_error", 500),
            (ProviderError(kind: .timeout), "timeout_error", 504),
            (ProviderError(kind: .permanent, status: 404), "not_found_error", 404),
        ]
        for (error, type, status) in cases {
            let converted = AnthropicError(error)
            #expect(converted.type == type, "\(error.kind)")
            #expect(converted.status == status, "\(error.kind)")
            #expect(converted.message == error.message)
        }
    }
}
