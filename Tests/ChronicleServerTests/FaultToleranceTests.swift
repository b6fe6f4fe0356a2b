import AsyncHTTPClient
import ChronicleCore
@testable import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Every way an upstream can fail, over real sockets: the status and kind the client gets, what is
/// recorded, and that a fallback provider takes over.
@Suite("Fault tolerance over real sockets")
struct FaultToleranceTests {
    let textRequest = #"{"model":"bad/gpt","messages":[{"role":"user","content":"Who was Lassie?"}]}"#

    /// One injected fault and what the gateway must answer.
    struct Fault: Sendable, CustomTestStringConvertible {
        var name: String
        var status: Int
        var kind: String
        var retryAfter: String? = nil
        /// The attempt timeout; short only where the fault is a hang, so a loaded machine does not turn other
        /// faults into timeouts.
        var timeout: Duration = .seconds(10)
        var start: @Sendable () async throws -> (url: String, stop: @Sendable () async -> Void)

        var testDescription: String { name }

        static func raw(_ name: String, _ behavior: RawUpstream.Behavior, status: Int, kind: String) -> Fault {
            Fault(name: name, status: status, kind: kind) {
                let upstream = try await RawUpstream.start(behavior)
                return (upstream.url(), { await upstream.stop() })
            }
        }

        static func mock(_ name: String, _ reply: MockUpstream.Reply, status: Int, kind: String,
                         retryAfter: String? = nil) -> Fault {
            Fault(name: name, status: status, kind: kind, retryAfter: retryAfter) {
                let upstream = try await MockUpstream.start(reply)
                return (upstream.url(), { await upstream.stop() })
            }
        }
    }

    static let faults: [Fault] = [
        Fault(name: "connection refused", status: 502, kind: "provider_connection_error") {
            // A port held by a socket that never listens: connecting is refused, and no server another test
            // starts meanwhile can take the port (a port merely freed could be).
            let port = try NonListeningPort()
            return ("http://127.0.0.1:\(port.number)/v1/chat/completions", { port.close() })
        },
        .raw("reset before headers", .reset, status: 502, kind: "provider_connection_error"),
        .raw("closed before headers", .closeImmediately, status: 502, kind: "provider_connection_closed"),
        .mock("500", .json(#"{"error":{"message":"boom"}}"#, status: 500), status: 500, kind: "provider_server_error"),
        .mock("502 with HTML", MockUpstream.Reply(status: 502, headers: [("content-type", "text/html")],
                                                  body: .bytes(Array("<html>Bad gateway</html>".utf8))),
              status: 502, kind: "provider_server_error"),
        .mock("429 with Retry-After", .json(#"{"error":{"message":"slow down"}}"#, status: 429, headers: [("retry-after", "7")]),
              status: 429, kind: "rate_limit", retryAfter: "7"),
        .mock("429 without Retry-After", .json(#"{"error":{"message":"slow down"}}"#, status: 429),
              status: 429, kind: "rate_limit"),
        {
            var fault = Fault.mock("hang past the timeout", MockUpstream.Reply(body: .hang), status: 504, kind: "timeout")
            // Long enough that the healthy fallback answers in time on a loaded debug run.
            fault.timeout = .seconds(2)
            return fault
        }(),
        .raw("truncated body", .writeThenClose(Array(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":\"x\",\"choices\":[".utf8)),
              status: 502, kind: "provider_connection_closed"),
        .mock("invalid JSON", .json("{this is not json", status: 200), status: 502, kind: "parsing_provider_response"),
    ]

    func configuration(faultyURL: String, healthyURL: String? = nil, timeout: Duration = .seconds(10),
                       kind: UpstreamHTTPClientKind = .nio)
        -> GatewayConfiguration
    {
        var providers = [CustomProviderConfig(name: "bad", url: faultyURL, apiKey: "sk-bad", prefix: "bad/")]
        var aliases: [AliasConfig] = []
        if let healthyURL {
            providers.append(CustomProviderConfig(name: "good", url: healthyURL, apiKey: "sk-good", prefix: "good/"))
            aliases.append(AliasConfig(name: "resilient", models: [
                AliasModel(model: "bad/gpt", provider: "bad"), AliasModel(model: "good/gpt", provider: "good"),
            ]))
        }
        var configuration = GatewayConfiguration(
            providers: providers, aliases: aliases, defaultTimeout: timeout, streamIdleTimeout: .milliseconds(500),
            retry: RetryOptions(initialBackoff: .milliseconds(1), maxTries: 2, jitter: .milliseconds(1)))
        configuration.upstreamHTTPClient = kind
        return configuration
    }

    /// Alone, the fault gives its documented status and kind (after the configured retries) and is
    /// recorded with a structured error; behind an alias, the next provider answers.
    @Test(arguments: faults, UpstreamHTTPClientKind.allCases)
    func upstreamFault(_ fault: Fault, _ kind: UpstreamHTTPClientKind) async throws {
        let (url, stop) = try await fault.start()
        let healthy = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))

        let alone = try await RunningServer.start(configuration: configuration(faultyURL: url, timeout: fault.timeout, kind: kind))
        let response = try await alone.json("/v1/chat/completions", body: textRequest)
        #expect(response.status == fault.status)
        #expect(response.json["error"]?["kind"]?.stringValue == fault.kind)
        #expect(response.json["error"]?["message"]?.stringValue?.isEmpty == false)
        if let retryAfter = fault.retryAfter { #expect(response.headers.first(name: "retry-after") == retryAfter) }
        let record = try #require(try await alone.records(1).first)
        #expect(record.httpStatus == fault.status)
        #expect(record.error?.kind == fault.kind)
        #expect(record.error?.provider == "bad")
        let retried = fault.kind != "rate_limit" || fault.retryAfter == nil
        #expect(record.attempts.count == (retried ? 2 : 1) || record.attempts.count == 2,
                "retryable faults are retried up to max_tries")
        #expect(record.attempts.allSatisfy { $0.errorKind?.rawValue == fault.kind })
        await alone.stop()

        let fallback = try await RunningServer.start(
            configuration: configuration(faultyURL: url, healthyURL: healthy.url(), timeout: fault.timeout, kind: kind))
        let rescued = try await fallback.json("/v1/chat/completions",
                                              body: #"{"model":"resilient","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(rescued.status == 200)
        #expect(rescued.json["meta"]?["provider"] == "good")
        let rescuedRecord = try #require(try await fallback.records(1).first)
        #expect(rescuedRecord.attempts.first?.errorKind?.rawValue == fault.kind)
        #expect(rescuedRecord.attempts.last?.provider == "good")
        #expect(rescuedRecord.error == nil)
        await fallback.stop()
        await healthy.stop()
        await stop()
    }

    /// A stream cut mid-way: the client gets what arrived, then `event: error`, then `[DONE]`; the record
    /// keeps the partial answer and a structured error.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func streamCutMidway(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await RawUpstream.start(.writeThenClose(Self.streamHead))
        let server = try await RunningServer.start(configuration: configuration(faultyURL: upstream.url(), kind: kind))
        let response = try await server.send("/v1/chat/completions",
                                             body: #"{"model":"bad/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(response.status == 200)
        let events = sseEvents(response.body)
        #expect(events.first?.data.contains("Hi") == true)
        #expect(events.dropLast().last?.event == "error")
        #expect(events.last?.data == "[DONE]")
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.kind == "provider_connection_closed")
        #expect(record.response?.choices.first?.message.text == "Hi")
        await server.stop()
        await upstream.stop()
    }

    /// A stream that stalls is failed after the idle timeout with `event: error` (kind `timeout`).
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func streamStalls(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await RawUpstream.start(.writeThenHang(Self.streamHead))
        let server = try await RunningServer.start(configuration: configuration(faultyURL: upstream.url(), kind: kind))
        let started = ContinuousClock.now
        let response = try await server.send("/v1/chat/completions",
                                             body: #"{"model":"bad/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(ContinuousClock.now - started < .seconds(30))
        let events = sseEvents(response.body)
        #expect(events.first?.data.contains("Hi") == true)
        #expect(events.dropLast().last?.event == "error")
        #expect(events.last?.data == "[DONE]")
        let record = try #require(try await server.records(1).first)
        #expect(record.error?.kind == "timeout")
        for _ in 0..<300 where upstream.closedRequests < upstream.requests { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.requests >= 1)
        #expect(upstream.closedRequests == upstream.requests, "the stalled upstream connection is closed, not leaked")
        await server.stop()
        await upstream.stop()
    }

    /// An SSE response head and one chunk, chunked-encoded, after which the raw upstream goes silent.
    static let streamHead: [UInt8] = {
        let chunk = #"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}"# + "\n\n"
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        return Array((head + String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n").utf8)
    }()

    /// Many clients disconnecting mid-stream: every upstream stream is cancelled, every call recorded as
    /// cancelled, and nothing stays in flight.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func manyDisconnects(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await RawUpstream.start(.writeThenHang(Self.streamHead))
        let metrics = ServerMetrics()
        var configuration = configuration(faultyURL: upstream.url(), kind: kind)
        configuration.streamIdleTimeout = .seconds(60)
        let server = try await RunningServer.start(configuration: configuration, metrics: metrics)
        let clients = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    let client = try await RawClient.connect(port: server.port)
                    let body = #"{"model":"bad/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
                    try await client.send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)")
                    try await Task.sleep(for: .milliseconds(300))
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
        let records = try await server.records(clients, within: .seconds(20))
        #expect(records.count == clients)
        #expect(records.allSatisfy { $0.error?.kind == "cancelled" && $0.httpStatus == 499 })
        // Under load some clients leave before their request reaches the upstream; every one that did
        // reach it is cancelled.
        for _ in 0..<500 where upstream.closedRequests < upstream.requests { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.closedRequests == upstream.requests, "every upstream request was cancelled")
        for _ in 0..<500 where server.access.inFlight > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.access.inFlight == 0, "every admission is released, answered or not")
        let samples = PrometheusText.parse(String(buffer: metrics.render()))
        #expect(samples.value("chronicle_in_flight_requests", [:]) == 0)
        #expect(samples.value("chronicle_in_flight_streams", [:]) == 0)
        await server.stop()
        await upstream.stop()
    }

    /// The database goes away under load: every request still succeeds and, once it is back, every call
    /// is in it.
    @Test func databaseOutageUnderLoad() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-outage-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sqlite = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await sqlite.migrate()
        let store = OutageStore(sqlite)
        var writerConfiguration = LogWriter.Configuration()
        writerConfiguration.flushInterval = .milliseconds(10)
        writerConfiguration.batchSize = 20
        writerConfiguration.maxBufferedRecords = 50
        writerConfiguration.initialRetryDelay = .milliseconds(10)
        writerConfiguration.maxRetryDelay = .milliseconds(50)
        writerConfiguration.writeTimeout = .milliseconds(200)
        writerConfiguration.spillPath = directory.appendingPathComponent("spill.jsonl").path
        var quiet = Logger(label: "writer")
        quiet.logLevel = .critical
        let writer = LogWriter(store: store, configuration: writerConfiguration, logger: quiet)
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let server = try await RunningServer.start(configuration: configuration(faultyURL: upstream.url()),
                                                   sink: writer, services: [writer])
        store.isDown = true
        let requests = 200
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<requests {
                group.addTask { try await server.send("/v1/chat/completions", body: textRequest).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "no request fails because the database is down")
        #expect(writer.statistics.spilled > 0, "the backlog went to the spill file, not unbounded memory")
        store.isDown = false
        await writer.flush()
        let deadline = ContinuousClock.now + .seconds(10)
        while try await sqlite.countCalls() < requests, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await sqlite.countCalls() == requests)
        await server.stop()
        try await sqlite.close()
        await upstream.stop()
    }
}

/// A store that can be switched off, as a database that goes away would be.
final class OutageStore: LogStore {
    let inner: SQLiteLogStore
    private let down = NIOLockedValueBox(false)

    init(_ inner: SQLiteLogStore) { self.inner = inner }

    var isDown: Bool {
        get { down.withLockedValue { $0 } }
        set { down.withLockedValue { $0 = newValue } }
    }

    struct Unavailable: Error {}

    func migrate() async throws { try await inner.migrate() }
    func write(_ records: [StoredRecord]) async throws {
        if isDown { throw Unavailable() }
        try await inner.write(records)
    }
    func deleteExpired(before cutoff: Date, limit: Int) async throws -> Int {
        try await inner.deleteExpired(before: cutoff, limit: limit)
    }
    func ping() async throws {
        if isDown { throw Unavailable() }
        try await inner.ping()
    }
    func close() async throws {}
}

extension SQLiteLogStore {
    func countCalls() async throws -> Int {
        var query = ListQuery()
        query.limit = 200
        var count = 0
        while true {
            let page = try await listCalls(query)
            count += page.items.count
            guard let next = page.nextCursor else { return count }
            query.cursor = next
        }
    }
}

/// A loopback port bound by a socket that never listens, until ``close()``.
final class NonListeningPort: Sendable {
    let number: Int
    private let descriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        descriptor = fd
        number = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(descriptor) }
}
