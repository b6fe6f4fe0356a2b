import Foundation
import Logging
import NIOConcurrencyHelpers
import Tracing

/// Where a gateway's finished calls go: its subscribers (the log sink, metrics, and any added with
/// ``Gateway/Builder/onCallFinished(_:)``), the call's span and one log line. Built once per gateway and
/// shared by its calls.
final class CallReporter: Sendable {
    let subscribers: [@Sendable (FinishedCall) -> Void]
    let logger: Logger
    private let redactorBox: NIOLockedValueBox<SecretRedactor>
    let tracePayloads: Bool
    /// Whether an embeddings call's record keeps its vectors (`log_embedding_vectors`), not only their
    /// count and dimension.
    let logsEmbeddingVectors: Bool
    /// Whether anything reads the answer (a subscriber, or a span with payloads): if not, it is not kept.
    let needsResponse: Bool
    private let releaseFinishes = NIOLockedValueBox(0)

    init(subscribers: [@Sendable (FinishedCall) -> Void], logger: Logger, redactor: SecretRedactor,
         tracePayloads: Bool, logsEmbeddingVectors: Bool = false) {
        self.logsEmbeddingVectors = logsEmbeddingVectors
        self.subscribers = subscribers
        self.logger = logger
        self.redactorBox = NIOLockedValueBox(redactor)
        self.tracePayloads = tracePayloads
        self.needsResponse = !subscribers.isEmpty || tracePayloads
    }

    /// What errors are scrubbed of; it grows when a reload brings new keys.
    var redactor: SecretRedactor { redactorBox.withLockedValue { $0 } }

    func addSecrets(_ secrets: some Sequence<String>) {
        redactorBox.withLockedValue { $0.add(secrets) }
    }

    /// How many calls were finished as their last reference went rather than explicitly.
    var callsFinishedOnRelease: Int { releaseFinishes.withLockedValue { $0 } }

    func report(_ call: FinishedCall, span: (any Span)?) {
        if call.finishedOnRelease { releaseFinishes.withLockedValue { $0 += 1 } }
        let record = call.record
        if let span {
            CallSpans.recordFinish(span, record: record, timeToFirstToken: call.timeToFirstEvent,
                                   tracePayloads: tracePayloads)
            span.end()
        }
        if logger.logLevel <= .info {
            var metadata: Logger.Metadata = [
                "call.id": "\(record.id.uuidString.lowercased())",
                "provider": "\(record.provider ?? "-")",
                "model": "\(record.model ?? "-")",
                "status": "\(record.httpStatus)",
                "latency_ms": "\(record.totalLatency.milliseconds)",
                "overhead_ms": "\(String(format: "%.3f", (record.overhead ?? .zero).fractionalMilliseconds))",
                "retries": "\(record.numRetries)",
                "streamed": "\(record.streamed)",
            ]
            // The key's configured name, never the key itself.
            if let key = call.context.gatewayKeyName ?? record.options.internalMetadata.gatewayKey {
                metadata["gateway_key"] = "\(key)"
            }
            if let error = record.error { metadata["error.kind"] = "\(error.kind)" }
            logger.info("chat completion", metadata: metadata)
        }
        for subscriber in subscribers { subscriber(call) }
    }
}
