import ChronicleCore
import Foundation
import NIOCore

/// A compact binary form of a log entry, for the crash journal.
///
/// It is written on the request path, so it avoids JSON wherever a call's common fields are concerned: the
/// request and a relayed answer are copied as the bytes they already are, metadata values are written as
/// tagged binary values. JSON remains only for what is rare or small on a call (an error, a typed answer
/// from a translating provider, a typed request from the embedding API) and for run and step events, which
/// the call path does not send. Generic events are written field by field: their JSON form leaves out the
/// id the gateway gave them, which a replay must keep to store each once.
///
/// The encoding keeps what the stored row is made of (``StoredRecord/init(_:now:)``), not the routing
/// options or the attempt list: a decoded entry stores the same row as the original, and nothing more is
/// needed of it. Provider keys are never part of it: the request is recorded without Chronicle's members,
/// and the options it keeps are metadata only.
enum LogEntryCodec {
    /// Bumped whenever the layout changes; a reader refuses versions it does not know.
    static let version: UInt8 = 1

    private enum EntryTag: UInt8 { case call = 1, workflow = 2, genericEvent = 3 }
    private enum RequestTag: UInt8 {
        case wire = 1, typedJSON = 2, anthropicMessages = 3, openAIResponses = 4, embeddings = 5
    }
    private enum ResponseTag: UInt8 {
        case none = 0, relayedResponse = 1, relayedChunks = 2, anthropicMessage = 3, anthropicEventStream = 4
        case openAIResponse = 5, openAIResponsesEventStream = 6
        /// An embeddings answer recorded as its summary only; with its body (vectors kept) too.
        case embeddingsSummary = 7, embeddingsWithVectors = 8
    }
    private enum SummaryTag: UInt8 { case none = 0, compact = 1, json = 2 }
    private enum ValueTag: UInt8 { case null = 0, bool = 1, integer = 2, double = 3, string = 4, array = 5, object = 6 }

    /// Writes `entry`, with `wallTime` (the time a replay stores for events that carry none), to `writer`.
    static func encode(_ entry: LogEntry, wallTime: Date, into writer: inout BinaryWriter) throws {
        writer.put(version)
        writer.put(wallTime)
        switch entry {
        case .call(let call):
            writer.put(EntryTag.call.rawValue)
            try encode(call, into: &writer)
        case .workflow(.event(let event)):
            writer.put(EntryTag.genericEvent.rawValue)
            writer.put(event.id)
            writer.put(event.type)
            writer.put(event.runID)
            writer.put(event.stepID)
            writer.putOptional(event.data) { encode($1, into: &$0) }
            writer.putOptional(event.error) { encode($1, into: &$0) }
            writer.putOptional(event.time) { $0.put($1) }
        case .workflow(let event):
            writer.put(EntryTag.workflow.rawValue)
            writer.put(bytes: try JSONCoding.encodeBytes(event))
        }
    }

    /// Reads an entry written by ``encode(_:wallTime:into:)``.
    static func decode(_ reader: inout BinaryReader) throws -> (entry: LogEntry, wallTime: Date) {
        guard try reader.uint8() == version else { throw StorageError("unknown journal record version") }
        let wallTime = try reader.date()
        switch EntryTag(rawValue: try reader.uint8()) {
        case .call:
            return (.call(try decodeCall(&reader)), wallTime)
        case .workflow:
            let range = try reader.byteRange()
            return (.workflow(try JSONCoding.decode(WorkflowEvent.self, from: reader.bytes[range])), wallTime)
        case .genericEvent:
            let event = GenericEvent(
                id: try reader.uuid(), type: try reader.string(), runID: try reader.optionalUUID(),
                stepID: try reader.optionalUUID(), data: try reader.optional { try decodeValue(&$0, depth: 0) },
                error: try reader.optional { try decodeValue(&$0, depth: 0) },
                time: try reader.optional { try $0.date() })
            return (.workflow(.event(event)), wallTime)
        case nil:
            throw BinaryReader.Truncated()
        }
    }

    // MARK: Calls

    private static func encode(_ call: CallLogRecord, into writer: inout BinaryWriter) throws {
        writer.put(call.id)
        writer.put(call.timestamp)
        switch call.request {
        case .wire(let request):
            writer.put(RequestTag.wire.rawValue)
            let length = writer.reserveLength()
            request.appendRecordedBytes(to: &writer.bytes)
            writer.patchLength(at: length)
        case .typed(let request):
            writer.put(RequestTag.typedJSON.rawValue)
            writer.put(bytes: try JSONCoding.encodeBytes(request))
        case .messages(let call):
            // The client's Anthropic body as it came, and the headers sent upstream with it.
            writer.put(RequestTag.anthropicMessages.rawValue)
            writer.put(bytes: call.wire.body.readableBytesView)
            writer.put(call.anthropicVersion)
            writer.put(call.anthropicBeta)
        case .embeddings(let request):
            // The client's body as it came; it holds no Chronicle members.
            writer.put(RequestTag.embeddings.rawValue)
            writer.put(bytes: request.body.readableBytesView)
        case .responses(let call):
            // The client's Responses body as it came.
            writer.put(RequestTag.openAIResponses.rawValue)
            writer.put(bytes: call.wire.body.readableBytesView)
        }
        encode(call.options.metadata, into: &writer)
        let embedder = call.options.internalMetadata
        writer.put(embedder.organizationID)
        writer.put(embedder.projectID)
        writer.put(embedder.userID)
        writer.put(embedder.gatewayKey)
        writer.put(call.provider)
        writer.put(call.model)
        switch call.relayedResponse {
        case nil:
            writer.put(ResponseTag.none.rawValue)
        case .response(let bytes)?:
            writer.put(ResponseTag.relayedResponse.rawValue)
            writer.put(bytes: bytes)
        case .chunks(let chunks)?:
            writer.put(ResponseTag.relayedChunks.rawValue)
            writer.put(UInt32(truncatingIfNeeded: chunks.count))
            for chunk in chunks { writer.put(bytes: chunk) }
        case .anthropicMessages(let bytes, let isEventStream)?:
            writer.put((isEventStream ? ResponseTag.anthropicEventStream : .anthropicMessage).rawValue)
            writer.put(bytes: bytes)
        case .embeddings(let summary, let body)?:
            writer.put((body == nil ? ResponseTag.embeddingsSummary : .embeddingsWithVectors).rawValue)
            writer.put(bytes: try JSONCoding.encodeBytes(summary))
            if let body { writer.put(bytes: body) }
        case .openAIResponses(let bytes, let isEventStream)?:
            writer.put((isEventStream ? ResponseTag.openAIResponsesEventStream : .openAIResponse).rawValue)
            writer.put(bytes: bytes)
        }
        try encodeSummary(call.responseSummary, into: &writer)
        writer.putOptional(call.responseMeta) { encode($1, into: &$0) }
        try writer.putOptional(call.error.map { try JSONCoding.encodeBytes($0) }) { $0.put(bytes: $1) }
        writer.put(call.upstreamLatency)
        writer.put(call.totalLatency)
        writer.put(call.overhead)
        writer.put(call.numRetries)
        writer.put(call.wasRateLimited)
        writer.put(call.streamed)
        writer.put(call.httpStatus)
        writer.put(call.chunkCount)
    }

    private static func decodeCall(_ reader: inout BinaryReader) throws -> CallLogRecord {
        let id = try reader.uuid()
        let timestamp = try reader.date()
        let request: CallRequest
        switch RequestTag(rawValue: try reader.uint8()) {
        case .wire:
            let range = try reader.byteRange()
            request = try wireRequest(ByteBuffer(bytes: reader.bytes[range]))
        case .typedJSON:
            let range = try reader.byteRange()
            request = .typed(try JSONCoding.decode(ChatRequest.self, from: reader.bytes[range]))
        case .anthropicMessages:
            let range = try reader.byteRange()
            let body = ByteBuffer(bytes: reader.bytes[range])
            // The scan accepted this body once (or its re-encoding, which is what was kept).
            guard let wire = WireMessagesRequest.scan(body, requiringMaxTokens: false) else {
                throw BinaryReader.Truncated()
            }
            request = .messages(MessagesCall(wire: wire, anthropicVersion: try reader.optionalString(),
                                             anthropicBeta: try reader.optionalString()))
        case .embeddings:
            let range = try reader.byteRange()
            // The decoder accepted this body once, as it came.
            guard let decoded = try? EmbeddingsRequest.decode(ByteBuffer(bytes: reader.bytes[range])) else {
                throw BinaryReader.Truncated()
            }
            request = .embeddings(decoded)
        case .openAIResponses:
            let range = try reader.byteRange()
            // The scan accepted this body once (or its re-encoding, which is what was kept).
            guard let wire = WireResponsesRequest.scan(ByteBuffer(bytes: reader.bytes[range])) else {
                throw BinaryReader.Truncated()
            }
            request = .responses(ResponsesCall(wire: wire))
        case nil:
            throw BinaryReader.Truncated()
        }
        var options = RequestOptions()
        options.metadata = try decodeMetadata(&reader)
        options.internalMetadata = InternalMetadata(
            organizationID: try reader.optionalString(), projectID: try reader.optionalString(),
            userID: try reader.optionalString(), gatewayKey: try reader.optionalString())
        let provider = try reader.optionalString()
        let model = try reader.optionalString()
        let relayed: RelayedResponse?
        let tag = ResponseTag(rawValue: try reader.uint8())
        switch tag {
        case .none?: relayed = nil
        case .relayedResponse?: relayed = .response(try reader.byteArray())
        case .relayedChunks?:
            let count = Int(try reader.uint32())
            var chunks: [[UInt8]] = []
            // Each chunk takes at least its 4-byte length: a count larger than that is not a record.
            guard count <= (reader.end - reader.offset) / 4 else { throw BinaryReader.Truncated() }
            chunks.reserveCapacity(count)
            for _ in 0..<count { chunks.append(try reader.byteArray()) }
            relayed = .chunks(chunks)
        case .anthropicMessage?: relayed = .anthropicMessages(try reader.byteArray(), isEventStream: false)
        case .anthropicEventStream?: relayed = .anthropicMessages(try reader.byteArray(), isEventStream: true)
        case .embeddingsSummary?, .embeddingsWithVectors?:
            let withVectors = tag == .embeddingsWithVectors
            let summary = try JSONCoding.decode(EmbeddingsSummary.self, from: reader.bytes[try reader.byteRange()])
            relayed = .embeddings(summary, body: withVectors ? try reader.byteArray() : nil)
        case .openAIResponse?: relayed = .openAIResponses(try reader.byteArray(), isEventStream: false)
        case .openAIResponsesEventStream?: relayed = .openAIResponses(try reader.byteArray(), isEventStream: true)
        case nil: throw BinaryReader.Truncated()
        }
        let summary = try decodeSummary(&reader)
        let responseMeta = try reader.optional { try decodeValue(&$0, depth: 0) }
        let error = try reader.optional { reader in
            try JSONCoding.decode(CallError.self, from: reader.bytes[try reader.byteRange()])
        }
        var call = CallLogRecord(
            id: id, timestamp: timestamp, request: request, options: options, provider: provider, model: model,
            response: summary, responseMeta: responseMeta, error: error,
            upstreamLatency: try reader.optionalDuration(), totalLatency: try reader.duration(),
            overhead: try reader.optionalDuration(), numRetries: try reader.int(),
            wasRateLimited: try reader.bool(), streamed: try reader.bool(), httpStatus: try reader.int(),
            chunkCount: try reader.int())
        if let relayed { call.setRelayed(relayed, summary: summary) }
        return call
    }

    /// The wire request as recorded (Chronicle's members already left out). The scan accepted it once
    /// with those members; should it not now, the typed decoder reads it.
    private static func wireRequest(_ body: ByteBuffer) throws -> CallRequest {
        if let scanned = WireChatRequest.scan(body) { return .wire(scanned.request) }
        return .typed(try JSONCoding.decode(ChatRequest.self, from: body.readableBytesView))
    }

    /// What was read from a relayed answer (id, model, usage) is written field by field; a response with
    /// choices or other members (an answer a provider's format was translated into) goes as JSON.
    private static func encodeSummary(_ summary: ChatResponse?, into writer: inout BinaryWriter) throws {
        guard let summary else { return writer.put(SummaryTag.none.rawValue) }
        guard summary.choices.isEmpty, summary.unknownFields.isEmpty else {
            writer.put(SummaryTag.json.rawValue)
            writer.put(bytes: try JSONCoding.encodeBytes(summary))
            return
        }
        writer.put(SummaryTag.compact.rawValue)
        writer.put(summary.id)
        writer.put(summary.created)
        writer.put(summary.model)
        writer.put(summary.systemFingerprint)
        writer.putOptional(summary.usage) { writer, usage in
            writer.put(usage.promptTokens)
            writer.put(usage.completionTokens)
            writer.put(usage.totalTokens)
            encode(.object(usage.unknownFields), into: &writer)
        }
    }

    private static func decodeSummary(_ reader: inout BinaryReader) throws -> ChatResponse? {
        switch SummaryTag(rawValue: try reader.uint8()) {
        case .none?:
            return nil
        case .json?:
            return try JSONCoding.decode(ChatResponse.self, from: reader.bytes[try reader.byteRange()])
        case .compact?:
            let id = try reader.optionalString()
            let created = try reader.int64()
            let model = try reader.optionalString()
            let fingerprint = try reader.optionalString()
            let usage = try reader.optional { reader in
                Usage(promptTokens: try reader.optionalInt(), completionTokens: try reader.optionalInt(),
                      totalTokens: try reader.optionalInt(),
                      unknownFields: try decodeValue(&reader, depth: 0).objectValue ?? [:])
            }
            return ChatResponse(id: id, created: created, model: model, systemFingerprint: fingerprint, usage: usage)
        case nil:
            throw BinaryReader.Truncated()
        }
    }

    // MARK: Metadata

    private static func encode(_ metadata: RequestMetadata, into writer: inout BinaryWriter) {
        writer.put(metadata.application)
        writer.put(metadata.environment)
        writer.put(metadata.organizationID)
        writer.put(metadata.projectID)
        writer.put(metadata.userID)
        writer.put(metadata.workflowID)
        writer.put(metadata.workflowName)
        writer.put(metadata.runID)
        writer.put(metadata.stepID)
        writer.put(metadata.stepIndex.map(Int64.init))
        writer.put(metadata.promptID)
        writer.put(metadata.promptVersion.map(Int64.init))
        encode(.object(metadata.extra), into: &writer)
    }

    private static func decodeMetadata(_ reader: inout BinaryReader) throws -> RequestMetadata {
        func uint32(_ value: Int?) throws -> UInt32? {
            guard let value else { return nil }
            guard let exact = UInt32(exactly: value) else { throw BinaryReader.Truncated() }
            return exact
        }
        return RequestMetadata(
            application: try reader.optionalString(), environment: try reader.optionalString(),
            organizationID: try reader.optionalString(), projectID: try reader.optionalString(),
            userID: try reader.optionalString(), workflowID: try reader.optionalString(),
            workflowName: try reader.optionalString(), runID: try reader.optionalUUID(),
            stepID: try reader.optionalUUID(), stepIndex: try uint32(try reader.optionalInt()),
            promptID: try reader.optionalString(), promptVersion: try uint32(try reader.optionalInt()),
            extra: try decodeValue(&reader, depth: 0).objectValue ?? [:])
    }

    // MARK: JSON values

    private static func encode(_ value: JSONValue, into writer: inout BinaryWriter) {
        switch value {
        case .null: writer.put(ValueTag.null.rawValue)
        case .bool(let flag):
            writer.put(ValueTag.bool.rawValue)
            writer.put(flag)
        case .integer(let number):
            writer.put(ValueTag.integer.rawValue)
            writer.put(number)
        case .double(let number):
            writer.put(ValueTag.double.rawValue)
            writer.put(number)
        case .string(let text):
            writer.put(ValueTag.string.rawValue)
            writer.put(text)
        case .array(let items):
            writer.put(ValueTag.array.rawValue)
            writer.put(UInt32(truncatingIfNeeded: items.count))
            for item in items { encode(item, into: &writer) }
        case .object(let members):
            writer.put(ValueTag.object.rawValue)
            writer.put(UInt32(truncatingIfNeeded: members.count))
            for (key, item) in members {
                writer.put(key)
                encode(item, into: &writer)
            }
        }
    }

    /// Nesting deeper than this is not something the gateway wrote: it stops a corrupted record from
    /// recursing without end.
    private static let maxDepth = 512

    private static func decodeValue(_ reader: inout BinaryReader, depth: Int) throws -> JSONValue {
        guard depth < maxDepth else { throw BinaryReader.Truncated() }
        switch ValueTag(rawValue: try reader.uint8()) {
        case .null?: return .null
        case .bool?: return .bool(try reader.bool())
        case .integer?: return .integer(try reader.int64())
        case .double?: return .double(try reader.double())
        case .string?: return .string(try reader.string())
        case .array?:
            let count = Int(try reader.uint32())
            // Every value takes at least one byte.
            guard count <= reader.end - reader.offset else { throw BinaryReader.Truncated() }
            var items: [JSONValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try decodeValue(&reader, depth: depth + 1)) }
            return .array(items)
        case .object?:
            let count = Int(try reader.uint32())
            guard count <= reader.end - reader.offset else { throw BinaryReader.Truncated() }
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(count)
            for _ in 0..<count {
                let key = try reader.string()
                members[key] = try decodeValue(&reader, depth: depth + 1)
            }
            return .object(members)
        case nil:
            throw BinaryReader.Truncated()
        }
    }
}
