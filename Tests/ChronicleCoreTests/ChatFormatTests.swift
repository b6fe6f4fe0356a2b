import ChronicleCore
import ChronicleTesting
import Testing

@Suite("Chat format")
struct ChatFormatTests {
    /// Content may be a string or an array of parts; unknown part types survive a round trip.
    @Test func contentPartsRoundTrip() throws {
        let request = try decode(ChatRequest.self, """
            {"model":"gpt-4o","messages":[{"role":"user","content":[
              {"type":"text","text":"What is in "},{"type":"text","text":"this image?"},
              {"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}},
              {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}
            """)
        let message = try #require(request.messages.first)
        #expect(message.text == "What is in this image?")
        guard case .parts(let parts) = message.content else {
            Issue.record("expected parts")
            return
        }
        #expect(parts.count == 4)
        #expect(parts[2].imageURL == "https://example.com/a.png")
        let encoded = try encodeToJSON(request)
        #expect(encoded["messages"]?.arrayValue?[0]["content"]?.arrayValue?[3]
            == ["type": "input_audio", "input_audio": ["data": "AAAA", "format": "wav"]])
    }

    /// Unknown request fields are kept and encoded unchanged.
    @Test func unknownRequestFieldsAreForwarded() throws {
        let request = try decode(ChatRequest.self, """
            {"model":"gpt-4o","messages":[{"role":"user","content":"hi","refusal":null}],
             "parallel_tool_calls":false,"service_tier":"flex","store":true,"reasoning_effort":"low",
             "seed":9007199254740993,"stop":"END"}
            """)
        let encoded = try encodeToJSON(request)
        #expect(encoded["parallel_tool_calls"] == false)
        #expect(encoded["service_tier"] == "flex")
        #expect(encoded["store"] == true)
        #expect(encoded["reasoning_effort"] == "low")
        #expect(encoded["seed"] == .integer(9_007_199_254_740_993))
        #expect(encoded["stop"] == ["END"])
        #expect(encoded["messages"]?.arrayValue?[0]["refusal"] == .null)
    }

    /// Unknown response fields (logprobs, usage details) reach the client, with id and object.
    @Test func responseKeepsProviderFields() throws {
        let response = try decode(ChatResponse.self, """
            {"id":"chatcmpl-1","object":"chat.completion","created":5,"model":"gpt-4o","service_tier":"default",
             "choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null},
               "logprobs":{"content":[]},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,
               "prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":0}}}
            """)
        #expect(response.usage?.cachedTokens == 2)
        #expect(response.usage?.reasoningTokens == 0)
        let encoded = try encodeToJSON(response)
        #expect(encoded["id"] == "chatcmpl-1")
        #expect(encoded["object"] == "chat.completion")
        #expect(encoded["service_tier"] == "default")
        #expect(encoded["choices"]?.arrayValue?[0]["logprobs"] == ["content": []])
        #expect(encoded["usage"]?["prompt_tokens_details"] == ["cached_tokens": 2])
    }

    /// A missing or null finish_reason or created is tolerated.
    @Test func missingFinishReasonAndCreated() throws {
        let response = try decode(ChatResponse.self, """
            {"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":null}]}
            """)
        #expect(response.choices[0].finishReason == nil)
        #expect(response.created > 0)
        let encoded = try encodeToJSON(response)
        #expect(encoded["choices"]?.arrayValue?[0]["finish_reason"] == "stop")
    }

    /// Finish reasons round-trip, known and custom.
    @Test(arguments: ["stop", "length", "tool_calls", "content_filter", "function_call"])
    func finishReasonRoundTrip(value: String) throws {
        let reason = try decode(FinishReason.self, "\"\(value)\"")
        #expect(reason.rawValue == value)
        #expect(try encodeToJSON(reason) == .string(value))
    }

    /// Tool-call arguments given as an object (Ollama) become JSON text.
    @Test func objectToolArgumentsBecomeText() throws {
        let call = try decode(ToolCall.self, #"{"function":{"name":"f","arguments":{"location":"Paris"}}}"#)
        #expect(call.function.arguments == #"{"location":"Paris"}"#)
    }

    /// A wrong shape names the field.
    @Test func wrongShapeNamesTheField() throws {
        do {
            _ = try decode(ChatRequest.self, #"{"model":"m","messages":[{"role":"user","content":5}]}"#)
            Issue.record("expected an error")
        } catch {
            #expect(describeDecodingError(error).contains("messages[0].content"))
        }
    }

    /// Metadata: unknown keys go to extra, a nested `extra` object is merged, typed fields are parsed.
    @Test func metadataExtras() throws {
        let metadata = try decode(RequestMetadata.self, """
            {"application":"app","step_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","some_key":1,"extra":{"other":"x"}}
            """)
        #expect(metadata.application == "app")
        #expect(metadata.stepID?.uuidString.lowercased() == "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        #expect(metadata.extra == ["some_key": 1, "other": "x"])
    }

    /// UUIDv7 ids are version 7, variant 1, and ordered by time.
    @Test func uuidV7() {
        let earlier = UUID.v7(now: Date(timeIntervalSince1970: 1_700_000_000))
        let later = UUID.v7(now: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(earlier.uuidString.lowercased() < later.uuidString.lowercased())
        let text = earlier.uuidString
        #expect(Array(text)[14] == "7")
        #expect("89AB".contains(Array(text)[19]))
    }
}

import Foundation
