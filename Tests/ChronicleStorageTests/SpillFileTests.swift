import ChronicleCore
@testable import ChronicleStorage
import Foundation
import Testing

@Suite("Spill file")
struct SpillFileTests {
    /// Whole seconds: the JSON lines of earlier versions keep times to the millisecond.
    private func records() throws -> [StoredRecord] {
        let time = Date(timeIntervalSince1970: 1_700_000_000)
        var wire = try wireCall(1)
        wire.timestamp = time
        let prompt = String(repeating: "a \"quoted\" line\n", count: 2000)
        var typed = CallLogRecord(
            id: .v7(), timestamp: time, request: .typed(ChatRequest(model: "m", messages: [
                ChatMessage(role: "user", content: .text(prompt)),
            ])), options: RequestOptions(), totalLatency: .milliseconds(3), httpStatus: 502)
        typed.error = CallError(kind: "upstream", message: "bad gateway", status: 502)
        return [
            StoredRecord(.call(wire)),
            StoredRecord(.call(typed)),
            StoredRecord(.workflow(.runStart(RunStartEvent(id: UUID(), name: "run", time: time)))),
            StoredRecord(.workflow(.event(GenericEvent(type: "e", data: ["i": 4], time: time)))),
        ]
    }

    private func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("spill-\(UUID())").path
    }

    /// The binary form stores the same row, column for column.
    @Test func binaryRecordsRoundTrip() throws {
        for record in try records() {
            var writer = BinaryWriter()
            try StoredRecordCodec.encode(record, into: &writer)
            var reader = BinaryReader(writer.bytes)
            let decoded = try StoredRecordCodec.decode(&reader)
            #expect(decoded == record, "\(decoded) \(record)")
            #expect(reader.isAtEnd)
        }
    }

    /// A row spilled by the build before `cost_usd` (version 1: no cost at the end) is still read, with
    /// no cost; the current version keeps the cost.
    @Test func rowsSpilledBeforeCostAreRead() throws {
        var call = sampleCall()
        call.provider = "openai"
        let prices = PriceTable().overriding([ModelPrice(provider: "openai", model: "llama3-8b-8192",
                                                         inputPerMillion: 1, outputPerMillion: 1)])
        let record = StoredRecord(.call(call), prices: prices)
        guard case .event(let row) = record else { throw CancellationError() }
        #expect(row.costUSD == 15.0 / 1_000_000)
        var writer = BinaryWriter()
        try StoredRecordCodec.encode(record, into: &writer)
        var reader = BinaryReader(writer.bytes)
        #expect(try StoredRecordCodec.decode(&reader) == record)
        // Version 1: the version byte, and the row without the cost's presence byte and value.
        var old = Array(writer.bytes.dropLast(9))
        old[0] = 1
        var oldReader = BinaryReader(old)
        var expected = row
        expected.costUSD = nil
        #expect(try StoredRecordCodec.decode(&oldReader) == .event(expected))
        #expect(oldReader.isAtEnd)
    }

    /// A binary spill file is read back in order after a restart; a record cut short by a crash is cut
    /// off, and the next append follows the last whole record.
    @Test func binaryFileSurvivesATornAppend() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try records()
        let spill = try SpillFile(path: path, format: .binary)
        try spill.append(Array(records.prefix(3)))
        spill.close()
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(whole.starts(with: SpillFile.binaryMagic))
        try whole.dropLast(5).write(to: URL(fileURLWithPath: path))

        let reopened = try SpillFile(path: path, format: .binary)
        #expect(reopened.format == .binary)
        #expect(reopened.unreadCount == 2)
        try reopened.append([records[3]])
        #expect(try reopened.readBatch(limit: 10) == [records[0], records[1], records[3]])
        reopened.commitRead()
        #expect(reopened.isEmpty)
        reopened.close()
    }

    /// A spill file of JSON lines left by an earlier version is replayed; records spilled meanwhile follow
    /// it in the same format, and once it has been emptied the file is binary.
    @Test func jsonLinesOfAnEarlierVersionAreRead() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try records()
        let earlier = try SpillFile(path: path)
        try earlier.append(Array(records.prefix(2)))
        earlier.close()

        let spill = try SpillFile(path: path, format: .binary)
        #expect(spill.format == .jsonLines)
        #expect(spill.unreadCount == 2)
        try spill.append([records[2]])
        #expect(try spill.readBatch(limit: 10) == Array(records.prefix(3)))
        spill.commitRead()
        try spill.append([records[3]])
        #expect(spill.format == .binary)
        spill.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).starts(with: SpillFile.binaryMagic))
        let reopened = try SpillFile(path: path, format: .binary)
        #expect(try reopened.readBatch(limit: 10) == [records[3]])
        reopened.close()
    }

    /// Records put ahead of the unread ones at a shutdown keep the file's format and the order.
    @Test func prependKeepsOrderInBinary() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let records = try records()
        let spill = try SpillFile(path: path, format: .binary)
        try spill.append(Array(records.suffix(2)))
        try spill.prepend(Array(records.prefix(2)))
        #expect(spill.unreadCount == 4)
        #expect(try spill.readBatch(limit: 10) == records)
        spill.close()
    }
}
