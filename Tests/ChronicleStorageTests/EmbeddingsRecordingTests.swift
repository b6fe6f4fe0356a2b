import ChronicleCore
@testable import ChronicleStorage
import ChronicleTesting
import Foundation
import NIOCore
import Testing

@Suite("Recording embeddings calls")
struct EmbeddingsRecordingTests {
    static let requestBody = #"{"model":"oai/text-embedding-3-small","input":["The food was delicious and the waiter...","Why is the sky blue?"],"encoding_format":"float"}"#

    static func answer() throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/providers/openai_embeddings_response.json")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// One embeddings call made through a gateway (vectors kept or not) against an OpenAI-format mock, as
    /// its log sink receives it.
    static func recordedCall(keepingVectors: Bool) async throws -> CallLogRecord {
        let upstream = try await MockUpstream.start(.json(try answer()))
        let log = InMemoryLog()
        var configuration = GatewayConfiguration(providers: [
            CustomProviderConfig(name: "oai", url: upstream.url(), apiKey: "sk-up", prefix: "oai/"),
        ])
        configuration.logEmbeddingVectors = keepingVectors
        let gateway = try Gateway.Builder().withConfiguration(configuration).withoutDefaultProviders()
            .withLogSink(log).build()
        _ = try await gateway.embed(EmbeddingsRequest.decode(ByteBuffer(string: requestBody)))
        try await gateway.shutdown()
        await upstream.stop()
        return try #require(log.records.first)
    }

    /// The stored row keeps the input, the usage and the API, and in place of the vectors their count and
    /// dimension; with `log_embedding_vectors` on, the answer with its vectors. On both backends.
    @Test(arguments: Backend.available, [false, true])
    func storesCountAndDimensionNotVectors(backend: Backend, keepingVectors: Bool) async throws {
        let call = try await Self.recordedCall(keepingVectors: keepingVectors)
        let db = try await TestDatabase.make(backend)
        try await db.store.write([StoredRecord(.call(call))])
        let row = try #require(try await db.rows("""
            SELECT provider, model, CAST(input_tokens AS text) AS input_tokens, CAST(output_tokens AS text) AS output_tokens,
              CAST(total_tokens AS text) AS total_tokens, CAST(chat_request AS text) AS chat_request,
              CAST(chat_response AS text) AS chat_response, CAST(meta AS text) AS meta
            FROM chronicle_events
            """).first)
        #expect(row["provider"] == "oai")
        #expect(row["model"] == "text-embedding-3-small")
        #expect(row["input_tokens"] == "14")
        #expect(row["total_tokens"] == "14")
        #expect(row["output_tokens"] == .some(nil))
        #expect(json(row["chat_request"] ?? nil) == json(Self.requestBody))
        #expect(json(row["meta"] ?? nil) == ["api": "openai_embeddings"])
        let response = try #require(json(row["chat_response"] ?? nil))
        if keepingVectors {
            #expect(response == json(try Self.answer()))
        } else {
            #expect(response == [
                "object": "list", "model": "text-embedding-3-small",
                "data": ["count": 2, "dimensions": 4, "encoding_format": "float", "vectors": "not stored"],
                "usage": ["prompt_tokens": 14, "total_tokens": 14],
            ])
            let stored: String = (row["chat_response"] ?? nil) ?? ""
            #expect(!stored.contains(#""embedding""#))
        }
        await db.close()
    }

    /// The crash journal keeps an embeddings call as it would be stored: the client's body, and the summary
    /// alone or with the vectors.
    @Test(arguments: [false, true])
    func journalKeepsTheRow(keepingVectors: Bool) async throws {
        let call = try await Self.recordedCall(keepingVectors: keepingVectors)
        var writer = BinaryWriter()
        let wallTime = Date(timeIntervalSince1970: 1_700_000_000)
        try LogEntryCodec.encode(.call(call), wallTime: wallTime, into: &writer)
        var reader = BinaryReader(writer.bytes)
        let decoded = try LogEntryCodec.decode(&reader)
        #expect(reader.isAtEnd)
        guard case .call(let replayed) = decoded.entry else {
            Issue.record("not a call")
            return
        }
        guard case .event(let original) = StoredRecord(.call(call), now: wallTime),
              case .event(let restored) = StoredRecord(decoded.entry, now: wallTime)
        else { return }
        #expect(restored.chatRequest == original.chatRequest)
        #expect(json(restored.chatResponse) == json(original.chatResponse))
        #expect(restored.meta == original.meta)
        #expect(restored.inputTokens == 14)
        if case .embeddings(_, let body) = replayed.relayedResponse {
            #expect((body != nil) == keepingVectors)
        } else {
            Issue.record("the answer was not kept as an embeddings answer")
        }
    }
}
