import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Testing

@Suite("Timeout edge cases")
struct TimeoutEdgeTests {
    /// A zero or tiny timeout fails cleanly with a timeout error, never a crash, a hang or a success: the
    /// upstream never answers, so every call must end in exactly that error.
    @Test(arguments: [0, 1, 2])
    func tinyTimeouts(milliseconds: Int) async throws {
        let upstream = try await MockUpstream.start(MockUpstream.Reply(body: .hang))
        let config = GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withRetryFree().build()
        for _ in 0..<20 {
            let error = await #expect(throws: GatewayError.self) {
                _ = try await gateway.send(request("p/m"), options: RequestOptions(timeout: .milliseconds(milliseconds))).collect()
            }
            guard case .provider(let failure, _, _, _)? = error else {
                Issue.record("expected a provider timeout, got \(String(describing: error))")
                continue
            }
            #expect(failure.kind == .timeout)
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
