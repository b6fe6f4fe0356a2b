import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleTesting
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// When the server hands a call's record over, relative to the client getting its answer.
@Suite("Server call finishing")
struct CallFinishingTests {
    /// A sink that holds each call record until the client has its whole response, or for half a second,
    /// and notes which came first. Holding the server's event loop is the point: while the sink has the
    /// record, the server cannot write anything more.
    final class OrderingSink: LogSink {
        private let clientHasAnswer = NIOLockedValueBox(false)
        private let seen = NIOLockedValueBox<[Bool]>([])

        func record(_ entry: LogEntry) {
            guard case .call = entry else { return }
            // Bounded: with the right order the client cannot finish while this waits.
            let deadline = ContinuousClock.now + .milliseconds(500)
            while !clientHasAnswer.withLockedValue({ $0 }), ContinuousClock.now < deadline { usleep(2000) }
            let answered = clientHasAnswer.withLockedValue { $0 }
            seen.withLockedValue { $0.append(answered) }
        }

        func expectAnswer() { clientHasAnswer.withLockedValue { $0 = false } }
        func clientGotAnswer() { clientHasAnswer.withLockedValue { $0 = true } }
        /// For each record: whether the client already had its whole answer when the sink got it.
        var clientHadAnswer: [Bool] { seen.withLockedValue { $0 } }
    }

    /// The record reaches the sink before the client has the last bytes: before a non-streamed body, and
    /// before a stream's final event. So a client that has its whole answer implies a secured record.
    @Test func recordBeforeLastBytes() async throws {
        let upstream = try await MockUpstream.start(
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .sse(try Fixtures.text("openai_text_response_streaming.txt")))
        let sink = OrderingSink()
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream", prefix: "up/")],
                retry: RetryOptions(maxTries: 1)),
            sink: sink)
        // The client on loops of its own, so that the sink holding a server loop cannot hold it too.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = HTTPClient(eventLoopGroup: group)
        // A client dropped without shutting it down stops the process: shut it down however this ends.
        do {
            for stream in [false, true] {
                sink.expectAnswer()
                var request = HTTPClientRequest(url: server.base + "/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.headers.add(name: "connection", value: "close")
                request.body = .bytes(ByteBuffer(string:
                    #"{"model":"up/gpt","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#))
                let response = try await client.execute(request, timeout: .seconds(30))
                let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                sink.clientGotAnswer()
                #expect(response.status == .ok)
                #expect(stream ? body.hasSuffix("data: [DONE]\n\n") : body.hasSuffix("}"))
            }
            // A record handed over late would still arrive: wait for both before judging the order.
            for _ in 0..<200 where sink.clientHadAnswer.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(sink.clientHadAnswer == [false, false], "the record was handed over before the answer was complete")
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await group.shutdownGracefully()
        await server.stop()
        await upstream.stop()
    }

    /// The same on `/v1/messages`, relayed (the held-back `message_stop` goes out after the record) and
    /// translated (the closing events go out after the record).
    @Test func messagesRecordBeforeLastBytes() async throws {
        let anthropic = try await MockUpstream.start(
            .json(try Fixtures.text("anthropic_text_response_nonstreaming.json")),
            .sse(try Fixtures.text("anthropic_text_response_streaming.txt")))
        let openAI = try await MockUpstream.start(
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .sse(try Fixtures.text("openai_text_response_streaming.txt")))
        let sink = OrderingSink()
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [
                    CustomProviderConfig(name: "ant", url: anthropic.url("/v1/messages"), apiKey: "k", format: .anthropic,
                                         prefix: "ant/"),
                    CustomProviderConfig(name: "oai", url: openAI.url(), apiKey: "k", prefix: "oai/"),
                ],
                retry: RetryOptions(maxTries: 1)),
            sink: sink)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = HTTPClient(eventLoopGroup: group)
        for model in ["ant/claude", "oai/gpt"] {
            for stream in [false, true] {
                sink.expectAnswer()
                var request = HTTPClientRequest(url: server.base + "/v1/messages")
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.headers.add(name: "connection", value: "close")
                request.body = .bytes(ByteBuffer(string:
                    #"{"model":"\#(model)","max_tokens":9,"stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#))
                let response = try await client.execute(request, timeout: .seconds(30))
                // A streamed answer is complete for an Anthropic client once `message_stop` arrives, before
                // the body's own end.
                var body = ""
                for try await part in response.body {
                    body += String(buffer: part)
                    if body.contains("event: message_stop") { sink.clientGotAnswer() }
                }
                sink.clientGotAnswer()
                #expect(response.status == .ok)
                #expect(stream ? body.contains("message_stop") : body.hasSuffix("}"))
            }
        }
        for _ in 0..<200 where sink.clientHadAnswer.count < 4 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(sink.clientHadAnswer == [false, false, false, false],
                "the record was handed over before the answer was complete")
        try await client.shutdown()
        try await group.shutdownGracefully()
        await server.stop()
        await anthropic.stop()
        await openAI.stop()
    }

    /// Every path through the chat route finishes its call itself — success, upstream error, a broken
    /// stream, a rejected request, a client that leaves — and `stop()` checks none was left to the
    /// release safety net.
    @Test func everyPathFinishesExplicitly() async throws {
        let upstream = try await MockUpstream.start(
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .sse(try Fixtures.text("openai_text_response_streaming.txt")),
            .json(#"{"error":{"message":"down"}}"#, status: 503),
            Reply(headers: [("content-type", "text/event-stream")],
                  body: .partsThenHang([Array("data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n".utf8)])))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream", prefix: "up/")],
            retry: RetryOptions(maxTries: 1)))
        let text = #"{"model":"up/gpt","messages":[{"role":"user","content":"hi"}]}"#
        let streamed = #"{"model":"up/gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        #expect(try await server.send("/v1/chat/completions", body: text).status == 200)
        #expect(try await server.send("/v1/chat/completions", body: streamed).status == 200)
        #expect(try await server.send("/v1/chat/completions", body: text).status == 503)
        #expect(try await server.send("/v1/chat/completions", body: "{not json").status == 400)
        // A client that leaves while the upstream is silent.
        let client = try await RawClient.connect(port: server.port)
        try await client.send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: \(streamed.utf8.count)\r\n\r\n\(streamed)")
        for _ in 0..<500 where upstream.requests.count < 4 { try await Task.sleep(for: .milliseconds(10)) }
        await client.close()
        let records = try await server.records(4, within: .seconds(10))
        #expect(records.count == 4)
        #expect(records.last?.httpStatus == 499)
        #expect(server.gateway.callsFinishedOnRelease == 0)
        await server.stop()
        await upstream.stop()
    }
}
