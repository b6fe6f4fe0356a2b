import CoreMetrics
import NIOConcurrencyHelpers

/// The gateway's metrics, reported through swift-metrics to the factory the embedder chooses (the server
/// uses Prometheus). Names follow Prometheus conventions: `_total` counters, `_seconds` histograms.
public struct GatewayMetrics: Sendable {
    public enum Name {
        public static let requests = "chronicle_requests_total"
        public static let requestDuration = "chronicle_request_duration_seconds"
        public static let upstreamDuration = "chronicle_upstream_duration_seconds"
        public static let timeToFirstToken = "chronicle_time_to_first_token_seconds"
        public static let overhead = "chronicle_overhead_seconds"
        public static let tokens = "chronicle_tokens_total"
        public static let retries = "chronicle_retries_total"
        public static let fallbacks = "chronicle_fallbacks_total"
        public static let rateLimitedAttempts = "chronicle_rate_limited_attempts_total"
        public static let failedAttempts = "chronicle_failed_attempts_total"
        public static let inFlightRequests = "chronicle_in_flight_requests"
        public static let inFlightStreams = "chronicle_in_flight_streams"
    }

    let factory: any MetricsFactory
    /// Client-chosen model names become label values only up to a bound, so that a client cannot grow
    /// the metrics without limit by inventing models.
    let models: LabelLimiter
    let inFlightRequests: Meter
    let inFlightStreams: Meter

    public init(factory: any MetricsFactory, maxModelLabels: Int = 200) {
        self.factory = factory
        self.models = LabelLimiter(limit: maxModelLabels)
        self.inFlightRequests = Meter(label: Name.inFlightRequests, factory: factory)
        self.inFlightStreams = Meter(label: Name.inFlightStreams, factory: factory)
    }

    func started(streaming: Bool) {
        inFlightRequests.increment()
        if streaming { inFlightStreams.increment() }
    }

    /// One finished call: counts, latencies and tokens.
    func finished(_ call: FinishedCall) {
        let record = call.record
        let model = models.label(for: record.model)
        let provider = record.provider ?? ""
        inFlightRequests.decrement()
        if record.streamed { inFlightStreams.decrement() }
        Counter(label: Name.requests, dimensions: [
            ("provider", provider), ("model", model), ("status", String(record.httpStatus)),
            ("error_kind", record.error?.kind ?? ""),
        ], factory: factory).increment()
        let pair = [("provider", provider), ("model", model)]
        CoreMetrics.Timer(label: Name.requestDuration, dimensions: pair, factory: factory)
            .recordNanoseconds(record.totalLatency.nanoseconds)
        if let upstream = record.upstreamLatency {
            CoreMetrics.Timer(label: Name.upstreamDuration, dimensions: pair, factory: factory)
                .recordNanoseconds(upstream.nanoseconds)
        }
        // Time to first token is a streaming figure: a complete answer's first event is all of it.
        if record.streamed, let firstToken = call.timeToFirstEvent {
            CoreMetrics.Timer(label: Name.timeToFirstToken, dimensions: pair, factory: factory)
                .recordNanoseconds(firstToken.nanoseconds)
        }
        CoreMetrics.Timer(label: Name.overhead, dimensions: [("streaming", record.streamed ? "true" : "false")],
                          factory: factory)
            .recordNanoseconds((record.overhead ?? .zero).nanoseconds)
        let usage = record.usage
        if let input = usage?.promptTokens, input > 0 {
            Counter(label: Name.tokens, dimensions: pair + [("direction", "input")], factory: factory).increment(by: input)
        }
        if let output = usage?.completionTokens, output > 0 {
            Counter(label: Name.tokens, dimensions: pair + [("direction", "output")], factory: factory).increment(by: output)
        }
    }

    /// A failed attempt, and what the planner does next.
    func attemptFailed(provider: String, errorKind: ProviderErrorKind, nextProvider: String?) {
        Counter(label: Name.failedAttempts, dimensions: [("provider", provider), ("error_kind", errorKind.rawValue)],
                factory: factory).increment()
        if errorKind == .rateLimit {
            Counter(label: Name.rateLimitedAttempts, dimensions: [("provider", provider)], factory: factory).increment()
        }
        guard let nextProvider else { return }
        Counter(label: Name.retries, dimensions: [("provider", nextProvider)], factory: factory).increment()
        if nextProvider != provider {
            Counter(label: Name.fallbacks, dimensions: [("from", provider), ("to", nextProvider)], factory: factory)
                .increment()
        }
    }
}

/// Passes the first `limit` distinct values through and maps the rest to `"other"`.
final class LabelLimiter: Sendable {
    private let seen = NIOLockedValueBox(Set<String>())
    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func label(for value: String?) -> String {
        guard let value, !value.isEmpty else { return "" }
        return seen.withLockedValue { seen in
            if seen.contains(value) { return value }
            guard seen.count < limit else { return "other" }
            seen.insert(value)
            return value
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    public var nanoseconds: Int64 {
        let parts = components
        let (fromSeconds, overflow) = parts.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : fromSeconds + parts.attoseconds / 1_000_000_000
    }
}
