@testable import ChronicleCore
import Foundation
import Testing

/// What the relay path reads from OpenAI-format answers without decoding them, checked against the decoder.
@Suite struct WireChatSummaryTests {
    static let streams = ["openai_text_response_streaming.txt", "openai_tools_response_streaming.txt",
                          "groq_text_response_streaming.txt", "groq_tools_response_streaming.txt"]

    /// The JSON of each `data:` line of a recorded stream, `[DONE]` left out.
    static func chunks(_ name: String) throws -> [[UInt8]] {
        try Fixtures.text(name).split(separator: "\n").compactMap { line in
            guard line.hasPrefix("data: "), !line.hasSuffix("[DONE]") else { return nil }
            return Array(line.dropFirst(6).utf8)
        }
    }

    /// Every recorded chunk's summary agrees with the decoded chunk; folding the kept bytes gives the same
    /// response as folding the decoded chunks.
    @Test(arguments: streams) func chunksAgreeWithDecoder(name: String) throws {
        var folded = ResponseCollector()
        var fromSummaries = ResponseCollector()
        for bytes in try Self.chunks(name) {
            let decoded = try JSONCoding.decode(ChatChunk.self, from: bytes)
            folded.add(decoded)
            // Groq's usage rides in `x_groq`: those chunks are left to the decoder.
            guard let summary = ChatChunk.summary(of: bytes) else {
                #expect(String(decoding: bytes, as: UTF8.self).contains("x_groq"))
                fromSummaries.add(decoded)
                continue
            }
            #expect(summary.isSummary)
            #expect(summary.choices.isEmpty)
            #expect(summary.id == decoded.id)
            #expect(summary.model == decoded.model)
            #expect(summary.created == decoded.created)
            #expect(summary.usage == decoded.usage)
            #expect(summary.isUsageOnly == (decoded.choices.isEmpty && decoded.usage != nil))
            #expect(try summary.decoded() == decoded)
            fromSummaries.add(summary)
        }
        #expect(fromSummaries.collected == folded.collected)
        #expect(fromSummaries.chunkCount == folded.chunkCount)
    }

    /// A complete response's summary carries its usage, and decodes to the same response.
    @Test func responseSummary() throws {
        let bytes = Array(try Fixtures.text("openai_tools_response_nonstreaming.json").utf8)
        let summary = try #require(ChatResponse.summary(of: bytes))
        let decoded = try JSONCoding.decode(ChatResponse.self, from: bytes)
        #expect(summary.usage == decoded.usage)
        #expect(summary.model == decoded.model)
        #expect(summary.choices.isEmpty)
        #expect(try summary.decoded() == decoded)
    }

    /// Usage with provider details is read exactly as the decoder reads it, without the decoder.
    @Test(arguments: [
        #"{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2},"cost":1.5,"big":1e3,"name":"x\u00e9","flags":[true,null]}"#,
        #"{"prompt_tokens":null,"completion_tokens":4}"#, #"{}"#,
    ])
    func usageMatchesDecoder(usage: String) throws {
        let bytes = Array(#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":\#(usage)}"#.utf8)
        let summary = try #require(ChatChunk.summary(of: bytes))
        #expect(summary.usage == (try JSONCoding.decode(ChatChunk.self, from: bytes)).usage)
    }

    /// What the gateway must act on, or cannot vouch for, is left to the full decoder.
    @Test func unusualAnswersFallBack() {
        let head = #""id":"c1","object":"chat.completion.chunk","created":1,"model":"m""#
        let declined = [
            #"{\#(head),"choices":[],"error":{"message":"overloaded"}}"#,
            #"{\#(head),"choices":[],"meta":{"id":"x"}}"#,
            #"{\#(head),"choices":[],"x_groq":{"usage":{"prompt_tokens":1}}}"#,
            #"{"object":"chat.completion.chunk","created":1,"model":"m","choices":[]}"#,
            #"{\#(head),"choices":{}}"#, #"{\#(head),"choices":[],"usage":5}"#,
            #"{\#(head),"choices":[],"usage":{"prompt_tokens":"many"}}"#, #"{\#(head),"choices":[],"usage":{"total_tokens":1.5}}"#,
            #"{"id":"c1","object":"chat.completion.chunk","created":1.5,"model":"m","choices":[]}"#,
            #"{\#(head),"id":"c2","choices":[]}"#, #"{\#(head),"choices":[]"#, "[]",
            #"{\#(head),"system_fingerprint":[1],"choices":[]}"#,
        ]
        for text in declined { #expect(ChatChunk.summary(of: Array(text.utf8)) == nil, "\(text)") }
        #expect(ChatChunk.summary(of: Array(#"{\#(head),"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#.utf8))?
            .isUsageOnly == true)
    }

    /// A call whose answer was relayed keeps the upstream's bytes and reads back the whole response.
    @Test func relayedRecordReadsBack() throws {
        let chunks = try Self.chunks("openai_tools_response_streaming.txt")
        var record = CallLogRecord(id: UUID(), timestamp: Date(), request: .typed(ChatRequest(messages: [])),
                                   options: RequestOptions(), totalLatency: .zero)
        var summary = ChatResponse(id: "c1", model: "m", usage: Usage(promptTokens: 1))
        summary.isSummary = true
        record.setRelayed(.chunks(chunks), summary: summary)
        var collector = ResponseCollector()
        for bytes in chunks { collector.add(try JSONCoding.decode(ChatChunk.self, from: bytes)) }
        #expect(record.response == collector.collected)
        #expect(record.usage == Usage(promptTokens: 1))
        #expect(record.responseModel == "m")
        record.response = nil
        #expect(record.relayedResponse == nil)
        #expect(record.response == nil)
    }
}
