import ChronicleCore
import ChronicleStorage
import CoreMetrics
import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// The Prometheus registry behind `GET /metrics`: the gateway's and the HTTP layer's metrics, plus the
/// logging pipeline's state, read at scrape time.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    private let writer = NIOLockedValueBox<LogWriter?>(nil)
    private let logGauges: LogGauges

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // LLM calls take seconds to minutes; the gateway's own overhead is micro- to milliseconds.
        let callBuckets: [Duration] = [
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
            .seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
        ]
        factory.durationHistogramBuckets = [
            GatewayMetrics.Name.requestDuration: callBuckets,
            GatewayMetrics.Name.upstreamDuration: callBuckets,
            GatewayMetrics.Name.timeToFirstToken: callBuckets,
            "chronicle_http_request_duration_seconds": callBuckets,
            GatewayMetrics.Name.overhead: [
                .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50),
                .milliseconds(100),
            ],
            LogWriter.batchWriteMetric: [
                .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5), .seconds(10),
            ],
        ]
        self.registry = registry
        self.factory = factory
        self.logGauges = LogGauges(registry: registry)
    }

    /// Reports the logging pipeline's queue and spill state at each scrape.
    public func attach(_ writer: LogWriter) {
        self.writer.withLockedValue { $0 = writer }
    }

    /// The text exposition format, with the logging pipeline's gauges refreshed.
    public func render() -> ByteBuffer {
        if let writer = writer.withLockedValue({ $0 }) {
            let statistics = writer.statistics
            logGauges.queueDepth.set(Int64(statistics.queued))
            logGauges.spillPending.set(Int64(statistics.spillPending))
            logGauges.written.set(Int64(statistics.written))
            logGauges.failedBatches.set(Int64(statistics.failedBatches))
            logGauges.deadLettered.set(Int64(statistics.deadLettered))
            logGauges.replaced.set(Int64(statistics.replacedRecords))
            let spillBytes = writer.configuration.spillPath
                .flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? NSNumber }?.intValue ?? 0
            logGauges.spillBytes.set(Int64(spillBytes))
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    private struct LogGauges: Sendable {
        let queueDepth: Prometheus.Gauge
        let spillPending: Prometheus.Gauge
        let spillBytes: Prometheus.Gauge
        let written: Prometheus.Gauge
        let failedBatches: Prometheus.Gauge
        let deadLettered: Prometheus.Gauge
        let replaced: Prometheus.Gauge

        init(registry: PrometheusCollectorRegistry) {
            func gauge(_ name: String, _ help: String) -> Prometheus.Gauge {
                registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
            }
            queueDepth = gauge("chronicle_log_queue_depth", "Log records waiting in memory to be written")
            spillPending = gauge("chronicle_log_spill_pending_records", "Log records in the spill file, not yet written")
            spillBytes = gauge("chronicle_log_spill_bytes", "Size of the spill file in bytes")
            written = gauge("chronicle_log_records_written", "Log records written to the database since start")
            failedBatches = gauge("chronicle_log_batch_failures", "Batch writes that failed since start")
            deadLettered = gauge("chronicle_log_dead_lettered_records", "Records written to the dead-letter file since start")
            replaced = gauge("chronicle_log_replaced_records", "Records stored with their payload replaced by an error note")
        }
    }
}

/// `GET /metrics` in the Prometheus text format.
struct MetricsRoutes<Context: RequestContext>: Sendable {
    let metrics: ServerMetrics

    func register(on router: Router<Context>) {
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: metrics.render()))
        }
    }
}
