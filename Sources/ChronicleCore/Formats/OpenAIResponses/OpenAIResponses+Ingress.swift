import Foundation

/// Conversions for clients that speak the OpenAI Responses API to a provider that does not: their request
/// to the gateway's internal chat request. The answer goes back through ``ResponsesStreamTranslator``,
/// streamed or not.
public enum ResponsesIngress {
    /// The name of the tool that stands in for `text.format` on a provider without structured output
    /// (Anthropic, Bedrock): the model is made to call it, and its arguments are the answer's text.
    public static let structuredOutputTool = "chronicle_structured_output"

    /// Decodes a Responses API request body and refuses what no translation can carry.
    /// - Throws: a ``ResponsesError`` whose `param` names the member at fault.
    public static func decode(_ body: some Collection<UInt8>) throws(ResponsesError) -> ResponsesRequest {
        let json: JSONValue
        do {
            json = try JSONCoding.decode(JSONValue.self, from: body)
        } catch {
            throw .invalid(nil, "The request body is not valid JSON")
        }
        guard case .object(let members) = json else { throw .invalid(nil, "The request body must be a JSON object") }
        return try decode(members)
    }

    /// Checks the members every provider's route reads (`model`, `input`, `stream`, `user`, `tools`), naming
    /// the one at fault; a passthrough request is otherwise the upstream's to judge.
    public static func decodeRoutingMembers(_ members: [String: JSONValue]) throws(ResponsesError) {
        guard let model = members["model"]?.stringValue, !model.isEmpty else {
            throw .invalid("model", "`model` is required: a non-empty string")
        }
        switch members["input"] {
        case .string?, .array?: break
        default: throw .invalid("input", "`input` is required: a string or an array of input items")
        }
        for name in ["stream", "store", "background", "parallel_tool_calls"] {
            if let value = members[name], !value.isNull, value.boolValue == nil {
                throw .invalid(name, "`\(name)` must be a boolean")
            }
        }
        for name in ["user", "safety_identifier"] {
            if let value = members[name], !value.isNull, value.stringValue == nil {
                throw .invalid(name, "`\(name)` must be a string")
            }
        }
        if let tools = members["tools"], !tools.isNull, tools.arrayValue == nil {
            throw .invalid("tools", "`tools` must be an array")
        }
    }

    static func decode(_ members: [String: JSONValue]) throws(ResponsesError) -> ResponsesRequest {
        guard let model = members["model"]?.stringValue, !model.isEmpty else {
            throw .invalid("model", "`model` is required: a non-empty string")
        }
        var request = ResponsesRequest(model: model, input: try input(members["input"]), members: members)
        request.instructions = try optional(members, "instructions", \.stringValue, "a string")
        request.maxOutputTokens = try optional(members, "max_output_tokens", \.intValue, "an integer")
        if let tokens = request.maxOutputTokens, tokens < 1 {
            throw .invalid("max_output_tokens", "`max_output_tokens` must be at least 1")
        }
        request.temperature = try optional(members, "temperature", \.doubleValue, "a number")
        request.topP = try optional(members, "top_p", \.doubleValue, "a number")
        request.stream = try optional(members, "stream", \.boolValue, "a boolean") ?? false
        request.parallelToolCalls = try optional(members, "parallel_tool_calls", \.boolValue, "a boolean")
        let safetyIdentifier = try optional(members, "safety_identifier", \.stringValue, "a string")
        request.user = try optional(members, "user", \.stringValue, "a string") ?? safetyIdentifier
        request.tools = try tools(members["tools"])
        request.toolChoice = try toolChoice(members["tool_choice"])
        if let text = members["text"], !text.isNull {
            guard case .object(let settings) = text else { throw .invalid("text", "`text` must be an object") }
            if let format = settings["format"], !format.isNull {
                let type = format["type"]?.stringValue
                switch type {
                case "text"?: break
                case "json_object"?: request.textFormat = format
                case "json_schema"?:
                    guard format["name"]?.stringValue != nil, format["schema"]?.objectValue != nil else {
                        throw .invalid("text.format", "`text.format` of type json_schema needs a `name` and a `schema` object")
                    }
                    request.textFormat = format
                default:
                    throw .invalid("text.format.type", "`text.format.type` must be text, json_object or json_schema")
                }
            }
        }
        if let reasoning = members["reasoning"], !reasoning.isNull {
            guard case .object = reasoning else { throw .invalid("reasoning", "`reasoning` must be an object") }
            request.reasoningEffort = reasoning["effort"]?.stringValue
        }
        try refuseState(members)
        return request
    }

    /// Members that need the state OpenAI keeps between responses: no translation can honour them, so
    /// they are refused by name rather than dropped. An absent `store` is not refused (OpenAI's default,
    /// which SDKs never send): only `store: true` asks for a stored response.
    static func refuseState(_ members: [String: JSONValue]) throws(ResponsesError) {
        let stateless = "this model's provider keeps no state between responses; send the whole conversation in `input` instead"
        if let previous = members["previous_response_id"], !previous.isNull {
            throw .invalid("previous_response_id", "`previous_response_id` is not supported: \(stateless)")
        }
        if members["store"] == true {
            throw .invalid("store", "`store: true` is not supported: \(stateless)")
        }
        if let conversation = members["conversation"], !conversation.isNull {
            throw .invalid("conversation", "`conversation` is not supported: \(stateless)")
        }
        if members["background"] == true {
            throw .invalid("background", "`background: true` is not supported: \(stateless)")
        }
        if let prompt = members["prompt"], !prompt.isNull {
            throw .invalid("prompt", "`prompt` (a stored prompt) is not supported: it lives only on OpenAI")
        }
    }

    private static func optional<T>(_ members: [String: JSONValue], _ name: String, _ read: (JSONValue) -> T?,
                                    _ kind: String) throws(ResponsesError) -> T? {
        guard let value = members[name], !value.isNull else { return nil }
        guard let typed = read(value) else { throw .invalid(name, "`\(name)` must be \(kind)") }
        return typed
    }

    // MARK: Input

    static func input(_ value: JSONValue?) throws(ResponsesError) -> [ResponsesInputItem] {
        switch value {
        case .string(let text)?: return [.message(role: "user", content: [.text(text)])]
        case .array(let items)?:
            var result: [ResponsesInputItem] = []
            for (index, item) in items.enumerated() {
                if let converted = try inputItem(item, at: "input[\(index)]") { result.append(converted) }
            }
            return result
        default:
            throw .invalid("input", "`input` is required: a string or an array of input items")
        }
    }

    static func inputItem(_ item: JSONValue, at path: String) throws(ResponsesError) -> ResponsesInputItem? {
        guard case .object(let members) = item else { throw .invalid(path, "`\(path)` must be an object") }
        let type = members["type"]?.stringValue ?? (members["role"] != nil ? "message" : nil)
        switch type {
        case "message"?:
            guard let role = members["role"]?.stringValue, ["user", "system", "developer", "assistant"].contains(role) else {
                throw .invalid("\(path).role", "`\(path).role` must be user, system, developer or assistant")
            }
            return .message(role: role, content: try content(members["content"], at: "\(path).content"))
        case "function_call"?:
            guard let callID = members["call_id"]?.stringValue, let name = members["name"]?.stringValue else {
                throw .invalid(path, "`\(path)` (a function_call) needs a string `call_id` and `name`")
            }
            return .functionCall(callID: callID, name: name, arguments: members["arguments"]?.stringValue ?? "{}")
        case "function_call_output"?:
            guard let callID = members["call_id"]?.stringValue else {
                throw .invalid("\(path).call_id", "`\(path).call_id` is required: a string")
            }
            let output: String
            switch members["output"] {
            case .string(let text)?: output = text
            case .array(let parts)?:
                output = try content(.array(parts), at: "\(path).output").compactMap { part -> String? in
                    if case .text(let text) = part { return text }
                    return nil
                }.joined()
            default: throw .invalid("\(path).output", "`\(path).output` must be a string or text parts")
            }
            return .functionCallOutput(callID: callID, output: output)
        case "reasoning"?:
            // Reasoning from an earlier translated answer carries the provider's signature; OpenAI's own
            // reasoning items carry its encrypted state, which no other provider can read, and the
            // conversation they belong to is complete without them.
            guard let encrypted = members["encrypted_content"]?.stringValue,
                  encrypted.hasPrefix(ResponsesStreamTranslator.signaturePrefix) else { return nil }
            let text = (members["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined()
            return .reasoning(text: text, signature: String(encrypted.dropFirst(ResponsesStreamTranslator.signaturePrefix.count)))
        case "item_reference"?:
            throw .invalid(path, "`\(path)`: item references need stored responses; this model's provider keeps none")
        default:
            throw .invalid("\(path).type", "`\(path).type` \(quoted(type)) cannot be translated for this model's provider: "
                + "message, function_call and function_call_output items can")
        }
    }

    static func content(_ value: JSONValue?, at path: String) throws(ResponsesError) -> [ResponsesInputPart] {
        switch value {
        case .string(let text)?: return [.text(text)]
        case .array(let parts)?:
            var result: [ResponsesInputPart] = []
            for (index, part) in parts.enumerated() {
                let partPath = "\(path)[\(index)]"
                switch part["type"]?.stringValue {
                case "input_text"?, "output_text"?, "text"?:
                    guard let text = part["text"]?.stringValue else {
                        throw .invalid("\(partPath).text", "`\(partPath).text` is required: a string")
                    }
                    result.append(.text(text))
                case "refusal"?:
                    result.append(.text(part["refusal"]?.stringValue ?? ""))
                case "input_image"?:
                    guard let url = part["image_url"]?.stringValue else {
                        throw .invalid(partPath, "`\(partPath)`: only images given by `image_url` can be translated; "
                            + "a `file_id` lives only on OpenAI")
                    }
                    result.append(.image(url: url, detail: part["detail"]?.stringValue))
                default:
                    throw .invalid("\(partPath).type", "`\(partPath).type` \(quoted(part["type"]?.stringValue)) cannot be "
                        + "translated for this model's provider: input_text and input_image can")
                }
            }
            return result
        default:
            throw .invalid(path, "`\(path)` must be a string or an array of content parts")
        }
    }

    /// A member's value for a message: quoted, or `(missing)`.
    static func quoted(_ value: String?) -> String {
        value.map { "\"\($0)\"" } ?? "(missing)"
    }

    // MARK: Tools

    static func tools(_ value: JSONValue?) throws(ResponsesError) -> [FunctionDefinition] {
        guard let value, !value.isNull else { return [] }
        guard case .array(let tools) = value else { throw .invalid("tools", "`tools` must be an array") }
        var result: [FunctionDefinition] = []
        for (index, tool) in tools.enumerated() {
            let type = tool["type"]?.stringValue
            guard type == "function" else {
                // Built-in tools (web_search, file_search, computer_use, code_interpreter, mcp, …) run on
                // OpenAI's side; no other provider has them.
                throw .invalid("tools[\(index)].type", "The tool type \(quoted(type)) in `tools[\(index)]` is built into "
                    + "OpenAI's Responses API; this model's provider does not have it. Only function tools can be translated")
            }
            guard let name = tool["name"]?.stringValue, !name.isEmpty else {
                throw .invalid("tools[\(index)].name", "`tools[\(index)].name` is required: a non-empty string")
            }
            result.append(FunctionDefinition(name: name, description: tool["description"]?.stringValue,
                                             parameters: tool["parameters"].flatMap { $0.isNull ? nil : $0 },
                                             strict: tool["strict"]?.boolValue))
        }
        return result
    }

    /// `tool_choice` in chat-completions terms: `auto`, `none` and `required` as they are, a named function
    /// as `{"type":"function","function":{"name":…}}`.
    static func toolChoice(_ value: JSONValue?) throws(ResponsesError) -> JSONValue? {
        switch value {
        case nil, .null?: return nil
        case .string(let mode)? where ["auto", "none", "required"].contains(mode): return .string(mode)
        case .object(let choice)? where choice["type"]?.stringValue == "function":
            guard let name = choice["name"]?.stringValue else {
                throw .invalid("tool_choice.name", "`tool_choice.name` is required for a function")
            }
            return ["type": "function", "function": ["name": .string(name)]]
        default:
            throw .invalid("tool_choice", "`tool_choice` must be auto, none, required or a function by name: the others "
                + "choose built-in tools, which this model's provider does not have")
        }
    }

    // MARK: To chat

    /// The internal chat request for a Responses request.
    /// - Parameters:
    ///   - upstream: OpenAI-compatible APIs get OpenAI's own members (`reasoning_effort`,
    ///     `parallel_tool_calls`); converting providers get `thinking` (Anthropic's converter reads it) and
    ///     `think` (Ollama's does).
    ///   - nativeResponseFormat: whether the provider takes `response_format`; when it does not,
    ///     `text.format` becomes a tool the model must call (``structuredOutputTool``).
    public static func chatRequest(_ request: ResponsesRequest, for upstream: AnthropicIngress.Upstream,
                                   nativeResponseFormat: Bool = true) -> ChatRequest {
        var messages: [ChatMessage] = []
        if let instructions = request.instructions, !instructions.isEmpty {
            messages.append(ChatMessage(role: "system", content: .text(instructions)))
        }
        // Signed thinking waits for the assistant turn it belongs to, the next one; only converting providers
        // (Anthropic's converter) take it back.
        var thinking: [ThinkingBlock] = []
        func attachThinking(to index: Int) {
            guard !thinking.isEmpty else { return }
            if upstream == .converting { messages[index].thinkingBlocks = (messages[index].thinkingBlocks ?? []) + thinking }
            thinking = []
        }
        for item in request.input {
            switch item {
            case .message(let role, let parts):
                let chatRole = role == "developer" ? "system" : role
                messages.append(ChatMessage(role: chatRole, content: content(parts)))
                if chatRole == "assistant" { attachThinking(to: messages.count - 1) }
            case .reasoning(let text, let signature):
                thinking.append(.thinking(text, signature: signature))
            case .functionCall(let callID, let name, let arguments):
                let call = ToolCall(id: callID, type: "function", function: FunctionCall(name: name, arguments: arguments))
                // Calls made in one turn belong to one assistant message, after its text if it had any.
                if let last = messages.indices.last, messages[last].role == "assistant" {
                    messages[last].toolCalls = (messages[last].toolCalls ?? []) + [call]
                } else {
                    messages.append(ChatMessage(role: "assistant", content: nil, toolCalls: [call]))
                }
                attachThinking(to: messages.count - 1)
            case .functionCallOutput(let callID, let output):
                messages.append(ChatMessage(role: "tool", content: .text(output), toolCallID: callID))
            }
        }
        var chat = ChatRequest(model: request.model, messages: messages, stream: request.stream)
        chat.maxTokens = request.maxOutputTokens
        chat.temperature = request.temperature
        chat.topP = request.topP
        chat.user = request.user
        if !request.tools.isEmpty { chat.tools = request.tools.map { Tool(function: $0) } }
        chat.toolChoice = request.toolChoice
        if upstream == .openAICompatible, let parallel = request.parallelToolCalls {
            chat.unknownFields["parallel_tool_calls"] = .bool(parallel)
        }
        var forcesTool = false
        if let format = request.textFormat {
            let responseFormat = chatResponseFormat(format)
            if nativeResponseFormat {
                chat.responseFormat = responseFormat
            } else {
                // No structured output on this provider: the schema becomes the one tool the model must
                // call, and the call's arguments become the answer's text.
                let schema = responseFormat["json_schema"]?["schema"] ?? ["type": "object"]
                let tool = FunctionDefinition(
                    name: structuredOutputTool,
                    description: "Answer by calling this tool: its arguments are the whole answer, as JSON matching its schema.",
                    parameters: schema)
                chat.tools = (chat.tools ?? []) + [Tool(function: tool)]
                chat.toolChoice = ["type": "function", "function": ["name": .string(structuredOutputTool)]]
                forcesTool = true
            }
        }
        if let effort = request.reasoningEffort {
            switch upstream {
            case .openAICompatible:
                chat.unknownFields["reasoning_effort"] = .string(effort)
            case .converting:
                // Each converter reads its own member and ignores the other's: Anthropic's reads `thinking`
                // (a budget, which Anthropic refuses alongside a forced tool and which needs room within the
                // output limit), Ollama's reads `think`.
                if !forcesTool, let budget = thinkingBudget(effort, maxTokens: request.maxOutputTokens) {
                    chat.unknownFields["thinking"] = ["type": "enabled", "budget_tokens": .integer(Int64(budget))]
                }
                if thinkingBudget(effort, maxTokens: nil) != nil { chat.unknownFields["think"] = true }
            }
        }
        if chat.isStreaming, upstream == .openAICompatible {
            // The translated stream's usage comes from the last chunk, which OpenAI-format upstreams send
            // only when asked.
            chat.streamOptions = ["include_usage": true]
        }
        return chat
    }

    /// A thinking budget for a reasoning effort: low 1,024 tokens, medium 4,096, high 16,384, kept below
    /// the output limit; none for `minimal`, `none` or a limit too small to think in.
    static func thinkingBudget(_ effort: String, maxTokens: Int?) -> Int? {
        let wanted: Int
        switch effort {
        case "low": wanted = 1024
        case "medium": wanted = 4096
        case "high": wanted = 16384
        default: return nil
        }
        guard let maxTokens else { return wanted }
        let budget = min(wanted, maxTokens - 1)
        return budget >= 1024 ? budget : nil
    }

    /// `text.format` as chat completions' `response_format`.
    static func chatResponseFormat(_ format: JSONValue) -> JSONValue {
        guard format["type"]?.stringValue == "json_schema" else { return ["type": "json_object"] }
        var schema: [String: JSONValue] = [:]
        for key in ["name", "schema", "strict", "description"] {
            if let value = format[key], !value.isNull { schema[key] = value }
        }
        return ["type": "json_schema", "json_schema": .object(schema)]
    }

    static func content(_ parts: [ResponsesInputPart]) -> MessageContent {
        if parts.count == 1, case .text(let text) = parts[0] { return .text(text) }
        return .parts(parts.map { part in
            switch part {
            case .text(let text):
                return ContentPart(type: "text", fields: ["text": .string(text)])
            case .image(let url, let detail):
                var image: [String: JSONValue] = ["url": .string(url)]
                if let detail { image["detail"] = .string(detail) }
                return ContentPart(type: "image_url", fields: ["image_url": .object(image)])
            }
        })
    }
}
