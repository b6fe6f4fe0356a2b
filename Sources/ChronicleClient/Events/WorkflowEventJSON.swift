import Foundation

/// The workflow events the client sends, in the JSON the gateways read on `/v1/events` (`run:start`,
/// `run:update`, `step:start`, `step:end`, `step:error`, and generic events). Each carries its own `time`,
/// so that a batch delivered late still records when things happened.
enum WorkflowEventJSON {
    static func runStart(id: UUID, name: String, description: String?, application: String?, environment: String?,
                         input: JSONValue?, tags: [String], info: [String: JSONValue], time: Date) -> JSONValue {
        var event: [String: JSONValue] = [
            "type": "run:start", "id": uuid(id), "name": .string(name), "tags": .array(tags.map(JSONValue.string)),
            // Always an object: the HTTP route makes it one, so the embedded mode stores the same.
            "info": .object(info), "time": timestamp(time),
        ]
        event["description"] = description.map(JSONValue.string)
        event["application"] = application.map(JSONValue.string)
        event["environment"] = environment.map(JSONValue.string)
        event["input"] = input
        return .object(event)
    }

    static func runUpdate(id: UUID, status: String, output: JSONValue?, info: [String: JSONValue]?, time: Date)
        -> JSONValue
    {
        var event: [String: JSONValue] = ["type": "run:update", "id": uuid(id), "status": .string(status),
                                          "time": timestamp(time)]
        event["output"] = output
        event["info"] = info.map(JSONValue.object)
        return .object(event)
    }

    static func stepStart(runID: UUID, stepID: UUID, parent: UUID?, type: String, name: String, input: JSONValue?,
                          tags: [String], info: [String: JSONValue]?, time: Date) -> JSONValue {
        var data: [String: JSONValue] = ["type": .string(type), "name": .string(name),
                                         "tags": .array(tags.map(JSONValue.string))]
        data["parent_step"] = parent.map(uuid)
        data["input"] = input
        data["info"] = info.map(JSONValue.object)
        return ["type": "step:start", "run_id": uuid(runID), "step_id": uuid(stepID), "time": timestamp(time),
                "data": .object(data)]
    }

    static func stepEnd(runID: UUID, stepID: UUID, output: JSONValue, info: [String: JSONValue]?, time: Date)
        -> JSONValue
    {
        var data: [String: JSONValue] = ["output": output]
        data["info"] = info.map(JSONValue.object)
        return ["type": "step:end", "run_id": uuid(runID), "step_id": uuid(stepID), "time": timestamp(time),
                "data": .object(data)]
    }

    static func stepError(runID: UUID, stepID: UUID, error: JSONValue, time: Date) -> JSONValue {
        ["type": "step:error", "run_id": uuid(runID), "step_id": uuid(stepID), "time": timestamp(time),
         "data": ["error": error]]
    }

    static func generic(type: String, runID: UUID, stepID: UUID?, data: JSONValue?, error: JSONValue?, time: Date)
        -> JSONValue
    {
        var event: [String: JSONValue] = ["type": .string(type), "run_id": uuid(runID), "time": timestamp(time)]
        // Rust Chronicle requires a step id on a generic event; the nil UUID stands for "no step", as in
        // the reference's JavaScript client.
        event["step_id"] = uuid(stepID ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        event["data"] = data
        event["error"] = error
        return .object(event)
    }

    /// An error as a step's or run's recorded error: its description and type.
    static func describe(_ error: any Error) -> JSONValue {
        ["message": .string(String(describing: error)), "type": .string(String(reflecting: type(of: error)))]
    }

    static func uuid(_ id: UUID) -> JSONValue { .string(id.uuidString.lowercased()) }

    static func timestamp(_ date: Date) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return .string(formatter.string(from: date))
    }

    /// `{"events":[...]}` around already encoded events.
    static func batch(_ events: [[UInt8]]) -> [UInt8] {
        var body = Array(#"{"events":["#.utf8)
        for (index, event) in events.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: event)
        }
        body.append(contentsOf: Array("]}".utf8))
        return body
    }
}
