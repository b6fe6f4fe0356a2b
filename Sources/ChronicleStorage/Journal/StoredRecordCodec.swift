import ChronicleCore
import Foundation

/// A compact binary form of a stored record, for the spill file: a row's columns are written as they are
/// (its JSON columns are already text), so spilling a large prompt copies it instead of escaping it into a
/// JSON document. Run and step events, which are small and rare, are written as JSON.
enum StoredRecordCodec {
    /// Bumped whenever the layout changes; a reader refuses versions it does not know. Version 2 adds
    /// `cost_usd` at the end of a row; version 1 rows (spilled by an earlier build) are read without it.
    static let version: UInt8 = 2

    private enum Tag: UInt8 { case event = 1, workflow = 2 }

    static func encode(_ record: StoredRecord, into writer: inout BinaryWriter) throws {
        writer.put(version)
        switch record {
        case .event(let row):
            writer.put(Tag.event.rawValue)
            encode(row, into: &writer)
        case .workflow(let event):
            writer.put(Tag.workflow.rawValue)
            writer.put(bytes: try JSONCoding.encodeBytes(event))
        }
    }

    static func decode(_ reader: inout BinaryReader) throws -> StoredRecord {
        let recordVersion = try reader.uint8()
        guard recordVersion == 1 || recordVersion == version else { throw StorageError("unknown spill record version") }
        switch Tag(rawValue: try reader.uint8()) {
        case .event?:
            return .event(try decodeRow(&reader, hasCost: recordVersion >= 2))
        case .workflow?:
            return .workflow(try JSONCoding.decode(WorkflowEvent.self, from: reader.bytes[try reader.byteRange()]))
        case nil:
            throw BinaryReader.Truncated()
        }
    }

    private static func encode(_ row: EventRow, into writer: inout BinaryWriter) {
        writer.put(row.id)
        writer.put(row.eventType)
        writer.put(row.organizationID)
        writer.put(row.projectID)
        writer.put(row.userID)
        writer.put(row.chatRequest)
        writer.put(row.chatResponse)
        writer.put(row.error)
        writer.put(row.provider)
        writer.put(row.model)
        writer.put(row.application)
        writer.put(row.environment)
        writer.put(row.requestOrganizationID)
        writer.put(row.requestProjectID)
        writer.put(row.requestUserID)
        writer.put(row.workflowID)
        writer.put(row.workflowName)
        writer.put(row.runID)
        writer.put(row.stepID)
        writer.put(row.stepIndex)
        writer.put(row.promptID)
        writer.put(row.promptVersion)
        writer.put(row.meta)
        writer.put(row.responseMeta)
        writer.put(row.retries)
        writer.putOptional(row.rateLimited) { $0.put($1) }
        writer.put(row.requestLatencyMs)
        writer.put(row.totalLatencyMs)
        writer.put(row.createdAt)
        writer.put(row.inputTokens)
        writer.put(row.outputTokens)
        writer.put(row.totalTokens)
        writer.put(row.cachedTokens)
        writer.put(row.reasoningTokens)
        writer.put(row.httpStatus)
        writer.putOptional(row.streamed) { $0.put($1) }
        writer.putOptional(row.overheadMs) { $0.put($1) }
        writer.put(row.gatewayKey)
        writer.putOptional(row.costUSD) { $0.put($1) }
    }

    private static func decodeRow(_ reader: inout BinaryReader, hasCost: Bool) throws -> EventRow {
        func int64(_ reader: inout BinaryReader) throws -> Int64? { try reader.optional { try $0.int64() } }
        let id = try reader.uuid()
        var row = EventRow(GenericEvent(id: id, type: try reader.string()), now: Date(timeIntervalSince1970: 0))
        row.organizationID = try reader.optionalString()
        row.projectID = try reader.optionalString()
        row.userID = try reader.optionalString()
        row.chatRequest = try reader.string()
        row.chatResponse = try reader.string()
        row.error = try reader.string()
        row.provider = try reader.optionalString()
        row.model = try reader.optionalString()
        row.application = try reader.optionalString()
        row.environment = try reader.optionalString()
        row.requestOrganizationID = try reader.optionalString()
        row.requestProjectID = try reader.optionalString()
        row.requestUserID = try reader.optionalString()
        row.workflowID = try reader.optionalString()
        row.workflowName = try reader.optionalString()
        row.runID = try reader.optionalUUID()
        row.stepID = try reader.optionalUUID()
        row.stepIndex = try int64(&reader)
        row.promptID = try reader.optionalString()
        row.promptVersion = try int64(&reader)
        row.meta = try reader.string()
        row.responseMeta = try reader.optionalString()
        row.retries = try int64(&reader)
        row.rateLimited = try reader.optional { try $0.bool() }
        row.requestLatencyMs = try int64(&reader)
        row.totalLatencyMs = try int64(&reader)
        row.createdAt = try reader.date()
        row.inputTokens = try int64(&reader)
        row.outputTokens = try int64(&reader)
        row.totalTokens = try int64(&reader)
        row.cachedTokens = try int64(&reader)
        row.reasoningTokens = try int64(&reader)
        row.httpStatus = try int64(&reader)
        row.streamed = try reader.optional { try $0.bool() }
        row.overheadMs = try reader.optional { try $0.double() }
        row.gatewayKey = try reader.optionalString()
        if hasCost { row.costUSD = try reader.optional { try $0.double() } }
        return row
    }
}
