import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// A gateway for client tests, with its upstream, served over a loopback port that can be stopped and served
/// again on the same port (a restart), or used in process (embedded mode). What it records is read back as
/// stored rows: the log's entries written to a fresh SQLite database and read with the `/v1/runs` reader.
///
/// This file alone imports the gateway's modules, so that the test files see only the client's types (both
/// define `ChatRequest`, `JSONValue`, …); rows come back as JSON bytes.
final class TestGateway: Sendable {
    let upstream: MockUpstream
    let gateway: Gateway
    let log: InMemoryLog
    private let running = NIOLockedValueBox<(group: ServiceGroup, task: Task<Void, any Error>)?>(nil)
    private let boundPort = NIOLockedValueBox(0)

    /// A gateway whose `up/` models go to a mock upstream answering `replies` in turn (the last repeats).
    init(replies: [MockUpstream.Reply]) async throws {
        upstream = try await MockUpstream.start(replies: replies)
        log = InMemoryLog()
        var quiet = Logger(label: "client-test-gateway")
        quiet.logLevel = .critical
        gateway = try Gateway.Builder()
            .withHTTPClient(HTTPClient.shared)
            .withConfiguration(GatewayConfiguration(
                providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: "sk-upstream", prefix: "up/")],
                retry: RetryOptions(maxTries: 1)))
            .withLogSink(log)
            .withLogger(quiet)
            .build()
    }

    /// A text answer (non-streamed and streamed with usage, from the recorded OpenAI traffic).
    static func text() async throws -> TestGateway {
        try await TestGateway(replies: [.json(try fixture("openai_text_response_nonstreaming.json"))])
    }

    static func streaming() async throws -> TestGateway {
        try await TestGateway(replies: [.sse(try fixture("openai_text_response_streaming.txt"))])
    }

    /// A tool call, then a text answer.
    static func toolThenText() async throws -> TestGateway {
        try await TestGateway(replies: [
            .json(try fixture("openai_tools_response_nonstreaming.json")),
            .json(try fixture("openai_text_response_nonstreaming.json")),
        ])
    }

    var port: Int { boundPort.withLockedValue { $0 } }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Serves the gateway over HTTP, on the port it had before when it is restarted.
    func start() async throws {
        var quiet = Logger(label: "client-test-server")
        quiet.logLevel = .critical
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = ChronicleApplication.make(
            gateway: gateway, options: .init(agentSessions: false), host: "127.0.0.1", port: port, logger: quiet,
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: quiet))
        let task = Task { try await group.run() }
        var bound = 0
        for await value in ports { bound = value }
        boundPort.withLockedValue { $0 = bound }
        running.withLockedValue { $0 = (group, task) }
    }

    /// Stops serving; the port then refuses connections until ``start()``.
    func stop() async {
        guard let server = running.withLockedValue({ state in defer { state = nil }; return state }) else { return }
        await server.group.triggerGracefulShutdown()
        _ = try? await server.task.value
    }

    func close() async {
        await stop()
        await upstream.stop()
    }

    /// How many workflow events the gateway has recorded.
    var eventCount: Int { log.events.count }

    /// The run and step ids of every recorded call, oldest first.
    var callTags: [(runID: UUID?, stepID: UUID?)] {
        log.records.map { ($0.options.metadata.runID, $0.options.metadata.stepID) }
    }

    /// The bodies the upstream received, oldest first.
    var upstreamBodies: [Data] { upstream.requests.map { Data($0.body) } }

    /// The stored run as `GET /v1/runs/{id}` shows it (steps as a tree, calls, events), as JSON; `nil` if no
    /// such run was recorded.
    func storedRun(_ id: UUID) async throws -> Data? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-client-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var quiet = Logger(label: "client-test-store")
        quiet.logLevel = .critical
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("rows.db").path, logger: quiet)
        try await store.migrate()
        try await store.write(log.entries.map { StoredRecord($0) })
        let run = try await store.run(id: id)
        try await store.close()
        return try run.map { try JSONCoding.encode($0) }
    }

    static func fixture(_ name: String) throws -> String {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/providers")
        return try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }
}

/// A port nothing listens on: bound once by a server that then stopped.
func closedPort() async throws -> Int {
    let gateway = try await TestGateway.text()
    try await gateway.start()
    let port = gateway.port
    await gateway.close()
    return port
}
