// Logging throughput: how many call records per second the writer stores, per backend and batch size,
// and whether a sustained rate keeps the queue flat; and what the crash journal adds to each call.
//
//   swift run -c release LoggingBenchmark [--records N] [--rate R] [--seconds S] [--postgres URL]
//   swift run -c release LoggingBenchmark --journal-only [--records N]
import ChronicleCore
import ChronicleStorage
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

struct Options {
    var records = 50_000
    var rate = 20_000
    var seconds = 5
    var postgresURL: String?
    var batchSizes = [1, 10, 100, 500]
    var journalOnly = false

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--records": records = iterator.next().flatMap(Int.init) ?? records
            case "--rate": rate = iterator.next().flatMap(Int.init) ?? rate
            case "--seconds": seconds = iterator.next().flatMap(Int.init) ?? seconds
            case "--postgres": postgresURL = iterator.next()
            case "--journal-only": journalOnly = true
            case "--batch-sizes":
                batchSizes = iterator.next()?.split(separator: ",").compactMap { Int($0) } ?? batchSizes
            default: break
            }
        }
    }
}

/// A realistic call record: a short chat with usage and metadata.
func sampleRecord() -> LogEntry {
    let request = ChatRequest(model: "groq/llama-3.1-8b-instant", messages: [
        ChatMessage(role: "system", content: .text("You are a helpful assistant.")),
        ChatMessage(role: "user", content: .text(String(repeating: "What is the capital of France? ", count: 8))),
    ])
    let response = ChatResponse(
        id: "chatcmpl-bench", created: 1_717_229_159, model: "llama-3.1-8b-instant",
        choices: [ChatChoice(message: ChatMessage(role: "assistant", content: .text(String(repeating: "Paris. ", count: 20))))],
        usage: Usage(promptTokens: 60, completionTokens: 40, totalTokens: 100))
    return .call(CallLogRecord(
        id: .v7(), timestamp: Date(), request: .typed(request),
        options: RequestOptions(metadata: RequestMetadata(application: "bench", environment: "bench", userID: "user-1")),
        provider: "groq", model: "groq/llama-3.1-8b-instant", response: response,
        upstreamLatency: .milliseconds(120), totalLatency: .milliseconds(121), overhead: .microseconds(80)))
}

/// The same short chat as the server holds it: the client's bytes, and the upstream's answer relayed as its
/// bytes.
func sampleWireRecord(prompt: String = String(repeating: "What is the capital of France? ", count: 8)) -> LogEntry {
    let body = #"{"model":"groq/llama-3.1-8b-instant","messages":[{"role":"system","content":"You are a helpful assistant."},"#
        + #"{"role":"user","content":"\#(prompt)"}],"#
        + #""metadata":{"application":"bench","environment":"bench","user_id":"user-1"}}"#
    let answer = #"{"id":"chatcmpl-bench","object":"chat.completion","created":1717229159,"model":"llama-3.1-8b-instant","#
        + #""choices":[{"index":0,"message":{"role":"assistant","content":"\#(String(repeating: "Paris. ", count: 20))"},"#
        + #""finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":40,"total_tokens":100}}"#
    guard let scanned = WireChatRequest.scan(ByteBuffer(string: body)) else { fatalError("the sample scans") }
    var call = CallLogRecord(
        id: .v7(), timestamp: Date(), request: .wire(scanned.request), options: scanned.options, provider: "groq",
        model: "groq/llama-3.1-8b-instant", upstreamLatency: .milliseconds(120), totalLatency: .milliseconds(121),
        overhead: .microseconds(80))
    call.setRelayed(.response(Array(answer.utf8)), summary: ChatResponse(
        id: "chatcmpl-bench", created: 1_717_229_159, model: "llama-3.1-8b-instant",
        usage: Usage(promptTokens: 60, completionTokens: 40, totalTokens: 100)))
    return .call(call)
}

/// What `record(_:)` costs the request path, with the crash journal and without: the writer is not running,
/// so only the enqueue (and the journal's encode and write) is timed. Rounds alternate; the median is kept.
func journalCost(_ options: Options, directory: URL, logger: Logger) async throws {
    try await journalCost(label: "short chat as wire bytes", entries: (0..<min(options.records, 20_000)).map { _ in sampleWireRecord() },
                          directory: directory, logger: logger)
    let large = String(repeating: "x", count: 1 << 20)
    try await journalCost(label: "1 MB prompt as wire bytes", entries: (0..<100).map { _ in sampleWireRecord(prompt: large) },
                          directory: directory, logger: logger)
}

func journalCost(label: String, entries: [LogEntry], directory: URL, logger: Logger) async throws {
    let (store, task) = try await makeStore(Options([]), directory: directory, logger: logger)
    let count = entries.count
    var timings: [Bool: [Double]] = [false: [], true: []]
    for round in 0..<10 {
        for journal in [false, true] {
            var configuration = LogWriter.Configuration()
            configuration.maxBufferedRecords = count * 2
            configuration.maxBufferedBytes = .max
            if journal { configuration.journalPath = directory.appendingPathComponent("journal-\(round)").path }
            let writer = LogWriter(store: store, configuration: configuration, logger: logger)
            let start = ContinuousClock.now
            for entry in entries { writer.record(entry) }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            timings[journal, default: []].append(seconds / Double(count) * 1e6)
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("journal-\(round)"))
        }
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    let off = median(timings[false] ?? [0])
    let on = median(timings[true] ?? [0])
    print(String(format: "record(_:) per call, %@ (%d records, median of 10 rounds): "
        + "journal off %.2f µs, on %.2f µs, journal adds %.2f µs", label as NSString, count, off, on, on - off))

    // Spilling: past the memory bound `record(_:)` converts the record and appends it to the spill file in
    // binary frames; the JSON encoding the spill file used before is timed beside it.
    var spilled: [Double] = []
    var json: [Double] = []
    for round in 0..<5 {
        var configuration = LogWriter.Configuration()
        configuration.maxBufferedRecords = 1
        configuration.spillPath = directory.appendingPathComponent("spill-\(round)").path
        let writer = LogWriter(store: store, configuration: configuration, logger: logger)
        var start = ContinuousClock.now
        for entry in entries { writer.record(entry) }
        var elapsed = ContinuousClock.now - start
        spilled.append((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) / Double(count) * 1e6)
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("spill-\(round)"))
        start = ContinuousClock.now
        for entry in entries { _ = try JSONCoding.encode(StoredRecord(entry)) }
        elapsed = ContinuousClock.now - start
        json.append((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) / Double(count) * 1e6)
    }
    print(String(format: "  spilled record(_:) %.2f µs (binary frames); converting and encoding it as JSON, as the spill did before: %.2f µs",
                 median(spilled), median(json)))
    try await store.close()
    task?.cancel()
}

func makeStore(_ options: Options, directory: URL, logger: Logger) async throws -> (any LogStore, Task<Void, Never>?) {
    if let url = options.postgresURL {
        let store = try PostgresLogStore(url: url, logger: logger)
        let task = Task { _ = try? await store.run() }
        try await store.migrate()
        return (store, task)
    }
    let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("bench-\(UUID()).db").path, logger: logger)
    try await store.migrate()
    return (store, nil)
}

func run(_ options: Options) async throws {
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-bench-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try await journalCost(options, directory: directory, logger: logger)
    if options.journalOnly { return }
    let backend = options.postgresURL == nil ? "sqlite" : "postgres"
    let entries = (0..<options.records).map { _ in sampleRecord() }

    print("backend   batch  records   seconds   records/s")
    for batchSize in options.batchSizes {
        let (store, task) = try await makeStore(options, directory: directory, logger: logger)
        var configuration = LogWriter.Configuration()
        configuration.batchSize = batchSize
        configuration.maxBufferedRecords = options.records * 2
        let writer = LogWriter(store: store, configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [writer], logger: logger))
        let running = Task { try await group.run() }
        let count = batchSize == 1 ? min(options.records, 5_000) : options.records
        let start = ContinuousClock.now
        for entry in entries.prefix(count) { writer.record(entry) }
        await writer.flush()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "%-8@ %6d %8d %9.3f %11.0f", backend as NSString, batchSize, count, seconds, Double(count) / seconds))
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        try await store.close()
        task?.cancel()
    }

    // Sustained: a fixed arrival rate with the default batch size; the queue must not grow.
    let (store, task) = try await makeStore(options, directory: directory, logger: logger)
    let writer = LogWriter(store: store, logger: logger)
    let group = ServiceGroup(configuration: .init(services: [writer], logger: logger))
    let running = Task { try await group.run() }
    var maxQueued = 0
    let perTick = max(1, options.rate / 100)
    let start = ContinuousClock.now
    var tick = 0
    while ContinuousClock.now - start < .seconds(options.seconds) {
        for _ in 0..<perTick { writer.record(entries[tick % entries.count]) }
        tick += 1
        maxQueued = max(maxQueued, writer.statistics.queued)
        try await Task.sleep(until: start + .milliseconds(10 * tick), clock: .continuous)
    }
    let endQueued = writer.statistics.queued
    let elapsed = ContinuousClock.now - start
    let arrived = Double(tick * perTick) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    await writer.flush()
    // The arrival rate reached is printed too: on a loaded machine the producer itself may fall behind.
    print("sustained \(backend): \(options.rate) records/s for \(options.seconds) s (arrived: \(Int(arrived))/s) -> max queue \(maxQueued), queue at end \(endQueued), written \(writer.statistics.written)")
    await group.triggerGracefulShutdown()
    _ = try? await running.value
    try await store.close()
    task?.cancel()
}

try await run(Options(CommandLine.arguments))
