import ChronicleCore
import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Where traces go and whether `/metrics` is served (`[telemetry]` in `chronicle.toml`).
///
/// Tracing is off unless an OTLP endpoint is configured here or through the standard variables
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or Rust Chronicle's
/// `TRACING_TYPE=honeycomb`. The standard `OTEL_*` variables win over the file.
public struct TelemetrySettings: Sendable, Equatable {
    /// The OTLP/HTTP traces URL, used as given (include `/v1/traces`).
    public var otlpEndpoint: String?
    /// `http/protobuf` (the default) or `http/json`.
    public var otlpProtocol: String?
    public var otlpHeaders: [String: String] = [:]
    public var serviceName: String?
    /// The fraction of new traces sampled (parent-based: a sampled caller's trace is always kept).
    public var sampleRatio: Double?
    /// Serve `GET /metrics`.
    public var metrics = true

    public init() {}

    struct FileValues: Decodable {
        var otlpEndpoint: String?
        var otlpProtocol: String?
        var otlpHeaders: [String: String]?
        var serviceName: String?
        var sampleRatio: Double?
        var metrics: Bool?

        enum CodingKeys: String, CodingKey {
            case otlpEndpoint = "otlp_endpoint"
            case otlpProtocol = "otlp_protocol"
            case otlpHeaders = "otlp_headers"
            case serviceName = "service_name"
            case sampleRatio = "sample_ratio"
            case metrics
        }
    }

    mutating func apply(_ values: FileValues) {
        if let value = values.otlpEndpoint { otlpEndpoint = value }
        if let value = values.otlpProtocol { otlpProtocol = value }
        if let value = values.otlpHeaders { otlpHeaders.merge(value) { $1 } }
        if let value = values.serviceName { serviceName = value }
        if let value = values.sampleRatio { sampleRatio = value }
        if let value = values.metrics { metrics = value }
    }
}

/// Builds the OTLP/HTTP tracer, or nothing when tracing is not configured.
enum Telemetry {
    struct TracingBackend {
        var tracer: any Tracer
        var service: any Service
        var endpoint: String
    }

    static func makeTracing(_ settings: TelemetrySettings, environment: [String: String], logger: Logger) throws
        -> TracingBackend?
    {
        func env(_ name: String) -> String? {
            environment[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        }
        let tracingType = env("TRACING_TYPE")?.lowercased()
        if tracingType == "none" || env("OTEL_SDK_DISABLED")?.lowercased() == "true"
            || env("OTEL_TRACES_EXPORTER")?.lowercased() == "none"
        {
            return nil
        }
        try validate(environment: env)

        var configuration = OTel.Configuration.default
        // The environment beats the file, as everywhere (``ConfigurationPrecedence``).
        configuration.serviceName = env("CHRONICLE_OTEL_SERVICE_NAME") ?? settings.serviceName ?? "chronicle"
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        configuration.diagnosticLogLevel = .warning
        var endpoint = settings.otlpEndpoint
        var headers = settings.otlpHeaders.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if tracingType == "honeycomb" {
            // Rust Chronicle's Honeycomb mode, over Honeycomb's OTLP/HTTP intake.
            let base = env("HONEYCOMB_ENDPOINT") ?? "https://api.honeycomb.io"
            endpoint = endpoint ?? (base.hasSuffix("/") ? base + "v1/traces" : base + "/v1/traces")
            if let key = env("HONEYCOMB_API_KEY") { headers.append(("x-honeycomb-team", key)) }
        }
        if tracingType == "otlp_tonic" {
            logger.warning("TRACING_TYPE=otlp_tonic asked for OTLP/gRPC; Chronicle exports OTLP/HTTP (port 4318)")
        }
        let fromEnvironment = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ?? env("OTEL_EXPORTER_OTLP_ENDPOINT")
        guard let resolved = fromEnvironment ?? endpoint else { return nil }
        if let endpoint { configuration.traces.otlpExporter.endpoint = endpoint }
        configuration.traces.otlpExporter.headers = headers
        switch settings.otlpProtocol?.lowercased() {
        case nil, "http/protobuf": configuration.traces.otlpExporter.protocol = .httpProtobuf
        case "http/json": configuration.traces.otlpExporter.protocol = .httpJSON
        case let other?:
            throw ConfigurationError("[telemetry] otlp_protocol must be http/protobuf or http/json, not \(other)")
        }
        if let ratio = settings.sampleRatio {
            guard let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration
                .parentBasedTraceIDRatio(ratio: ratio)
            else {
                throw ConfigurationError("[telemetry] sample_ratio must be between 0 and 1")
            }
            configuration.traces.sampler = sampler
        }
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        return TracingBackend(tracer: backend.factory, service: backend.service, endpoint: resolved)
    }

    /// swift-otel stops the process on some values it cannot honour; refuse them with a message instead.
    static func validate(environment env: (String) -> String?) throws {
        for name in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let value = env(name), !["http/protobuf", "http/json"].contains(value.lowercased()) {
                throw ConfigurationError("\(name)=\(value) is not supported: Chronicle exports OTLP over HTTP only (http/protobuf or http/json)")
            }
        }
        if let value = env("OTEL_PROPAGATORS") {
            let unsupported = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                .filter { !["tracecontext", "none", ""].contains($0) }
            if !unsupported.isEmpty {
                throw ConfigurationError("OTEL_PROPAGATORS: only tracecontext is supported, not \(unsupported.joined(separator: ", "))")
            }
        }
        if let value = env("OTEL_TRACES_SAMPLER") {
            let supported = ["always_on", "always_off", "traceidratio", "parentbased_always_on",
                             "parentbased_always_off", "parentbased_traceidratio"]
            if !supported.contains(value.lowercased()) {
                throw ConfigurationError("OTEL_TRACES_SAMPLER=\(value) is not supported (use one of \(supported.joined(separator: ", ")))")
            }
        }
    }
}
