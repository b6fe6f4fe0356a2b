import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Logging
import NIOCore
import Testing

/// A chat call as the server records it: the client's bytes (with Chronicle members, one of them a key),
/// metadata with extras, and an answer relayed as the upstream's bytes.
func wireCall(_ index: Int = 0, userID: String = "user", relayed: RelayedResponse? = nil) throws -> CallLogRecord {
    let body = #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},"#
        + #"{"role":"user","content":"Question \#(index): what is the capital of France?"}],"temperature":0.2,"#
        + #""api_key":"sk-secret-in-body","metadata":{"application":"app","user_id":"\#(userID)","#
        + #""ticket":\#(index),"tags":["a",{"b":null}]}}"#
    let (wire, options) = try #require(WireChatRequest.scan(ByteBuffer(string: body)))
    var call = CallLogRecord(
        id: .v7(), timestamp: Date(), request: .wire(wire), options: options, provider: "openai",
        model: "openai/gpt-4o-mini", responseMeta: ["region": "eu", "n": 2], upstreamLatency: .milliseconds(412),
        totalLatency: .milliseconds(415), overhead: .microseconds(830), numRetries: 1, wasRateLimited: true,
        streamed: relayed.map { if case .chunks = $0 { true } else { false } } ?? false, httpStatus: 200)
    call.options.internalMetadata = InternalMetadata(gatewayKey: "team-a")
    let answer = #"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024","#
        + #""choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"#
        + #""usage":{"prompt_tokens":21,"completion_tokens":2,"total_tokens":23,"prompt_tokens_details":{"cached_tokens":3}}}"#
    let summary = ChatResponse(id: "chatcmpl-1", created: 1_700_000_000, model: "gpt-4o-mini-2024",
                               usage: Usage(promptTokens: 21, completionTokens: 2, totalTokens: 23,
                                            unknownFields: ["prompt_tokens_details": ["cached_tokens": 3]]))
    call.setRelayed(relayed ?? .response(Array(answer.utf8)), summary: summary)
    return call
}

private func silentLogger() -> Logger {
    var logger = Logger(label: "test-journal")
    logger.logLevel = .critical
    return logger
}

private func segments(in directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".journal") }.sorted()
}

@Suite("Crash journal")
struct JournalTests {
    // MARK: Encoding

    /// A decoded entry stores the same row as the original, for every shape of call (Anthropic Messages calls
    /// with their relayed event stream included) and workflow event; the key the client put in the body is
    /// not in the journal.
    @Test func encodingKeepsTheStoredRow() throws {
        let chunks: [[UInt8]] = [
            Array(#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Pa"}}]}"#.utf8),
            Array(#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"ris"},"finish_reason":"stop"}]}"#.utf8),
        ]
        var typed = CallLogRecord(
            id: .v7(), timestamp: Date(), request: .typed(ChatRequest(model: "claude", messages: [ChatMessage(role: "user", content: .text("hi"))])),
            options: RequestOptions(metadata: RequestMetadata(runID: UUID(), stepIndex: 3, promptVersion: 7)),
            provider: "anthropic", response: ChatResponse(id: "x", model: "claude", choices: [
                ChatChoice(message: ChatMessage(role: "assistant", content: .text("hello"))),
            ], usage: Usage(promptTokens: 1, completionTokens: 1)),
            error: CallError(kind: "upstream", message: "partial", status: 529), totalLatency: .seconds(2),
            httpStatus: 200)
        typed.options.internalMetadata = InternalMetadata(organizationID: "o", projectID: "p", userID: "u")
        let anthropicBody = #"{"model":"anthropic/claude","max_tokens":64,"metadata":{"user_id":"u-1"},"#
            + #""messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}"#
        let messagesWire = try #require(WireMessagesRequest.scan(ByteBuffer(string: anthropicBody)))
        var messages = CallLogRecord(
            id: .v7(), timestamp: Date(),
            request: .messages(MessagesCall(wire: messagesWire, anthropicVersion: "2023-06-01", anthropicBeta: "b-1")),
            options: RequestOptions(), provider: "anthropic", model: "claude", totalLatency: .milliseconds(9),
            streamed: true, httpStatus: 200)
        let events = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
            + "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],"
            + "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
            + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        messages.setRelayed(.anthropicMessages(Array(events.utf8), isEventStream: true),
                            summary: ChatResponse(id: "msg_1", model: "claude", usage: Usage(promptTokens: 3, completionTokens: 1)))
        // A Responses call relayed as a stream, and one relayed as a body: request tag 4, answer tags 5 and 6.
        let responsesWire = try #require(WireResponsesRequest.scan(ByteBuffer(string:
            #"{"model":"openai/gpt-4.1","input":"hi","store":true,"tools":[{"type":"web_search"}],"user":"u-2"}"#)))
        var responses = CallLogRecord(
            id: .v7(), timestamp: Date(), request: .responses(ResponsesCall(wire: responsesWire)), options: RequestOptions(),
            provider: "openai", model: "openai/gpt-4.1", totalLatency: .milliseconds(7), streamed: true, httpStatus: 200)
        let responsesEvents = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":0,"
            + "\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"gpt-4.1\",\"status\":\"completed\","
            + "\"output\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]}],"
            + "\"usage\":{\"input_tokens\":3,\"output_tokens\":1,\"total_tokens\":4}}}\n\n"
        responses.setRelayed(.openAIResponses(Array(responsesEvents.utf8), isEventStream: true),
                             summary: ChatResponse(id: "resp_1", model: "gpt-4.1", usage: Usage(promptTokens: 3, completionTokens: 1)))
        var responsesBody = responses
        responsesBody.streamed = false
        responsesBody.setRelayed(.openAIResponses(Array(#"{"id":"resp_2","object":"response","model":"gpt-4.1","output":[],"status":"completed"}"#.utf8),
                                                 isEventStream: false), summary: ChatResponse(id: "resp_2", model: "gpt-4.1"))
        #expect(StoredRecord(.call(responses)) != StoredRecord(.call(responsesBody)))
        let entries: [LogEntry] = [
            .call(responses),
            .call(responsesBody),
            .call(messages),
            .call(try wireCall()),
            .call(try wireCall(relayed: .chunks(chunks))),
            .call(typed),
            .workflow(.runStart(RunStartEvent(id: UUID(), name: "run", input: ["q": "x"], tags: ["t"]))),
            .workflow(.event(GenericEvent(type: "custom", data: ["k": [1, 2.5, true, nil]]))),
        ]
        let wallTime = Date(timeIntervalSince1970: 1_700_000_123.456)
        for entry in entries {
            var writer = BinaryWriter()
            try LogEntryCodec.encode(entry, wallTime: wallTime, into: &writer)
            #expect(!String(decoding: writer.bytes, as: UTF8.self).contains("sk-secret-in-body"))
            var reader = BinaryReader(writer.bytes)
            let decoded = try LogEntryCodec.decode(&reader)
            #expect(reader.isAtEnd)
            #expect(decoded.wallTime == wallTime)
            #expect(comparable(StoredRecord(decoded.entry, now: decoded.wallTime))
                == comparable(StoredRecord(entry, now: wallTime)))
        }
    }

    /// The record with its JSON columns parsed: object members have no order.
    private func comparable(_ record: StoredRecord) -> [String: JSONValue] {
        guard case .event(let row) = record else {
            return ["workflow": (try? JSONCoding.decode(JSONValue.self, from: Array((EventRow.json(record) ?? "").utf8))) ?? .null]
        }
        var fields: [String: JSONValue] = ["row": .string(EventRow.json(row) ?? "")]
        for (name, text) in [("meta", row.meta), ("response_meta", row.responseMeta ?? "null"),
                             ("chat_request", row.chatRequest), ("chat_response", row.chatResponse),
                             ("error", row.error)] {
            fields[name] = (try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8))) ?? .string(text)
        }
        var plain = row
        plain.meta = ""
        plain.responseMeta = nil
        plain.chatResponse = ""
        plain.error = ""
        fields["row"] = .string(EventRow.json(plain) ?? "")
        return fields
    }

    /// Every prefix of a record, and every one-byte change to it, is refused or decoded without a crash.
    @Test func damagedPayloadsNeverCrashTheDecoder() throws {
        var writer = BinaryWriter()
        try LogEntryCodec.encode(.call(try wireCall()), wallTime: Date(), into: &writer)
        let bytes = writer.bytes
        for length in stride(from: 0, to: bytes.count, by: 7) {
            var reader = BinaryReader(Array(bytes[..<length]))
            #expect(throws: (any Error).self) { try LogEntryCodec.decode(&reader) }
        }
        for index in stride(from: 0, to: bytes.count, by: 5) {
            var damaged = bytes
            damaged[index] ^= 0xA5
            var reader = BinaryReader(damaged)
            _ = try? LogEntryCodec.decode(&reader)
        }
    }

    // MARK: Frames

    private func writeSegment(_ directory: String, count: Int) throws -> (path: String, entries: [LogEntry]) {
        let journal = try Journal(directory: directory)
        let entries = (0..<count).map { event(index: $0) }
        for entry in entries { _ = try journal.append(entry, wallTime: Date()) }
        let path = (directory as NSString).appendingPathComponent(Journal.segmentName(1))
        return (path, entries)
    }

    /// A record cut short by a crash mid-write is not read, whatever length it was cut at; the records
    /// before it are.
    @Test func tornTailIsIgnored() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (path, entries) = try writeSegment(directory, count: 3)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        let frames = JournalFrame.payloads(in: [UInt8](whole)).payloads
        #expect(frames.count == 3)
        let lastStart = frames[2].lowerBound - JournalFrame.headerSize
        for cut in [lastStart + 1, lastStart + 4, lastStart + JournalFrame.headerSize, frames[2].upperBound - 1] {
            try whole.prefix(cut).write(to: URL(fileURLWithPath: path))
            let read = try Journal.read(segment: path)
            #expect(read.end == .tornTail(offset: lastStart))
            #expect(read.entries.map { StoredRecord($0.entry, now: $0.wallTime) }.map(\.runID).count == 2)
            #expect(ids(read.entries.map(\.entry)) == Array(ids(entries).prefix(2)))
        }
    }

    /// A whole frame whose bytes changed stops the segment's replay there, without a crash: the records
    /// before it are stored, the segment is kept aside as `.damaged`, and the writer goes on.
    @Test func damagedFrameStopsReplayOfItsSegment() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let directory = db.directory.appendingPathComponent("journal").path
        let (path, entries) = try writeSegment(directory, count: 3)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let frames = JournalFrame.payloads(in: bytes).payloads
        bytes[frames[1].lowerBound + 3] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try Journal.read(segment: path).end == .damaged(offset: frames[1].lowerBound - JournalFrame.headerSize))

        let running = RunningWriter.start(db.store) { $0.journalPath = directory }
        await running.writer.flush()
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "1")
        #expect(try await db.scalar("SELECT CAST(id AS text) FROM chronicle_events")?.lowercased()
            == ids(entries)[0].uuidString.lowercased())
        #expect(FileManager.default.fileExists(atPath: path + ".damaged"))
        #expect(!FileManager.default.fileExists(atPath: path))
        running.writer.record(event(index: 9))
        await running.writer.flush()
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "2")
        try await running.stop()
        await db.close()
    }

    /// A second journal on a directory in use is refused with a message naming the setting, and is
    /// allowed once the first is gone.
    @Test func oneProcessPerJournal() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first: Journal? = try Journal(directory: directory)
        do {
            _ = try Journal(directory: directory)
            Issue.record("a second journal on the same directory was opened")
        } catch {
            #expect("\(error)".contains("log_journal_path"))
        }
        #expect(first != nil)
        first = nil
        _ = try Journal(directory: directory)
    }

    // MARK: Crash and replay

    /// Records enqueued by a writer that never ran (a process killed before its queue reached the database)
    /// are stored by the next writer on the same journal, before it does anything else. A replay cut short
    /// and done again (the segments put back) stores each record once.
    @Test(arguments: Backend.available)
    func recordsOfACrashedWriterAreReplayedOnce(backend: Backend) async throws {
        let db = try await TestDatabase.make(backend)
        let directory = db.directory.appendingPathComponent("chronicle.journal").path
        var configuration = LogWriter.Configuration()
        configuration.journalPath = directory
        configuration.journalSegmentBytes = 4096
        var calls: [CallLogRecord] = []
        let runID = UUID()
        do {
            let crashed = LogWriter(store: db.store, configuration: configuration, logger: silentLogger())
            crashed.record(.workflow(.runStart(RunStartEvent(id: runID, name: "agent"))))
            for index in 0..<40 {
                let call = try wireCall(index, userID: "caller-\(index)")
                calls.append(call)
                crashed.record(.call(call))
            }
            #expect(crashed.statistics.journalFailures == 0)
        }
        let left = segments(in: directory)
        #expect(left.count > 1, "the segments rotated at their size")
        let saved = try left.map { try Data(contentsOf: URL(fileURLWithPath: directory + "/" + $0)) }

        func checkStoredOnce() async throws {
            #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "40")
            #expect(try await db.scalar("SELECT CAST(count(DISTINCT request_user_id) AS text) FROM chronicle_events") == "40")
            #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events WHERE CAST(meta AS text) LIKE '%chronicle_storage_error%'") == "0")
            #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_runs") == "1")
        }

        let second = RunningWriter.start(db.store) { $0 = configuration; $0.initialRetryDelay = .milliseconds(5) }
        await second.writer.flush()
        try await checkStoredOnce()
        #expect(second.writer.statistics.journalReplayed == 41)
        let row = try #require(try await db.rows(
            "SELECT CAST(chat_request AS text) AS request, request_user_id, gateway_key, CAST(input_tokens AS text) AS input FROM chronicle_events WHERE request_user_id = 'caller-7'").first)
        #expect(row["request"]??.contains("Question 7") == true)
        #expect(row["request"]??.contains("sk-secret-in-body") == false)
        #expect(row["gateway_key"] == "team-a")
        #expect(row["input"] == "21")
        #expect(segments(in: directory).isEmpty, "replayed segments are deleted")
        try await second.stop()

        // A crash during that replay would have left the segments: the next start replays them again.
        for (name, data) in zip(left, saved) { try data.write(to: URL(fileURLWithPath: directory + "/" + name)) }
        let third = RunningWriter.start(db.store) { $0 = configuration }
        await third.writer.flush()
        try await checkStoredOnce()
        // The rows already there are skipped by the insert, not refused: no batch failed, nothing was
        // isolated, replaced or dead-lettered.
        let statistics = third.writer.statistics
        #expect(statistics.journalReplayed == 41)
        #expect(statistics.failedBatches == 0)
        #expect(statistics.replacedRecords == 0 && statistics.deadLettered == 0)
        #expect(segments(in: directory).isEmpty)
        try await third.stop()
        await db.close()
    }

    /// Under steady load the journal is cut back as batches are stored: closed segments go once their
    /// records are stored, and a graceful shutdown leaves none.
    @Test func segmentsAreDeletedOnceTheirBatchesCommit() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let directory = db.directory.appendingPathComponent("journal").path
        let running = RunningWriter.start(db.store) {
            $0.journalPath = directory
            $0.journalSegmentBytes = 4096
            $0.batchSize = 20
            $0.flushInterval = .milliseconds(5)
        }
        var most = 0
        for round in 0..<20 {
            for index in 0..<25 { running.writer.record(.call(try wireCall(round * 25 + index))) }
            await running.writer.flush()
            most = max(most, segments(in: directory).count)
            #expect(segments(in: directory).count <= 1, "only the active segment is left once all is stored")
        }
        #expect(try await db.scalar("SELECT CAST(count(*) AS text) FROM chronicle_events") == "500")
        #expect(running.writer.journal?.openSegmentCount ?? 0 <= 1)
        try await running.stop()
        #expect(segments(in: directory).isEmpty)
        await db.close()
    }

    /// Records that go to the spill file settle their journal segment; those left in memory at a shutdown
    /// with the database down and no spill file stay in the journal and are stored at the next start.
    @Test func shutdownWithoutSpillKeepsRecordsInTheJournal() async throws {
        let db = try await TestDatabase.make(.sqlite)
        let store = FlakyStore(db.store)
        store.isDown = true
        let directory = db.directory.appendingPathComponent("journal").path
        let first = RunningWriter.start(store) { $0.journalPath = directory }
        let entries = (0..<10).map { event(index: $0) }
        for entry in entries { first.writer.record(entry) }
        try await first.stop()
        #expect(store.storedIDs.isEmpty)
        #expect(!segments(in: directory).isEmpty)
        store.isDown = false
        let second = RunningWriter.start(store) { $0.journalPath = directory }
        await second.writer.flush()
        #expect(store.storedIDs == ids(entries))
        try await second.stop()
        #expect(segments(in: directory).isEmpty)
        await db.close()
    }
}
