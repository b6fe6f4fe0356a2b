import ChronicleCore
import ChronicleStorage
import ChronicleTesting
import Foundation
import Testing

@Suite("Gateway shutdown")
struct GatewayShutdownTests {
    /// A library user who shuts the gateway down keeps the last calls: `shutdown()` flushes the log writer,
    /// so the rows are in the database when it is opened again, although no batch was due yet.
    @Test func shutdownWritesQueuedRecords() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-shutdown-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("chronicle.db").path
        let store = try await SQLiteLogStore.open(path: path)
        try await store.migrate()
        // Nothing is due by size or age: only a flush writes these records.
        let running = RunningWriter.start(store) { configuration in
            configuration.batchSize = 1000
            configuration.flushInterval = .seconds(3600)
        }
        let upstream = try await MockUpstream.start(.json("""
            {"id":"c1","object":"chat.completion","created":1,"model":"m",
             "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}
            """))
        let gateway = try Gateway.Builder()
            .withConfiguration(GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")]))
            .withoutDefaultProviders()
            .withLogSink(running.writer)
            .build()
        for _ in 0..<3 {
            _ = try await gateway.send(ChatRequest(model: "p/m", messages: [ChatMessage(role: "user", content: .text("Hi"))]))
                .collect()
        }
        try await gateway.shutdown(flushTimeout: .seconds(30))
        await upstream.stop()

        let reopened = try await SQLiteLogStore.open(path: path)
        let calls = try await reopened.listCalls(ListQuery())
        try await reopened.close()
        #expect(calls.items.count == 3)

        try await running.stop()
        try await store.close()
    }

    /// The flush gives up at its deadline when the records cannot be written (here: no writer task runs).
    @Test func flushHonoursItsDeadline() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-flush-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await store.migrate()
        let writer = LogWriter(store: store)
        writer.record(event())
        let flushed = await writer.flush(deadline: .now + .milliseconds(50))
        #expect(!flushed)
        #expect(writer.statistics.queued == 1)
        try await store.close()
    }
}
