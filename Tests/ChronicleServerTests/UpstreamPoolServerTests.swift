import ChronicleCore
import ChronicleTesting
import NIOPosix
import Testing

/// The pooled transport behind the real server: each request runs on its connection's event loop and
/// uses that loop's pool, so sequential calls share at most one upstream connection per loop.
@Suite("Pooled upstream connections behind the server")
struct UpstreamPoolServerTests {
    @Test func sequentialRequestsReusePooledConnections() async throws {
        let answer = try Fixtures.text("openai_text_response_nonstreaming.json")
        let upstream = try await RawUpstream.start(.keepAlive([.respond(RawUpstream.okResponse(answer))]))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [CustomProviderConfig(name: "p", url: upstream.url(), apiKey: "sk-p", prefix: "p/")]))
        let calls = 12
        for _ in 0..<calls {
            let response = try await server.json(
                "/v1/chat/completions", body: #"{"model":"p/m","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(response.status == 200)
        }
        #expect(upstream.requests == calls)
        let loops = MultiThreadedEventLoopGroup.singleton.makeIterator().reduce(0) { count, _ in count + 1 }
        #expect(upstream.connections <= loops, "at most one upstream connection per event loop")
        try await server.gateway.shutdown()
        await server.stop()
        for _ in 0..<300 where upstream.closedRequests < upstream.connections { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.closedRequests == upstream.connections, "shutdown closed every pooled connection")
        await upstream.stop()
    }
}
