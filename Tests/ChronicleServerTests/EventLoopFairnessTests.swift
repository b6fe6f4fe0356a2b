import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleTesting
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Calls run on their connection's event loop, so a call doing a lot of work must not keep the loop from
/// the other connections it serves.
@Suite("Event loop fairness")
struct EventLoopFairnessTests {
    /// An Anthropic stream of many thousand events, translated chunk by chunk into OpenAI's format (the most
    /// CPU a call spends on the loop), does not hold up short calls on other connections: every one of them
    /// is answered while the long stream is still running. The server has two loops and the short calls
    /// come on fresh connections, so half of them share the long stream's loop.
    @Test func translatedStreamLeavesTheLoopToOthers() async throws {
        let events = try longAnthropicStream(deltas: 100_000)
        let slowUpstream = try await MockUpstream.start(.sse(events))
        let fastUpstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [
                CustomProviderConfig(name: "long", url: slowUpstream.url("/v1/messages"), apiKey: "sk-a",
                                     format: .anthropic, prefix: "long/"),
                CustomProviderConfig(name: "short", url: fastUpstream.url(), apiKey: "sk-b", prefix: "short/"),
            ],
            retry: RetryOptions(maxTries: 1)))

        let streamEnded = NIOLockedValueBox(false)
        let longCall = Task {
            defer { streamEnded.withLockedValue { $0 = true } }
            return try await server.send("/v1/chat/completions", body:
                #"{"model":"long/claude","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#)
        }
        // Wait until the long stream has begun relaying, so that the short calls overlap it.
        for _ in 0..<500 where slowUpstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
        var answeredDuringStream = 0
        for _ in 0..<4 {
            let short = try await server.send("/v1/chat/completions", body:
                #"{"model":"short/gpt","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(short.status == 200)
            if !streamEnded.withLockedValue({ $0 }) { answeredDuringStream += 1 }
        }
        let long = try await longCall.value
        #expect(long.status == 200)
        #expect(long.body.hasSuffix("data: [DONE]\n\n"))
        #expect(sseEvents(long.body).count > 100_000, "the whole stream was relayed")
        #expect(answeredDuringStream == 4, "short calls waited for the long stream to end")
        await server.stop()
        await slowUpstream.stop()
        await fastUpstream.stop()
    }

    /// A recorded Anthropic stream with its one text delta repeated `deltas` times.
    private func longAnthropicStream(deltas: Int) throws -> String {
        let recorded = try Fixtures.text("anthropic_text_response_streaming.txt")
        let blocks = recorded.components(separatedBy: "\n\n")
        guard let delta = blocks.first(where: { $0.contains("content_block_delta") }),
              let firstDelta = blocks.firstIndex(of: delta)
        else { throw CocoaError(.fileReadCorruptFile) }
        let before = blocks[..<firstDelta].joined(separator: "\n\n")
        let after = blocks[firstDelta...].filter { !$0.contains("content_block_delta") }.joined(separator: "\n\n")
        return before + "\n\n" + String(repeating: delta + "\n\n", count: deltas) + after
    }
}
