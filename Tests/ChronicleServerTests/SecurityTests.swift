import AsyncHTTPClient
import ChronicleCore
@testable import ChronicleServer
import ChronicleTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@Suite("Security: keys, limits, allow-lists, CORS, slow clients")
struct SecurityTests {
    let textRequest = #"{"model":"up/gpt","messages":[{"role":"user","content":"Who was Lassie?"}]}"#

    func configuration(_ upstream: MockUpstream) -> GatewayConfiguration {
        GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream", prefix: "up/")],
            retry: RetryOptions(maxTries: 1))
    }

    static func okReply() throws -> MockUpstream.Reply {
        .json(try Fixtures.text("openai_text_response_nonstreaming.json"))
    }

    /// Gateway keys by `Authorization: Bearer` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs); the key's name
    /// is recorded with the call, never the key; health checks stay open.
    @Test func gatewayKeys() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "team-a", key: "key-a-0123456789"),
                                GatewayKeyConfig(name: "team-b", key: "key-b-0123456789")]
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security)

        let missing = try await server.json("/v1/chat/completions", body: textRequest)
        #expect(missing.status == 401)
        #expect(missing.json["error"]?["kind"] == "missing_gateway_key")
        #expect(missing.headers.first(name: "www-authenticate") == "Bearer")
        let wrong = try await server.json("/v1/chat/completions", body: textRequest,
                                          headers: [("authorization", "Bearer key-a-01234567890")])
        #expect(wrong.status == 401)
        #expect(wrong.json["error"]?["kind"] == "invalid_gateway_key")
        #expect(upstream.requests.isEmpty, "nothing reaches the provider without a valid key")

        let bearer = try await server.send("/v1/chat/completions", body: textRequest,
                                           headers: [("authorization", "Bearer key-b-0123456789")])
        #expect(bearer.status == 200)
        let apiKey = try await server.send("/v1/chat/completions", body: textRequest,
                                           headers: [("x-api-key", "key-a-0123456789")])
        #expect(apiKey.status == 200)
        let records = try await server.records(2)
        #expect(records.map(\.options.internalMetadata.gatewayKey) == ["team-b", "team-a"])
        // Events need a key too; health does not.
        #expect(try await server.send("/v1/events", body: #"{"events":[]}"#).status == 401)
        #expect(try await server.send("/healthz", method: .GET).status == 200)
        await server.stop()
        await upstream.stop()
    }

    /// Read APIs and metrics take the admin key when one is set; a plain gateway key is refused.
    @Test func adminKey() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "app", key: "app-key-0123456789")]
        security.adminKeyDigest = KeyDigest(of: "admin-key-0123456789")
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security,
                                                   metrics: ServerMetrics())
        let asApp = try await server.json("/metrics", method: .GET, headers: [("authorization", "Bearer app-key-0123456789")])
        #expect(asApp.status == 403)
        #expect(asApp.json["error"]?["kind"] == "admin_key_required")
        #expect(try await server.send("/metrics", method: .GET).status == 401)
        let asAdmin = try await server.send("/metrics", method: .GET, headers: [("x-api-key", "admin-key-0123456789")])
        #expect(asAdmin.status == 200)
        #expect(asAdmin.body.contains("chronicle_"))
        await server.stop()
        await upstream.stop()
    }

    /// Requests per minute: the next request over the budget is a 429 with `Retry-After`, until time passes.
    @Test func requestsPerMinute() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        let clock = TestInstant()
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "small", key: "small-key-0123456789", requestsPerMinute: 2)]
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security,
                                                   now: clock.now)
        let auth = [("authorization", "Bearer small-key-0123456789")]
        for _ in 0..<2 { #expect(try await server.send("/v1/chat/completions", body: textRequest, headers: auth).status == 200) }
        let limited = try await server.json("/v1/chat/completions", body: textRequest, headers: auth)
        #expect(limited.status == 429)
        #expect(limited.json["error"]?["kind"] == "gateway_rate_limit")
        #expect(limited.headers.first(name: "retry-after") == "30")
        clock.advance(.seconds(30))
        #expect(try await server.send("/v1/chat/completions", body: textRequest, headers: auth).status == 200)
        #expect(upstream.requests.count == 3)
        await server.stop()
        await upstream.stop()
    }

    /// Tokens per minute are charged when a call finishes; a key in debt waits until it is paid back.
    @Test func tokensPerMinute() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        let clock = TestInstant()
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "tokens", key: "tok-key-0123456789", tokensPerMinute: 60)]
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security,
                                                   now: clock.now)
        let auth = [("authorization", "Bearer tok-key-0123456789")]
        #expect(try await server.send("/v1/chat/completions", body: textRequest, headers: auth).status == 200)
        _ = try await server.records(1)
        // The fixture used 112 tokens: 52 in debt at 1 token a second means 53 seconds to a positive budget.
        let limited = try await server.json("/v1/chat/completions", body: textRequest, headers: auth)
        #expect(limited.status == 429)
        #expect(limited.headers.first(name: "retry-after") == "53")
        clock.advance(.seconds(53))
        #expect(try await server.send("/v1/chat/completions", body: textRequest, headers: auth).status == 200)
        await server.stop()
        await upstream.stop()
    }

    /// Concurrent requests: per key (429) and overall (503); a finished stream frees its slot.
    @Test func concurrency() async throws {
        let hanging = MockUpstream.Reply(headers: [("content-type", "text/event-stream")], body: .partsThenHang([
            Array("data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n".utf8),
        ]))
        let upstream = try await MockUpstream.start(hanging)
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "one", key: "one-key-0123456789", maxConcurrentRequests: 1),
                                GatewayKeyConfig(name: "two", key: "two-key-0123456789")]
        security.limits.maxConcurrentRequests = 2
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security)
        let stream = #"{"model":"up/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        // A client dropped without shutting it down stops the process: shut it down however this ends.
        do {
            func open(_ key: String) async throws -> HTTPClientResponse {
                var request = HTTPClientRequest(url: server.base + "/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "authorization", value: "Bearer \(key)")
                request.body = .bytes(ByteBuffer(string: stream))
                return try await client.execute(request, timeout: .seconds(10))
            }
            let first = try await open("one-key-0123456789")
            #expect(first.status == .ok)
            let sameKey = try await server.json("/v1/chat/completions", body: stream,
                                                headers: [("authorization", "Bearer one-key-0123456789")])
            #expect(sameKey.status == 429)
            #expect(sameKey.headers.first(name: "retry-after") != nil)
            let second = try await open("two-key-0123456789")
            #expect(second.status == .ok)
            let overall = try await server.json("/v1/chat/completions", body: stream,
                                                headers: [("authorization", "Bearer two-key-0123456789")])
            #expect(overall.status == 503)
            #expect(overall.json["error"]?["kind"] == "overloaded")
            #expect(server.access.inFlight == 2)
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
        for _ in 0..<300 where server.access.inFlight > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.access.inFlight == 0, "disconnected streams release their slots")
        await server.stop()
        await upstream.stop()
    }

    /// `override_url` is refused by default and allowed only inside the allow-list, body or header.
    @Test func overrideURLAllowList() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        let closed = try await RunningServer.start(configuration: configuration(upstream))
        let body = #"{"model":"up/m","override_url":"\#(upstream.url())","messages":[{"role":"user","content":"hi"}]}"#
        let refused = try await closed.json("/v1/chat/completions", body: body)
        #expect(refused.status == 403)
        #expect(refused.json["error"]?["kind"] == "override_url_not_allowed")
        let header = try await closed.json("/v1/chat/completions", body: textRequest,
                                           headers: [("x-chronicle-override-url", "http://169.254.169.254/latest")])
        #expect(header.status == 403)
        await closed.stop()

        var security = SecuritySettings()
        security.overrideURLAllowList = ["http://127.0.0.1:\(upstream.port)/v1/"]
        let open = try await RunningServer.start(configuration: configuration(upstream), security: security)
        #expect(try await open.send("/v1/chat/completions", body: body).status == 200)
        #expect(upstream.requests.count == 1)
        await open.stop()
        await upstream.stop()

        let policy = OverrideURLPolicy(allowList: ["https://proxy.internal/v1", "http://10.0.0.5:8080/"])
        #expect(policy.allows("https://proxy.internal/v1/chat/completions"))
        #expect(policy.allows("https://PROXY.internal:443/v1"))
        #expect(policy.allows("http://10.0.0.5:8080/anything"))
        #expect(!policy.allows("https://proxy.internal/v10/chat"))
        #expect(!policy.allows("https://proxy.internal.evil.com/v1/chat"))
        #expect(!policy.allows("https://proxy.internal@evil.com/v1/chat"))
        #expect(!policy.allows("https://user:pw@proxy.internal/v1/chat"))
        #expect(!policy.allows("https://proxy.internal/v1/../admin"))
        #expect(!policy.allows("https://proxy.internal/v1/%2e%2e/admin"))
        #expect(!policy.allows("http://proxy.internal/v1/chat"))
        #expect(!policy.allows("https://proxy.internal:8443/v1/chat"))
        #expect(!policy.allows("http://10.0.0.5:8081/"))
        #expect(!policy.allows("file:///etc/passwd"))
        #expect(!policy.allows("not a url"))
    }

    /// Client-supplied provider keys can be turned off.
    @Test func clientProviderKeysDisabled() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        var security = SecuritySettings()
        security.allowClientProviderKeys = false
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security)
        let body = #"{"model":"up/m","api_key":"sk-mine-0123456789","messages":[{"role":"user","content":"hi"}]}"#
        let inBody = try await server.json("/v1/chat/completions", body: body)
        #expect(inBody.status == 403)
        #expect(inBody.json["error"]?["kind"] == "client_provider_keys_disabled")
        let inHeader = try await server.json("/v1/chat/completions", body: textRequest,
                                             headers: [("x-chronicle-provider-api-key", "sk-mine-0123456789")])
        #expect(inHeader.status == 403)
        #expect(try await server.send("/v1/chat/completions", body: textRequest).status == 200)
        await server.stop()
        await upstream.stop()
    }

    /// Size limits answer their own JSON errors: 413 for bodies and message counts, 431 for headers.
    @Test func sizeLimits() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        var security = SecuritySettings()
        security.limits.maxHeaderSize = 4096
        security.limits.maxMessages = 3
        let server = try await RunningServer.start(configuration: configuration(upstream), maxBodySize: 10_000,
                                                   security: security)
        let headers = try await server.json("/v1/chat/completions", body: textRequest,
                                            headers: [("x-padding", String(repeating: "a", count: 5000))])
        #expect(headers.status == 431)
        #expect(headers.json["error"]?["kind"] == "headers_too_large")
        let messages = (0..<4).map { _ in #"{"role":"user","content":"hi"}"# }.joined(separator: ",")
        let tooMany = try await server.json("/v1/chat/completions", body: #"{"model":"up/m","messages":[\#(messages)]}"#)
        #expect(tooMany.status == 413)
        #expect(tooMany.json["error"]?["kind"] == "too_many_messages")
        let big = #"{"model":"up/m","messages":[{"role":"user","content":"\#(String(repeating: "x", count: 20_000))"}]}"#
        let large = try await server.json("/v1/chat/completions", body: big)
        #expect(large.status == 413)
        #expect(large.json["error"]?["kind"] == "body_too_large")
        #expect(upstream.requests.isEmpty)
        await server.stop()
        await upstream.stop()
    }

    /// CORS is off by default; configured origins get preflight answers and `Access-Control-Allow-Origin`.
    @Test func cors() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        let closed = try await RunningServer.start(configuration: configuration(upstream))
        let plain = try await closed.send("/v1/chat/completions", body: textRequest, headers: [("origin", "https://app.example")])
        #expect(plain.headers.first(name: "access-control-allow-origin") == nil)
        await closed.stop()

        var security = SecuritySettings()
        security.corsOrigins = ["https://app.example"]
        security.gatewayKeys = [GatewayKeyConfig(name: "web", key: "web-key-0123456789")]
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security)
        let preflight = try await server.send("/v1/chat/completions", method: .OPTIONS, headers: [
            ("origin", "https://app.example"), ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization, content-type"),
        ])
        #expect(preflight.status == 204)
        #expect(preflight.headers.first(name: "access-control-allow-origin") == "https://app.example")
        #expect(preflight.headers.first(name: "access-control-allow-headers") == "authorization, content-type")
        let allowed = try await server.send("/v1/chat/completions", body: textRequest, headers: [
            ("origin", "https://app.example"), ("authorization", "Bearer web-key-0123456789"),
        ])
        #expect(allowed.status == 200)
        #expect(allowed.headers.first(name: "access-control-allow-origin") == "https://app.example")
        #expect(allowed.headers.first(name: "access-control-expose-headers")?.contains("x-chronicle-overhead-ms") == true)
        let denied = try await server.send("/v1/chat/completions", body: textRequest, headers: [("origin", "https://app.example")])
        #expect(denied.status == 401)
        #expect(denied.headers.first(name: "access-control-allow-origin") == "https://app.example",
                "browsers can read the error")
        let other = try await server.send("/v1/chat/completions", method: .OPTIONS, headers: [
            ("origin", "https://evil.example"), ("access-control-request-method", "POST"),
        ])
        #expect(other.headers.first(name: "access-control-allow-origin") == nil)
        await server.stop()
        await upstream.stop()
    }

    /// Slowloris: a client that never finishes its headers is disconnected after the header timeout.
    @Test func slowHeadersAreCut() async throws {
        let upstream = try await MockUpstream.start(try Self.okReply())
        var security = SecuritySettings()
        security.limits.headerReadTimeout = .seconds(1)
        security.limits.bodyReadTimeout = .seconds(1)
        let server = try await RunningServer.start(configuration: configuration(upstream), security: security)
        // A loaded test run may resume this task after the server already cut the connection: a send that
        // finds it closed has seen what the test is about.
        let headersOnly = try await RawClient.connect(port: server.port)
        try? await headersOnly.send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ")
        #expect(try await headersOnly.waitForClose(within: .seconds(5)), "the server closes a slow header")
        // A body that never completes is cut the same way.
        let slowBody = try await RawClient.connect(port: server.port)
        try? await slowBody.send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"model\"")
        #expect(try await slowBody.waitForClose(within: .seconds(5)))
        #expect(upstream.requests.isEmpty)
        await server.stop()
        await upstream.stop()
    }

    /// A client that stops reading a stream is disconnected once writes stall, which cancels the upstream
    /// stream and records the call as cancelled.
    @Test func stalledReaderIsCut() async throws {
        let chunk = "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(String(repeating: "x", count: 16_000))\"}}]}\n\n"
        let count = 4000
        // An upstream that writes its stream as fast as the gateway reads it, and tells when its
        // connection is closed: the abort is seen on the socket, however loaded the machine is.
        let upstream = try await RawUpstream.start(.eventStream(event: Array(chunk.utf8), count: count))
        var security = SecuritySettings()
        security.limits.clientWriteTimeout = .milliseconds(300)
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream", prefix: "up/")],
                retry: RetryOptions(maxTries: 1)),
            security: security)
        let client = try await RawClient.connect(port: server.port, receiveBuffer: 4096)
        let body = #"{"model":"up/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        try await client.send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)")
        // Never read: the server's socket buffer fills, writes stall, the guard closes the connection.
        let record = try #require(try await server.records(1, within: .seconds(30)).first)
        #expect(record.error?.kind == "cancelled")
        // Deadlines, not waits: each loop ends as soon as what it waits for is seen.
        for _ in 0..<1000 where upstream.closedRequests == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.closedRequests == 1, "the upstream connection is closed")
        #expect(upstream.bodyBytesWritten < chunk.utf8.count * count, "the upstream stream was cut short")
        // The upstream is aborted as soon as the client goes; the stalled write fails a moment later.
        for _ in 0..<1000 where server.access.inFlight != 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.access.inFlight == 0)
        await client.close()
        await server.stop()
        await upstream.stop()
    }

    /// Start-up refuses to expose an unauthenticated gateway beyond loopback unless told to.
    @Test func exposureCheck() throws {
        var settings = ServerSettings()
        settings.host = "0.0.0.0"
        let logger = Logger(label: "test")
        #expect(throws: ConfigurationError.self) { try ChronicleServer.checkExposure(settings, logger: logger) }
        settings.security.allowUnauthenticated = true
        try ChronicleServer.checkExposure(settings, logger: logger)
        settings.security.allowUnauthenticated = false
        settings.security.gatewayKeys = [GatewayKeyConfig(name: "k", key: "k-0123456789")]
        try ChronicleServer.checkExposure(settings, logger: logger)
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"] {
            var local = ServerSettings()
            local.host = host
            try ChronicleServer.checkExposure(local, logger: logger)
        }
    }

    /// Keys and security settings from `chronicle.toml` and the environment.
    @Test func configuration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-security-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  // sha256("test")
        try """
            [[gateway_keys]]
            name = "literal"
            key = "literal-key-0123"
            requests_per_minute = 100
            tokens_per_minute = 50000
            max_concurrent_requests = 4

            [[gateway_keys]]
            name = "from-env"
            key_env = "TEAM_KEY"

            [[gateway_keys]]
            name = "hashed"
            key_sha256 = "\(digest)"

            [security]
            admin_key_env = "ADMIN_KEY"
            override_url_allowlist = ["https://proxy.internal/v1"]
            allow_client_provider_keys = false
            cors_origins = ["https://app.example"]

            [limits]
            max_header_size = 8192
            max_messages = 50
            header_read_timeout = "5s"
            """.write(to: directory.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)
        let environment: [String: String] = [
            "TEAM_KEY": "team-key-0123", "ADMIN_KEY": "admin-0123456789",
            "CHRONICLE_GATEWAY_KEYS": "ci:ci-key-0123, bare-key-0123",
        ]
        let settings = try ServerSettings.load(overrides: .init(configPath: directory.path, loadDotenv: false),
                                               environment: { environment[$0] })
        let security = settings.security
        #expect(security.gatewayKeys.map(\.name) == ["literal", "from-env", "hashed", "ci", "key-2"])
        #expect(security.gatewayKeys[0].requestsPerMinute == 100)
        #expect(security.gatewayKeys[0].tokensPerMinute == 50000)
        #expect(security.gatewayKeys[0].maxConcurrentRequests == 4)
        let access = AccessControl(settings: security)
        #expect(access.matchKey("team-key-0123", in: access.gatewayKeys)?.name == "from-env")
        #expect(access.matchKey("test", in: access.gatewayKeys)?.name == "hashed")
        #expect(access.matchKey("bare-key-0123", in: access.gatewayKeys)?.name == "key-2")
        #expect(access.matchKey("nope", in: access.gatewayKeys) == nil)
        #expect(security.adminKeyDigest == KeyDigest(of: "admin-0123456789"))
        #expect(security.overrideURLAllowList == ["https://proxy.internal/v1"])
        #expect(!security.allowClientProviderKeys)
        #expect(security.corsOrigins == ["https://app.example"])
        #expect(security.limits.maxHeaderSize == 8192)
        #expect(security.limits.maxMessages == 50)
        #expect(security.limits.headerReadTimeout == .seconds(5))

        try """
            [[gateway_keys]]
            name = "missing"
            key_env = "UNSET_VARIABLE"
            """.write(to: directory.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) {
            try ServerSettings.load(overrides: .init(configPath: directory.path, loadDotenv: false), environment: { _ in nil })
        }
        try """
            [[gateway_keys]]
            name = "twice"
            key = "a-0123456789"
            [[gateway_keys]]
            name = "twice"
            key = "b-0123456789"
            """.write(to: directory.appendingPathComponent("chronicle.toml"), atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) {
            try ServerSettings.load(overrides: .init(configPath: directory.path, loadDotenv: false), environment: { _ in nil })
        }
    }
}

/// A clock for rate limits that tests move by hand.
final class TestInstant: Sendable {
    private let offset = NIOLockedValueBox(Duration.zero)
    private let start = ContinuousClock.now

    var now: @Sendable () -> ContinuousClock.Instant {
        { [self] in start + offset.withLockedValue { $0 } }
    }

    func advance(_ duration: Duration) { offset.withLockedValue { $0 += duration } }
}

/// A raw TCP client, for clients that misbehave below HTTP (slow headers, never reading).
final class RawClient: Sendable {
    let channel: any Channel
    let closed: EventLoopFuture<Void>

    static func connect(port: Int, receiveBuffer: Int? = nil) async throws -> RawClient {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBuffer {
            // A small window and no reads: the server's writes stall quickly.
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
                .channelOption(.autoRead, value: false)
        }
        let channel = try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel)
    }

    init(channel: any Channel) {
        self.channel = channel
        self.closed = channel.closeFuture
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Whether the server closed the connection within `limit`.
    func waitForClose(within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if !channel.isActive { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return !channel.isActive
    }

    func close() async {
        try? await channel.close()
    }
}
