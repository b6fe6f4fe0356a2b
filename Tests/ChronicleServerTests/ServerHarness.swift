import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleTesting
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing
import Tracing
import ChronicleStorage

/// The upstream client tests share, configured as the gateway configures its own; never shut down.
let upstreamClient = HTTPClient(eventLoopGroup: .singletonMultiThreadedEventLoopGroup,
                                configuration: Gateway.defaultHTTPConfiguration)

/// A Chronicle server on a loopback port, for tests over real sockets.
struct RunningServer {
    let port: Int
    let gateway: Gateway
    let log: InMemoryLog
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let access: AccessControl

    var base: String { "http://127.0.0.1:\(port)" }

    static func start(configuration: GatewayConfiguration, maxBodySize: Int = 20 * 1024 * 1024,
                      sink: (any LogSink)? = nil, reader: (any LogReader)? = nil, services: [any Service] = [],
                      security: SecuritySettings = SecuritySettings(), tracer: (any Tracer)? = nil,
                      metrics: ServerMetrics? = nil, redactor: SecretRedactor? = nil, logger: Logger? = nil,
                      now: (@Sendable () -> ContinuousClock.Instant)? = nil, agentSessions: Bool = true,
                      cost: CostTracker? = nil, liveCalls: LiveCallFeed = LiveCallFeed())
        async throws -> RunningServer
    {
        let log = InMemoryLog()
        var security = security
        security.limits.maxBodySize = maxBodySize
        let access = now.map { AccessControl(settings: security, now: $0) } ?? AccessControl(settings: security)
        var builder = Gateway.Builder().withHTTPClient(upstreamClient).withConfiguration(configuration)
            .withLogSink(sink ?? log).chargingTokens(to: access)
        if let cost { builder = builder.trackingCost(cost) }
        if let tracer { builder = builder.withTracer(tracer) }
        if let metrics { builder = builder.withMetricsFactory(metrics.factory) }
        if let redactor { builder = builder.withRedactor(redactor) }
        var quiet = Logger(label: "test-server")
        quiet.logLevel = .critical
        let logger = logger ?? quiet
        let gateway = try builder.withLogger(logger).build()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = ChronicleApplication.make(
            gateway: gateway, access: access,
            options: .init(reader: reader, tracer: tracer ?? NoOpTracer(), metrics: metrics, agentSessions: agentSessions,
                           cost: cost, liveCalls: liveCalls),
            host: "127.0.0.1", port: 0, services: services, logger: logger,
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        return RunningServer(port: port, gateway: gateway, log: log, group: group, task: task, access: access)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        // The server finishes every call itself; none may be left to the release safety net.
        #expect(gateway.callsFinishedOnRelease == 0, "every server call is finished explicitly")
    }

    /// Sends a request and returns the status, headers and whole body.
    func send(_ path: String, method: HTTPMethod = .POST, body: String? = nil, headers: [(String, String)] = [])
        async throws -> (status: Int, headers: HTTPHeaders, body: String)
    {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "content-type", value: "application/json")
        // No keep-alive: test servers come and go on recycled ports, and a pooled connection to a stopped
        // server that is still draining would carry this request to the wrong server.
        request.headers.add(name: "connection", value: "close")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return (Int(response.status.code), response.headers, String(buffer: bytes))
    }

    func json(_ path: String, method: HTTPMethod = .POST, body: String? = nil, headers: [(String, String)] = [])
        async throws -> (status: Int, headers: HTTPHeaders, json: JSONValue)
    {
        let response = try await send(path, method: method, body: body, headers: headers)
        let value = try JSONCoding.decode(JSONValue.self, from: Array(response.body.utf8))
        return (response.status, response.headers, value)
    }

    /// Records to the in-memory log and to another sink.
    struct Tee: LogSink {
        let first: InMemoryLog
        let second: any LogSink
        func record(_ entry: LogEntry) {
            first.record(entry)
            second.record(entry)
        }
    }

    /// Waits until the log has `count` records (records land when the response stream ends).
    func records(_ count: Int, within limit: Duration = .seconds(5)) async throws -> [CallLogRecord] {
        let deadline = ContinuousClock.now + limit
        while log.records.count < count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        return log.records
    }
}

/// The `data:` payloads of an SSE body, and the names of any named events.
func sseEvents(_ body: String) -> [(event: String?, data: String)] {
    var parser = ServerSentEventParser()
    let events = ((try? parser.parse(Array(body.utf8))) ?? []) + parser.finish()
    return events.map { ($0.event, $0.dataString) }
}

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/providers")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }
}
