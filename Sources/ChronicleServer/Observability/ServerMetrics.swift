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
    private let logMetrics: LogMetrics

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
        self.logMetrics = LogMetrics(registry: registry)
    }

    /// Reports the logging pipeline's queue, spill state and totals at each scrape.
    public func attach(_ writer: LogWriter) {
        self.writer.withLockedValue { $0 = writer }
    }

    /// The text exposition format, with the logging pipeline's metrics refreshed.
    public func render() -> ByteBuffer {
        if let writer = writer.withLockedValue({ $0 }) {
            let spillBytes = writer.configuration.spillPath
                .flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? NSNumber }?.intValue ?? 0
            logMetrics.update(writer.statistics, spillBytes: spillBytes)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }

    /// The logging pipeline's state: levels as gauges, running totals as counters (so that `rate()` works
    /// and a restart reads as a counter reset).
    private struct LogMetrics: Sendable {
        let queueDepth: Prometheus.Gauge
        let spillPending: Prometheus.Gauge
        let spillBytes: Prometheus.Gauge
        let written: Prometheus.Counter
        let spilled: Prometheus.Counter
        let failedBatches: Prometheus.Counter
        let deadLettered: Prometheus.Counter
        let replaced: Prometheus.Counter
        let spillFailures: Prometheus.Counter
        let journalReplayed: Prometheus.Counter
        let journalFailures: Prometheus.Counter
        /// The totals already added to the counters: the writer keeps totals, a counter only goes up by steps.
        private let exported = NIOLockedValueBox(LogWriter.Statistics())

        init(registry: PrometheusCollectorRegistry) {
            func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
                MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
            }
            func gauge(_ name: String, _ help: String) -> Prometheus.Gauge {
                registry.makeGauge(descriptor: descriptor(name, help))
            }
            func counter(_ name: String, _ help: String) -> Prometheus.Counter {
                registry.makeCounter(descriptor: descriptor(name, help))
            }
            queueDepth = gauge("chronicle_log_queue_depth", "Log records waiting in memory to be written")
            spillPending = gauge("chronicle_log_spill_pending_records", "Log records in the spill file, not yet written")
            spillBytes = gauge("chronicle_log_spill_bytes", "Size of the spill file in bytes")
            written = counter("chronicle_log_records_written_total", "Log records written to the database")
            spilled = counter("chronicle_log_records_spilled_total", "Log records appended to the spill file")
            failedBatches = counter("chronicle_log_batch_failures_total", "Batch writes that failed")
            deadLettered = counter("chronicle_log_dead_lettered_records_total", "Records written to the dead-letter file")
            replaced = counter("chronicle_log_replaced_records_total",
                               "Records stored with their payload replaced by an error note")
            spillFailures = counter("chronicle_log_spill_failures_total",
                                    "Records the spill file could not take (kept in memory, or lost at shutdown)")
            journalReplayed = counter("chronicle_log_journal_replayed_total",
                                      "Records an earlier run left in the crash journal, stored at start")
            journalFailures = counter("chronicle_log_journal_failures_total",
                                      "Records the crash journal could not take (a crash would lose them)")
        }

        func update(_ statistics: LogWriter.Statistics, spillBytes bytes: Int) {
            queueDepth.set(Int64(statistics.queued))
            spillPending.set(Int64(statistics.spillPending))
            spillBytes.set(Int64(bytes))
            // Under the lock, so that two scrapes at once add each step once.
            exported.withLockedValue { exported in
                func advance(_ counter: Prometheus.Counter, _ total: Int, _ previous: inout Int) {
                    if total > previous { counter.increment(by: Int64(total - previous)) }
                    previous = max(previous, total)
                }
                advance(written, statistics.written, &exported.written)
                advance(spilled, statistics.spilled, &exported.spilled)
                advance(failedBatches, statistics.failedBatches, &exported.failedBatches)
                advance(deadLettered, statistics.deadLettered, &exported.deadLettered)
                advance(replaced, statistics.replacedRecords, &exported.replacedRecords)
                advance(spillFailures, statistics.spillFailures, &exported.spillFailures)
                advance(journalReplayed, statistics.journalReplayed, &exported.journalReplayed)
                advance(journalFailures, statistics.journalFailures, &exported.journalFailures)
            }
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
