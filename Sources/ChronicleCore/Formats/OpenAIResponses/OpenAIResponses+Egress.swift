/// Conversions from what a provider serving the Responses API answers to the gateway's internal response,
/// for the record of a passthrough call (read off the request path, when the call is stored).
public enum ResponsesEgress {
    /// The internal response for a Responses API `response` object: the output messages' text joined, the
    /// function calls as tool calls, the usage, and a finish reason from the status.
    public static func chatResponse(_ response: JSONValue) -> ChatResponse? {
        guard case .object(let members) = response, members["object"]?.stringValue == "response"
            || members["output"] != nil else { return nil }
        var text = ""
        var calls: [ToolCall] = []
        var reasoning = ""
        for item in members["output"]?.arrayValue ?? [] {
            switch item["type"]?.stringValue {
            case "message"?:
                for part in item["content"]?.arrayValue ?? [] {
                    text += part["text"]?.stringValue ?? part["refusal"]?.stringValue ?? ""
                }
            case "function_call"?:
                calls.append(ToolCall(index: calls.count, id: item["call_id"]?.stringValue, type: "function",
                                      function: FunctionCall(name: item["name"]?.stringValue,
                                                             arguments: item["arguments"]?.stringValue)))
            case "reasoning"?:
                // The reasoning text where the model gives it, else its summary.
                let parts = item["content"]?.arrayValue.flatMap { $0.isEmpty ? nil : $0 } ?? item["summary"]?.arrayValue ?? []
                for part in parts { reasoning += part["text"]?.stringValue ?? "" }
            default:
                continue
            }
        }
        var message = ChatMessage(role: "assistant", content: text.isEmpty && !calls.isEmpty ? nil : .text(text),
                                  toolCalls: calls.isEmpty ? nil : calls)
        if !reasoning.isEmpty { message.reasoningContent = reasoning }
        let finish: FinishReason
        if members["status"]?.stringValue == "incomplete" {
            finish = members["incomplete_details"]?["reason"]?.stringValue == "content_filter" ? "content_filter" : "length"
        } else {
            finish = calls.isEmpty ? .stop : "tool_calls"
        }
        var chat = ChatResponse(id: members["id"]?.stringValue, created: Int64(members["created_at"]?.doubleValue ?? 0),
                                model: members["model"]?.stringValue,
                                choices: [ChatChoice(message: message, finishReason: finish)])
        chat.usage = members["usage"].flatMap(usage)
        return chat
    }

    /// A Responses API `usage` in the gateway's terms: input and output tokens, with the cached input and
    /// the reasoning tokens in chat completions' details.
    public static func usage(_ usage: JSONValue) -> Usage? {
        guard case .object = usage else { return nil }
        var converted = Usage(promptTokens: usage["input_tokens"]?.intValue,
                              completionTokens: usage["output_tokens"]?.intValue,
                              totalTokens: usage["total_tokens"]?.intValue)
        if let cached = usage["input_tokens_details"]?["cached_tokens"]?.intValue {
            converted.unknownFields["prompt_tokens_details"] = ["cached_tokens": .integer(Int64(cached))]
        }
        if let reasoning = usage["output_tokens_details"]?["reasoning_tokens"]?.intValue {
            converted.unknownFields["completion_tokens_details"] = ["reasoning_tokens": .integer(Int64(reasoning))]
        }
        return converted
    }

    /// The internal response for a relayed event stream's bytes: the response in its last
    /// `response.completed`, `response.incomplete` or `response.failed` event.
    public static func chatResponse(eventStream bytes: [UInt8]) -> ChatResponse? {
        var parser = ServerSentEventParser()
        let events = ((try? parser.parse(bytes)) ?? []) + parser.finish()
        for event in events.reversed() where ResponsesWireSummary.endsAnswer(event.event) {
            guard let json = try? JSONCoding.decode(JSONValue.self, from: event.data), let response = json["response"]
            else { continue }
            return chatResponse(response)
        }
        return nil
    }
}
