import ChronicleCore
@testable import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing
import Tracing

/// One span as an OTLP/HTTP JSON export carries it.
struct ExportedSpan {
    var traceID: String
    var spanID: String
    var parentSpanID: String
    var name: String
    var statusCode: Int
    var attributes: [String: JSONValue]

    /// Every span in the collector's received exports. IDs are hex (swift-protobuf's JSON has base64).
    static func all(in requests: [MockUpstream.RecordedRequest]) -> [ExportedSpan] {
        var spans: [ExportedSpan] = []
        for request in requests where request.path == "/v1/traces" {
            guard let json = request.json else { continue }
            for resource in json["resourceSpans"]?.arrayValue ?? [] {
                for scope in resource["scopeSpans"]?.arrayValue ?? [] {
                    for span in scope["spans"]?.arrayValue ?? [] {
                        var attributes: [String: JSONValue] = [:]
                        for attribute in span["attributes"]?.arrayValue ?? [] {
                            guard let key = attribute["key"]?.stringValue, let value = attribute["value"] else { continue }
                            attributes[key] = value["stringValue"] ?? value["intValue"] ?? value["doubleValue"]
                                ?? value["boolValue"] ?? value["arrayValue"] ?? value
                        }
                        spans.append(ExportedSpan(
                            traceID: hex(span["traceId"]?.stringValue), spanID: hex(span["spanId"]?.stringValue),
                            parentSpanID: hex(span["parentSpanId"]?.stringValue),
                            name: span["name"]?.stringValue ?? "",
                            statusCode: span["status"]?["code"]?.intValue ?? 0, attributes: attributes))
                    }
                }
            }
        }
        return spans
    }

    static func hex(_ base64: String?) -> String {
        guard let base64, let data = Data(base64Encoded: base64) else { return "" }
        return data.map { String(format: "%02x", $0) }.joined()
    }
}

/// Captures every log line a logger writes, at every level.
final class CapturedLogs: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    var text: String { lines.withLockedValue { $0.joined(separator: "\n") } }

    func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "captured") { _ in Handler(logs: self) }
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let line = "\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })"
            logs.lines.withLockedValue { $0.append(line) }
        }
    }
}

/// The server's OTLP/HTTP tracing, exporting JSON to a mock collector.
struct CollectorTracing {
    let tracer: any Tracer
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(exportingTo collector: MockUpstream) throws -> CollectorTracing {
        var telemetry = TelemetrySettings()
        telemetry.otlpEndpoint = collector.url("/v1/traces")
        telemetry.otlpProtocol = "http/json"
        let tracing = try #require(try Telemetry.makeTracing(telemetry, environment: [:], logger: Logger(label: "test")))
        let group = ServiceGroup(configuration: .init(services: [tracing.service], logger: Logger(label: "otel")))
        return CollectorTracing(tracer: tracing.tracer, group: group, task: Task { try await group.run() })
    }

    /// Shuts the exporter down, which exports every finished span.
    func flush() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

@Suite("Observability: traces, metrics, overhead, secrets")
struct ObservabilityTests {
    let streamRequest = #"{"model":"up/gpt","stream":true,"messages":[{"role":"user","content":"Who was Lassie?"}]}"#
    let textRequest = #"{"model":"up/gpt","messages":[{"role":"user","content":"Who was Lassie?"}]}"#

    func configuration(_ upstream: MockUpstream, key: String = "sk-upstream") -> GatewayConfiguration {
        GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), apiKey: key, prefix: "up/")],
            retry: RetryOptions(maxTries: 1))
    }

    /// A streamed and a failed call reach an OTLP/HTTP collector with the caller's trace as parent, a
    /// request span, an attempt span under it, and the `llm.*` / `gen_ai.*` attributes.
    @Test func spansReachTheCollector() async throws {
        let collector = try await MockUpstream.start(.json("{}"))
        let upstream = try await MockUpstream.start(
            .sse(try Fixtures.text("openai_text_response_streaming.txt")),
            .json(#"{"error":{"message":"bad request","type":"invalid_request_error"}}"#, status: 400))
        let tracing = try CollectorTracing.start(exportingTo: collector)
        let server = try await RunningServer.start(configuration: configuration(upstream), tracer: tracing.tracer)

        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let callerSpan = "00f067aa0ba902b7"
        let streamed = try await server.send("/v1/chat/completions", body: streamRequest,
                                             headers: [("traceparent", "00-\(traceID)-\(callerSpan)-01")])
        #expect(streamed.status == 200)
        let failed = try await server.send("/v1/chat/completions", body: textRequest)
        #expect(failed.status == 400)
        _ = try await server.records(2)
        await server.stop()
        // Shutting the exporter down flushes every finished span.
        try await tracing.flush()

        let spans = ExportedSpan.all(in: collector.requests)
        let inTrace = spans.filter { $0.traceID == traceID }
        let serverSpan = try #require(inTrace.first { $0.parentSpanID == callerSpan })
        #expect(serverSpan.name == "POST /v1/chat/completions")
        #expect(serverSpan.attributes["http.response.status_code"] == "200")
        let call = try #require(inTrace.first { $0.name == "llm.send_request" })
        #expect(call.parentSpanID == serverSpan.spanID)
        #expect(call.attributes["gen_ai.system"] == "up")
        #expect(call.attributes["gen_ai.request.model"] == "up/gpt")
        #expect(call.attributes["gen_ai.response.model"] == "gpt-3.5-turbo-0125")
        #expect(call.attributes["gen_ai.usage.input_tokens"] == "15")
        #expect(call.attributes["gen_ai.usage.output_tokens"] == "62")
        #expect(call.attributes["llm.usage.total_tokens"] == "77")
        #expect(call.attributes["gen_ai.response.finish_reasons"] != nil)
        #expect(call.attributes["llm.stream"] == true)
        #expect(call.attributes["llm.item_id"]?.stringValue?.count == 36)
        #expect(call.attributes["chronicle.overhead_ms"] != nil)
        #expect(call.attributes["llm.prompts"] == nil, "payloads stay out of spans unless trace_payloads is on")
        let attempt = try #require(inTrace.first { $0.name == "llm.attempt" })
        #expect(attempt.parentSpanID == call.spanID)
        #expect(attempt.attributes["gen_ai.system"] == "up")

        // The failed call: its own trace, error status and kind on both the call and its attempt.
        let failedCall = try #require(spans.first { $0.name == "llm.send_request" && $0.traceID != traceID })
        #expect(failedCall.statusCode == 2)
        #expect(failedCall.attributes["error.type"] == "provider_rejected_input")
        #expect(failedCall.attributes["http.response.status_code"] == "400")
        let failedAttempt = try #require(spans.first { $0.name == "llm.attempt" && $0.parentSpanID == failedCall.spanID })
        #expect(failedAttempt.statusCode == 2)
        #expect(failedAttempt.attributes["error.type"] == "provider_rejected_input")
        await upstream.stop()
        await collector.stop()
    }

    /// `/metrics` after known traffic: request counts by status and error kind, tokens, histograms.
    @Test func prometheusScrape() async throws {
        let upstream = try await MockUpstream.start(
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .json(#"{"error":{"message":"slow down"}}"#, status: 429))
        let metrics = ServerMetrics()
        let server = try await RunningServer.start(configuration: configuration(upstream), metrics: metrics)
        for _ in 0..<2 { #expect(try await server.send("/v1/chat/completions", body: textRequest).status == 200) }
        #expect(try await server.send("/v1/chat/completions", body: textRequest).status == 429)
        _ = try await server.records(3)

        let scrape = try await server.send("/metrics", method: .GET)
        #expect(scrape.status == 200)
        #expect(scrape.headers.first(name: "content-type")?.hasPrefix("text/plain") == true)
        let samples = PrometheusText.parse(scrape.body)
        #expect(samples.value("chronicle_requests_total", ["provider": "up", "model": "up/gpt", "status": "200"]) == 2)
        #expect(samples.value("chronicle_requests_total",
                              ["provider": "up", "status": "429", "error_kind": "rate_limit"]) == 1)
        #expect(samples.value("chronicle_rate_limited_attempts_total", ["provider": "up"]) == 1)
        #expect(samples.value("chronicle_tokens_total", ["provider": "up", "direction": "input"]) == Double(2 * 15))
        #expect(samples.value("chronicle_tokens_total", ["provider": "up", "direction": "output"]) == Double(2 * 97))
        #expect(samples.value("chronicle_request_duration_seconds_count", ["provider": "up"]) == 3)
        #expect(samples.value("chronicle_overhead_seconds_count", ["streaming": "false"]) == 3)
        #expect(samples.value("chronicle_in_flight_requests", [:]) == 0)
        #expect(samples.value("chronicle_http_requests_total",
                              ["route": "/v1/chat/completions", "status": "200"]) == 2)
        await server.stop()
        await upstream.stop()
    }

    /// The log pipeline's totals are counters, the spill-failure count among them; levels stay gauges.
    @Test func logPipelineCounters() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-counters-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await store.migrate()
        // The spill file's directory cannot be created (its parent is a file), so every spill fails.
        let blocker = directory.appendingPathComponent("not-a-directory")
        FileManager.default.createFile(atPath: blocker.path, contents: Data())
        var writerConfiguration = LogWriter.Configuration()
        writerConfiguration.batchSize = 100
        writerConfiguration.flushInterval = .seconds(60)
        writerConfiguration.maxBufferedRecords = 1
        writerConfiguration.spillPath = blocker.appendingPathComponent("spill.jsonl").path
        writerConfiguration.journalPath = directory.appendingPathComponent("journal").path
        var quiet = Logger(label: "writer")
        quiet.logLevel = .critical
        let writer = LogWriter(store: store, configuration: writerConfiguration, logger: quiet)
        let metrics = ServerMetrics()
        metrics.attach(writer)
        let server = try await RunningServer.start(configuration: configuration(upstream), sink: writer,
                                                   services: [writer], metrics: metrics)
        for _ in 0..<3 { #expect(try await server.send("/v1/chat/completions", body: textRequest).status == 200) }
        await writer.flush()

        let scrape = try await server.send("/metrics", method: .GET).body
        let samples = PrometheusText.parse(scrape)
        for counter in ["chronicle_log_records_written_total", "chronicle_log_records_spilled_total",
                        "chronicle_log_batch_failures_total", "chronicle_log_dead_lettered_records_total",
                        "chronicle_log_replaced_records_total", "chronicle_log_spill_failures_total",
                        "chronicle_log_journal_replayed_total", "chronicle_log_journal_failures_total"] {
            #expect(scrape.contains("# TYPE \(counter) counter"), "\(counter) is a counter")
        }
        for gauge in ["chronicle_log_queue_depth", "chronicle_log_spill_pending_records", "chronicle_log_spill_bytes"] {
            #expect(scrape.contains("# TYPE \(gauge) gauge"), "\(gauge) is a gauge")
        }
        #expect(samples.value("chronicle_log_records_written_total", [:]) == 3)
        // The first record fit in memory; the two after it could not be spilled and stayed in memory.
        #expect(samples.value("chronicle_log_spill_failures_total", [:]) == 2)
        #expect(samples.value("chronicle_log_journal_failures_total", [:]) == 0)
        #expect(samples.value("chronicle_log_queue_depth", [:]) == 0)
        // A second scrape does not add the totals again.
        let again = PrometheusText.parse(try await server.send("/metrics", method: .GET).body)
        #expect(again.value("chronicle_log_records_written_total", [:]) == 3)
        await server.stop()
        try await store.close()
        await upstream.stop()
    }

    /// Every response says how long the gateway itself took; the stored call has the same figure.
    @Test func overheadHeader() async throws {
        let upstream = try await MockUpstream.start(
            .json(try Fixtures.text("openai_text_response_nonstreaming.json")),
            .sse(try Fixtures.text("openai_text_response_streaming.txt"), delay: .milliseconds(5)),
            .json(#"{"error":{"message":"down"}}"#, status: 503))
        let server = try await RunningServer.start(configuration: configuration(upstream))

        let plain = try await server.send("/v1/chat/completions", body: textRequest)
        let header = try #require(plain.headers.first(name: "x-chronicle-overhead-ms").flatMap(Double.init))
        #expect(header >= 0)
        let record = try #require(try await server.records(1).first)
        let stored = try #require(record.overhead).fractionalMilliseconds
        #expect(abs(stored - header) < 0.001, "the stored overhead is the one in the header")
        #expect(stored < record.totalLatency.fractionalMilliseconds)

        let streamed = try await server.send("/v1/chat/completions", body: streamRequest)
        #expect(streamed.headers.first(name: "x-chronicle-overhead-ms").flatMap(Double.init) != nil)
        let streamRecord = try #require(try await server.records(2).last)
        // Five milliseconds between chunks are upstream time, not overhead.
        #expect(try #require(streamRecord.overhead) < streamRecord.totalLatency - .milliseconds(100))

        let failed = try await server.send("/v1/chat/completions", body: textRequest)
        #expect(failed.status == 503)
        #expect(failed.headers.first(name: "x-chronicle-overhead-ms").flatMap(Double.init) != nil)
        let bad = try await server.send("/v1/chat/completions", body: "{not json")
        #expect(bad.status == 400)
        #expect(bad.headers.first(name: "x-chronicle-overhead-ms") != nil)
        await server.stop()
        await upstream.stop()
    }

    /// An upstream that echoes the key it was sent: the key appears nowhere the gateway writes — not in
    /// the client's error, the stored call, the log lines (at trace level) or the spans.
    @Test func secretsNeverLeak() async throws {
        let secret = "sk-live-0123456789abcdefSECRET"
        let clientKey = "sk-client-9876543210zyxwvuCLIENT"
        let echo = #"{"error":{"message":"Incorrect API key provided: \#(secret). You can find your API key at https://platform.openai.com","type":"invalid_request_error","code":"invalid_api_key"}}"#
        let clientEcho = #"{"error":{"message":"Incorrect API key provided: \#(clientKey)."}}"#
        let upstream = try await MockUpstream.start(.json(echo, status: 401), .json(clientEcho, status: 401),
                                                    .sse(try Fixtures.text("openai_text_response_streaming.txt")))
        let collector = try await MockUpstream.start(.json("{}"))
        let tracing = try CollectorTracing.start(exportingTo: collector)
        let logs = CapturedLogs()
        var configuration = configuration(upstream, key: secret)
        configuration.tracePayloads = true
        let gatewayKey = "chr-gateway-key-0123456789"
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "team-a", key: gatewayKey)]
        security.overrideURLAllowList = [upstream.url()]
        // A real SQLite file: the secret must not be in its bytes.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-secrets-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databasePath = directory.appendingPathComponent("chronicle.db").path
        let store = try await SQLiteLogStore.open(path: databasePath)
        try await store.migrate()
        var writerConfiguration = LogWriter.Configuration()
        writerConfiguration.flushInterval = .milliseconds(20)
        let writer = LogWriter(store: store, configuration: writerConfiguration, logger: logs.logger(level: .trace))
        let memory = InMemoryLog()
        let server = try await RunningServer.start(
            configuration: configuration, sink: RunningServer.Tee(first: memory, second: writer), services: [writer],
            security: security, tracer: tracing.tracer,
            redactor: SecretRedactor(secrets: [gatewayKey]), logger: logs.logger(level: .trace))
        let auth = [("authorization", "Bearer \(gatewayKey)")]

        let first = try await server.send("/v1/chat/completions", body: textRequest, headers: auth)
        #expect(first.status == 401)
        let withClientKey = #"{"model":"up/gpt","api_key":"\#(clientKey)","messages":[{"role":"user","content":"hi"}]}"#
        let second = try await server.send("/v1/chat/completions", body: withClientKey, headers: auth)
        #expect(second.status == 401)
        let third = try await server.send(
            "/v1/chat/completions", body: streamRequest,
            headers: auth + [("x-chronicle-provider-api-key", clientKey)])
        #expect(third.status == 200)
        for _ in 0..<500 where memory.records.count < 3 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(memory.records.count == 3)
        await server.stop()
        await writer.flush()
        try await store.close()
        try await tracing.flush()

        let stored = [databasePath, databasePath + "-wal"]
            .compactMap { FileManager.default.contents(atPath: $0) }
            .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        #expect(stored.contains("chronicle_llm_request"))
        let spans = collector.requests.map { String(decoding: $0.body, as: UTF8.self) }.joined(separator: "\n")
        for (place, text) in [("response", first.body + second.body + third.body), ("database row", stored),
                              ("logs", logs.text), ("spans", spans)] {
            for key in [secret, clientKey, gatewayKey] {
                #expect(!text.contains(key), "\(place) contains a secret")
            }
        }
        #expect(first.body.contains(SecretRedactor.placeholder))
        #expect(stored.contains(SecretRedactor.placeholder))
        #expect(logs.text.contains("gateway_key"), "the key's name is logged")
        #expect(logs.text.contains("team-a"))
        #expect(spans.contains("llm.prompts"), "trace_payloads puts the prompt in spans")
        await upstream.stop()
        await collector.stop()
    }
}

/// Prometheus text exposition, parsed into samples.
struct PrometheusText {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var samples: [Sample]

    static func parse(_ text: String) -> PrometheusText {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            var labels: [String: String] = [:]
            let name: Substring
            if let brace = series.firstIndex(of: "{") {
                name = series[..<brace]
                let body = series[series.index(after: brace)..<(series.lastIndex(of: "}") ?? series.endIndex)]
                for pair in body.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            } else {
                name = series
            }
            samples.append(Sample(name: String(name), labels: labels, value: value))
        }
        return PrometheusText(samples: samples)
    }

    /// The sum over series named `name` whose labels include `labels`.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        let matching = samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }
}
