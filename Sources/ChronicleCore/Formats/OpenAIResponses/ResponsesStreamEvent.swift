/// One event of a Responses API stream, as the gateway writes it for a translated answer: its `type`
/// (`response.created`, `response.output_text.delta`, …), its `sequence_number`, and its other members.
public struct ResponsesStreamEvent: Sendable, Hashable {
    public var type: String
    public var sequenceNumber: Int
    /// The members besides `type` and `sequence_number`.
    public var members: [String: JSONValue]

    public init(type: String, sequenceNumber: Int, members: [String: JSONValue]) {
        self.type = type
        self.sequenceNumber = sequenceNumber
        self.members = members
    }

    /// The event's JSON object, as its `data:` line holds it.
    public var json: JSONValue {
        var object = members
        object["type"] = .string(type)
        object["sequence_number"] = .integer(Int64(sequenceNumber))
        return .object(object)
    }

    /// The event as server-sent-event bytes: `event: TYPE`, then its JSON on one `data:` line.
    public func serverSentEvent() throws -> [UInt8] {
        var bytes = Array("event: \(type)\ndata: ".utf8)
        bytes += try JSONCoding.encodeBytes(json)
        bytes += Array("\n\n".utf8)
        return bytes
    }
}
