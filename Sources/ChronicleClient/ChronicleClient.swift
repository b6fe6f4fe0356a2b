import AsyncHTTPClient
import Foundation
import Logging

/// A client of a Chronicle gateway: typed chat calls, and runs and steps recorded by scope.
///
/// ```swift
/// let client = ChronicleClient(baseURL: "http://127.0.0.1:9782")
/// let summary = try await client.run("summarize", input: url) { run in
///     let page = try await run.step("fetch", type: "tool") { _ in try await fetch(url) }
///     return try await run.step("draft", type: "llm") { _ in
///         try await client.chat(ChatRequest(model: "openai/gpt-4o-mini",
///                                           messages: [.user("Summarize: \(page)")])).text ?? ""
///     }
/// }
/// await client.shutdown()
/// ```
///
/// Every call made inside a run or step scope (child tasks included) carries the run's and step's ids, so
/// the gateway files it under them. Run and step events are sent in the background in batches, retried
/// while the gateway is unreachable; they never slow down or fail the code that records them.
public final class ChronicleClient: Sendable {
    /// How the client behaves; the defaults suit a service.
    public struct Configuration: Sendable {
        /// Stored with every call and run unless a call sets its own (application, environment, user, …).
        public var metadata: CallMetadata
        /// The most events held for delivery; beyond it the oldest are dropped and counted.
        public var eventBufferCapacity: Int
        /// The most events sent in one request.
        public var eventBatchSize: Int
        /// The first wait after a failed delivery, doubled per failure up to ``maxEventRetryBackoff``.
        public var initialEventRetryBackoff: Duration
        public var maxEventRetryBackoff: Duration
        /// What delivery waits on between retries, and flush deadlines; tests inject a manual clock.
        public var clock: any DeliveryClock
        public var logger: Logger

        public init(metadata: CallMetadata = CallMetadata(), eventBufferCapacity: Int = 10_000,
                    eventBatchSize: Int = 200, initialEventRetryBackoff: Duration = .milliseconds(250),
                    maxEventRetryBackoff: Duration = .seconds(30), clock: any DeliveryClock = ContinuousDeliveryClock(),
                    logger: Logger = Logger(label: "chronicle.client")) {
            self.metadata = metadata
            self.eventBufferCapacity = eventBufferCapacity
            self.eventBatchSize = eventBatchSize
            self.initialEventRetryBackoff = initialEventRetryBackoff
            self.maxEventRetryBackoff = maxEventRetryBackoff
            self.clock = clock
            self.logger = logger
        }
    }

    /// How calls and events reach the gateway.
    public let transport: any ChronicleTransport
    public let configuration: Configuration
    let delivery: EventDelivery

    /// A client using `transport`: ``HTTPTransport``, or an in-process gateway (ChronicleEmbedded's
    /// `ChronicleClient(gateway:)`).
    public init(transport: any ChronicleTransport, configuration: Configuration = Configuration()) {
        self.transport = transport
        self.configuration = configuration
        self.delivery = EventDelivery(
            transport: transport,
            configuration: .init(capacity: configuration.eventBufferCapacity, maxBatchSize: configuration.eventBatchSize,
                                 initialBackoff: configuration.initialEventRetryBackoff,
                                 maxBackoff: configuration.maxEventRetryBackoff),
            clock: configuration.clock, logger: configuration.logger)
    }

    /// A client of the gateway at `baseURL` over HTTP.
    /// - Parameters:
    ///   - baseURL: the gateway, such as `http://127.0.0.1:9782`; by default `CHRONICLE_URL`, else
    ///     `CHRONICLE_PROXY_URL` (the reference client's variable), else `http://localhost:9782`.
    ///   - apiKey: the gateway key, when the gateway requires one (sent as `Authorization: Bearer`).
    ///   - httpClient: the HTTP client; ``HTTPTransport/sharedHTTPClient`` by default.
    ///   - configuration: metadata, event buffering and retry, the delivery clock, the logger.
    public convenience init(baseURL: String? = nil, apiKey: String? = nil,
                            httpClient: HTTPClient = HTTPTransport.sharedHTTPClient,
                            configuration: Configuration = Configuration()) {
        let environment = ProcessInfo.processInfo.environment
        let url = baseURL ?? environment["CHRONICLE_URL"] ?? environment["CHRONICLE_PROXY_URL"] ?? "http://localhost:9782"
        self.init(transport: HTTPTransport(baseURL: url, apiKey: apiKey, httpClient: httpClient),
                  configuration: configuration)
    }

    // MARK: Events

    /// Counts of background event delivery: delivered, pending, dropped (buffer full), rejected, failed
    /// attempts.
    public var eventStatistics: EventStatistics { delivery.statistics }

    /// Events dropped because the buffer was full (the oldest go first), or recorded after shutdown.
    public var droppedEventCount: Int { delivery.statistics.dropped }

    /// Records a generic event in the current run and step. Outside a run it is not recorded (Chronicle
    /// files events under runs).
    public func event(_ type: String, data: (any Encodable)? = nil) {
        guard let scope = RunScope.current else {
            configuration.logger.debug("Chronicle event outside a run not recorded", metadata: ["type": "\(type)"])
            return
        }
        recordEvent(type, data: data, runID: scope.runID, stepID: scope.stepID)
    }

    /// Waits until every recorded event is delivered, at most `timeout`. Returns whether all were.
    @discardableResult
    public func flush(timeout: Duration = .seconds(10)) async -> Bool {
        await delivery.flush(timeout: timeout)
    }

    /// Delivers what is pending (at most `timeout`), then stops sending and releases the transport. Events
    /// recorded afterwards are dropped. Returns how many events were left undelivered.
    @discardableResult
    public func shutdown(timeout: Duration = .seconds(10)) async -> Int {
        let left = await delivery.shutdown(timeout: timeout)
        await transport.shutdown()
        return left
    }

    func record(_ event: JSONValue) {
        do {
            delivery.enqueue(Array(try JSONEncoder().encode(event)))
        } catch {
            configuration.logger.error("Chronicle event could not be encoded", metadata: ["error": "\(error)"])
        }
    }

    func recordEvent(_ type: String, data: (any Encodable)?, runID: UUID, stepID: UUID?) {
        record(WorkflowEventJSON.generic(type: type, runID: runID, stepID: stepID, data: jsonValue(data),
                                         error: nil, time: Date()))
    }

    /// A value as JSON for an event; a value that cannot be encoded is recorded by its description.
    func jsonValue(_ value: (any Encodable)?) -> JSONValue? {
        guard let value else { return nil }
        if let json = value as? JSONValue { return json }
        do {
            return try JSONValue(encoding: value)
        } catch {
            return ["unencodable": .string(String(describing: value))]
        }
    }

    static func encodeOutput(_ output: any Encodable) -> JSONValue? {
        if let json = output as? JSONValue { return json }
        return try? JSONValue(encoding: output)
    }
}
