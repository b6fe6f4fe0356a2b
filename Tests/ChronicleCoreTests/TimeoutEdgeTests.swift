import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Testing

@Suite("Timeout edge cases")
struct TimeoutEdgeTests {
    /// A zero or tiny timeout fails cleanly with a timeout error, never a crash.
    @Test(arguments: [0, 1, 2])
    func tinyTimeouts(milliseconds: Int) async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let config = GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withRetryFree().build()
        for _ in 0..<20 {
            do {
                _ = try await gateway.send(request("p/m"), options: RequestOptions(timeout: .milliseconds(milliseconds))).collect()
            } catch let GatewayError.provider(error, _, _, _) {
                #expect(error.kind == .timeout)
            }
        }
        await upstream.stop()
    }
}

extension Gateway.Builder {
    /// Real clock, no retries: each send is one attempt.
    func withRetryFree() -> Gateway.Builder {
        withConfiguration(GatewayConfiguration(retry: RetryOptions(maxTries: 1)))
    }
}
