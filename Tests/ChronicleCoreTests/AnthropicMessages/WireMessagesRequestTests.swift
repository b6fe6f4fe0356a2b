@testable import ChronicleCore
import Foundation
import NIOCore
import Testing

/// The one-pass scan of Anthropic requests, for passing them through to Anthropic-format upstreams.
@Suite struct WireMessagesRequestTests {
    static func scan(_ json: String) -> WireMessagesRequest? {
        WireMessagesRequest.scan(ByteBuffer(string: json))
    }

    /// Everything a passthrough must keep: unknown members, cache_control, thinking, documents, citations,
    /// server tools, odd white space and escapes.
    static let rich = #"""
        {
          "system" : [{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral","ttl":"1h"}}],
          "model":   "claude-opus-4-1" ,
          "max_tokens": 2048, "stream": true, "top_k": 3, "service_tier": "auto", "future_member": {"a": [1, 2.50, null]},
          "metadata": {"user_id": "user-\u00e9", "other": 1},
          "thinking": {"type": "enabled", "budget_tokens": 1024},
          "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
                    {"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
          "tool_choice": {"type": "auto", "disable_parallel_tool_use": false},
          "messages": [
            {"role": "user", "content": [
              {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
               "citations": {"enabled": true}, "title": "Doc"},
              {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
              {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
              {"type": "text", "text": "Summarize \"this\"\n", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
              {"type": "thinking", "thinking": "Hmm", "signature": "sig=="},
              {"type": "redacted_thinking", "data": "abc"},
              {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
              {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
              {"type": "text", "text": "Found it.", "citations": [{"type": "char_location", "cited_text": "x"}]},
              {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
            {"role": "user", "content": [
              {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": true,
               "content": [{"type": "text", "text": "bad"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
              {"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"}]}
          ]
        }
        """#

    /// The scan reads model, stream, user id and message count as the full decoder does, and the upstream
    /// body differs from the client's only in the model's value.
    @Test(arguments: ["anthropic_text.json", "anthropic_tools.json", "rich"])
    func passthrough(name: String) throws {
        let json = name == "rich" ? Self.rich : try Fixtures.text(name)
        let wire = try #require(Self.scan(json))
        let decoded = try wire.decoded()
        #expect(wire.model == decoded.model)
        #expect(wire.isStreaming == (decoded.stream ?? false))
        #expect(wire.userID == decoded.metadata?.userID)
        #expect(wire.messageCount == decoded.messages.count)

        let original = Array(json.utf8)
        let quotedModel = Array(#""\#(decoded.model)""#.utf8)
        let replacement = Array(#""claude-\"x\"-é""#.utf8)
        let body = Array(wire.upstreamBody(model: #"claude-"x"-é"#).readableBytesView)
        let start = try #require((0...(original.count - quotedModel.count)).first { original[$0...].starts(with: quotedModel) })
        let expected = original[..<start] + replacement + original[(start + quotedModel.count)...]
        #expect(body == Array(expected))
        #expect(try JSONCoding.decode(JSONValue.self, from: body)["model"] == #"claude-"x"-é"#)
    }

    /// The rich request's members as the scan reads them.
    @Test func richMembers() throws {
        let wire = try #require(Self.scan(Self.rich))
        #expect(wire.model == "claude-opus-4-1")
        #expect(wire.isStreaming)
        #expect(wire.userID == "user-é")
        #expect(wire.messageCount == 3)
    }

    /// An escaped model is read with its escapes resolved, and replaced whole.
    @Test func escapedModel() throws {
        let wire = try #require(Self.scan(#"{"model":"cl\u0061ude","max_tokens":1,"messages":[]}"#))
        #expect(wire.model == "claude")
        #expect(String(buffer: wire.upstreamBody(model: "m2")) == #"{"model":"m2","max_tokens":1,"messages":[]}"#)
    }

    /// The scan declines whatever it cannot vouch for; the full decoder then has the last word.
    @Test(arguments: [
        #"{"model":"a","model":"b","max_tokens":1,"messages":[]}"#,
        #"{"model":"a","max_tokens":1,"stream":false,"stream":true,"messages":[]}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"metadata":{"user_id":"u","user_id":"v"}}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"metadata":{"user_id":"u"},"metadata":{}}"#,
        #"{"mod\u0065l":"b","model":"a","max_tokens":1,"messages":[]}"#,
        #"{"model":"a","max_tokens":1,"messages":[]"#,
        #"{"model":"a","max_tokens":1,"messages":[]} x"#,
        #"{"model":"a","max_tokens":1,"messages":[],}"#,
        #"{"max_tokens":1,"messages":[]}"#,
        #"{"model":"","max_tokens":1,"messages":[]}"#,
        #"{"model":7,"max_tokens":1,"messages":[]}"#,
        #"{"model":"a","messages":[]}"#,
        #"{"model":"a","max_tokens":0,"messages":[]}"#,
        #"{"model":"a","max_tokens":1.5,"messages":[]}"#,
        #"{"model":"a","max_tokens":1}"#,
        #"{"model":"a","max_tokens":1,"messages":{}}"#,
        #"{"model":"a","max_tokens":1,"stream":"yes","messages":[]}"#,
        #"{"model":"a","max_tokens":1,"temperature":1e2,"messages":[]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"system","content":"x"}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user"}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":null}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f"}]}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text"}]}]}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":[{"type":"t\u0065xt"}]}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"tools":[{"description":"no name"}]}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"tool_choice":{"type":"tool"}}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"tool_choice":{"type":"maybe"}}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"metadata":{"user_id":5}}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"system":{"type":"text"}}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"stop_sequences":["a",1]}"#,
        #"{"model":"a","max_tokens":1,"messages":[],"future":{"a":[1e999]}}"#,
        #"[1]"#, "",
    ])
    func declines(json: String) {
        #expect(Self.scan(json) == nil)
    }

    /// Whatever the scan accepts, the full decoder accepts and reads the same way.
    @Test(arguments: [
        #"{"model":"a","max_tokens":1,"messages":[]}"#,
        #"{"messages":[{"role":"user","content":"hi"}],"stream":null,"max_tokens":9,"model":"b","metadata":null}"#,
        #"{"model":"a","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}],"metadata":{"user_id":null}}"#,
        #"{"model":"a","max_tokens":1,"system":"s","temperature":0.5,"top_p":null,"stop_sequences":null,"tools":null,"tool_choice":{"type":"tool","name":"f"},"messages":[]}"#,
    ])
    func agreesWithDecoder(json: String) throws {
        let wire = try #require(Self.scan(json))
        let decoded = try AnthropicIngress.decode(Array(json.utf8))
        #expect(wire.model == decoded.model)
        #expect(wire.isStreaming == (decoded.stream ?? false))
        #expect(wire.userID == decoded.metadata?.userID)
        #expect(wire.messageCount == decoded.messages.count)
    }
}
