import Foundation

/// A workflow event sent by an agent: runs, steps, and free-form events.
///
/// Decoding is strict for the six reserved types (`run:start`, `run:update`, `step:start`, `step:end`,
/// `step:error`, `step:state`): a malformed one is an error naming the field, never silently stored as a
/// generic event. Any other `type` is a generic event.
public enum WorkflowEvent: Sendable, Hashable {
    case runStart(RunStartEvent)
    case runUpdate(RunUpdateEvent)
    case stepStart(StepStartEvent)
    case stepEnd(StepEndEvent)
    case stepError(StepErrorEvent)
    case stepState(StepStateEvent)
    case event(GenericEvent)

    /// The run this event belongs to, if it names one.
    public var runID: UUID? {
        switch self {
        case .runStart(let event): return event.id
        case .runUpdate(let event): return event.id
        case .stepStart(let event): return event.runID
        case .stepEnd(let event): return event.runID
        case .stepError(let event): return event.runID
        case .stepState(let event): return event.runID
        case .event(let event): return event.runID
        }
    }

    public static let reservedTypes: Set<String> = [
        "run:start", "run:update", "step:start", "step:end", "step:error", "step:state",
    ]
}

/// `run:start`: a run begins.
public struct RunStartEvent: Sendable, Hashable {
    public var id: UUID
    public var name: String
    public var description: String?
    public var application: String?
    public var environment: String?
    public var input: JSONValue?
    public var traceID: String?
    public var spanID: String?
    /// Defaults to `started`.
    public var status: String?
    public var tags: [String]
    /// Always an object when present: any other JSON is refused when decoding.
    public var info: [String: JSONValue]?
    public var time: Date?

    public init(id: UUID, name: String, description: String? = nil, application: String? = nil,
                environment: String? = nil, input: JSONValue? = nil, traceID: String? = nil, spanID: String? = nil,
                status: String? = nil, tags: [String] = [], info: [String: JSONValue]? = nil, time: Date? = nil) {
        self.id = id
        self.name = name
        self.description = description
        self.application = application
        self.environment = environment
        self.input = input
        self.traceID = traceID
        self.spanID = spanID
        self.status = status
        self.tags = tags
        self.info = info
        self.time = time
    }
}

/// `run:update`: a run's status, output or info changes. Without `output` the stored output is kept.
public struct RunUpdateEvent: Sendable, Hashable {
    public var id: UUID
    /// Defaults to `finished`.
    public var status: String?
    public var output: JSONValue?
    public var info: [String: JSONValue]?
    public var time: Date?

    public init(id: UUID, status: String? = nil, output: JSONValue? = nil, info: [String: JSONValue]? = nil,
                time: Date? = nil) {
        self.id = id
        self.status = status
        self.output = output
        self.info = info
        self.time = time
    }
}

/// `step:start`.
public struct StepStartEvent: Sendable, Hashable {
    public var stepID: UUID
    public var runID: UUID
    public var time: Date?
    /// The step's kind (`llm`, `tool`, `task`, …).
    public var type: String
    public var name: String?
    public var parentStep: UUID?
    public var spanID: String?
    public var tags: [String]
    public var info: [String: JSONValue]?
    public var input: JSONValue?

    public init(stepID: UUID, runID: UUID, time: Date? = nil, type: String, name: String? = nil,
                parentStep: UUID? = nil, spanID: String? = nil, tags: [String] = [],
                info: [String: JSONValue]? = nil, input: JSONValue? = nil) {
        self.stepID = stepID
        self.runID = runID
        self.time = time
        self.type = type
        self.name = name
        self.parentStep = parentStep
        self.spanID = spanID
        self.tags = tags
        self.info = info
        self.input = input
    }
}

/// `step:end`.
public struct StepEndEvent: Sendable, Hashable {
    public var stepID: UUID
    public var runID: UUID
    public var time: Date?
    public var output: JSONValue
    public var info: [String: JSONValue]?

    public init(stepID: UUID, runID: UUID, time: Date? = nil, output: JSONValue, info: [String: JSONValue]? = nil) {
        self.stepID = stepID
        self.runID = runID
        self.time = time
        self.output = output
        self.info = info
    }
}

/// `step:error`: the error is kept in the step's `error` column, not its output.
public struct StepErrorEvent: Sendable, Hashable {
    public var stepID: UUID
    public var runID: UUID
    public var time: Date?
    public var error: JSONValue

    public init(stepID: UUID, runID: UUID, time: Date? = nil, error: JSONValue) {
        self.stepID = stepID
        self.runID = runID
        self.time = time
        self.error = error
    }
}

/// `step:state`: a step's status changes.
public struct StepStateEvent: Sendable, Hashable {
    public var stepID: UUID
    public var runID: UUID
    public var time: Date?
    public var state: String

    public init(stepID: UUID, runID: UUID, time: Date? = nil, state: String) {
        self.stepID = stepID
        self.runID = runID
        self.time = time
        self.state = state
    }
}

/// Any other event: stored as a `chronicle_events` row with its data kept whatever its JSON type.
public struct GenericEvent: Sendable, Hashable {
    /// Assigned when the event is recorded.
    public var id: UUID
    public var type: String
    public var runID: UUID?
    public var stepID: UUID?
    public var data: JSONValue?
    public var error: JSONValue?
    public var time: Date?

    public init(id: UUID = .v7(), type: String, runID: UUID? = nil, stepID: UUID? = nil, data: JSONValue? = nil,
                error: JSONValue? = nil, time: Date? = nil) {
        self.id = id
        self.type = type
        self.runID = runID
        self.stepID = stepID
        self.data = data
        self.error = error
        self.time = time
    }
}

// MARK: Decoding

extension WorkflowEvent: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        let type = try c.decode(String.self, "type")
        switch type {
        case "run:start":
            self = .runStart(RunStartEvent(
                id: try c.decode(UUID.self, "id"),
                name: try c.decode(String.self, "name"),
                description: try c.decodeIfPresent(String.self, "description"),
                application: try c.decodeIfPresent(String.self, "application"),
                environment: try c.decodeIfPresent(String.self, "environment"),
                input: try c.decodeIfPresent(JSONValue.self, "input"),
                traceID: try c.decodeIfPresent(String.self, "trace_id"),
                spanID: try c.decodeIfPresent(String.self, "span_id"),
                status: try c.decodeIfPresent(String.self, "status"),
                tags: try c.decodeIfPresent([String].self, "tags") ?? [],
                info: try Self.decodeInfo(c, "info"),
                time: try Self.decodeTime(c)))
        case "run:update":
            self = .runUpdate(RunUpdateEvent(
                id: try c.decode(UUID.self, "id"),
                status: try c.decodeIfPresent(String.self, "status"),
                output: try c.decodeIfPresent(JSONValue.self, "output"),
                info: try Self.decodeInfo(c, "info"),
                time: try Self.decodeTime(c)))
        case "step:start":
            let data = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey("data"))
            self = .stepStart(StepStartEvent(
                stepID: try c.decode(UUID.self, "step_id"), runID: try c.decode(UUID.self, "run_id"),
                time: try Self.decodeTime(c),
                type: try data.decode(String.self, "type"),
                name: try data.decodeIfPresent(String.self, "name"),
                parentStep: try data.decodeIfPresent(UUID.self, "parent_step"),
                spanID: try data.decodeIfPresent(String.self, "span_id"),
                tags: try data.decodeIfPresent([String].self, "tags") ?? [],
                info: try Self.decodeInfo(data, "info"),
                input: try data.decodeIfPresent(JSONValue.self, "input")))
        case "step:end":
            let data = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey("data"))
            guard data.contains(AnyCodingKey("output")) else {
                throw DecodingError.keyNotFound(AnyCodingKey("output"), .init(
                    codingPath: data.codingPath, debugDescription: "step:end needs data.output"))
            }
            self = .stepEnd(StepEndEvent(
                stepID: try c.decode(UUID.self, "step_id"), runID: try c.decode(UUID.self, "run_id"),
                time: try Self.decodeTime(c),
                output: try data.decodeIfPresent(JSONValue.self, "output") ?? .null,
                info: try Self.decodeInfo(data, "info")))
        case "step:error":
            let data = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey("data"))
            guard data.contains(AnyCodingKey("error")) else {
                throw DecodingError.keyNotFound(AnyCodingKey("error"), .init(
                    codingPath: data.codingPath, debugDescription: "step:error needs data.error"))
            }
            self = .stepError(StepErrorEvent(
                stepID: try c.decode(UUID.self, "step_id"), runID: try c.decode(UUID.self, "run_id"),
                time: try Self.decodeTime(c),
                error: try data.decodeIfPresent(JSONValue.self, "error") ?? .null))
        case "step:state":
            let data = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey("data"))
            self = .stepState(StepStateEvent(
                stepID: try c.decode(UUID.self, "step_id"), runID: try c.decode(UUID.self, "run_id"),
                time: try Self.decodeTime(c), state: try data.decode(String.self, "state")))
        default:
            self = .event(GenericEvent(
                type: type,
                runID: try c.decodeIfPresent(UUID.self, "run_id"),
                stepID: try c.decodeIfPresent(UUID.self, "step_id"),
                data: try c.decodeIfPresent(JSONValue.self, "data"),
                error: try c.decodeIfPresent(JSONValue.self, "error"),
                time: try Self.decodeTime(c)))
        }
    }

    /// `info` must be an object (or absent/null); anything else is an error naming it.
    static func decodeInfo(_ c: KeyedDecodingContainer<AnyCodingKey>, _ key: String) throws -> [String: JSONValue]? {
        guard let value = try c.decodeIfPresent(JSONValue.self, key), !value.isNull else { return nil }
        guard case .object(let object) = value else {
            throw DecodingError.typeMismatch([String: JSONValue].self, .init(
                codingPath: c.codingPath + [AnyCodingKey(key)], debugDescription: "info must be a JSON object"))
        }
        return object
    }

    /// `time` as RFC 3339, with or without fractional seconds.
    static func decodeTime(_ c: KeyedDecodingContainer<AnyCodingKey>) throws -> Date? {
        guard let text = try c.decodeIfPresent(String.self, "time") else { return nil }
        if let date = RFC3339.parse(text) { return date }
        throw DecodingError.dataCorrupted(.init(
            codingPath: c.codingPath + [AnyCodingKey("time")],
            debugDescription: "time must be an RFC 3339 timestamp such as 2024-06-01T12:00:00Z"))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        func time(_ date: Date?) throws { try c.encodeIfPresent(date.map(RFC3339.format), "time") }
        switch self {
        case .runStart(let e):
            try c.encode("run:start", "type")
            try c.encode(e.id, "id")
            try c.encode(e.name, "name")
            try c.encodeIfPresent(e.description, "description")
            try c.encodeIfPresent(e.application, "application")
            try c.encodeIfPresent(e.environment, "environment")
            try c.encodeIfPresent(e.input, "input")
            try c.encodeIfPresent(e.traceID, "trace_id")
            try c.encodeIfPresent(e.spanID, "span_id")
            try c.encodeIfPresent(e.status, "status")
            try c.encode(e.tags, "tags")
            try c.encodeIfPresent(e.info, "info")
            try time(e.time)
        case .runUpdate(let e):
            try c.encode("run:update", "type")
            try c.encode(e.id, "id")
            try c.encodeIfPresent(e.status, "status")
            try c.encodeIfPresent(e.output, "output")
            try c.encodeIfPresent(e.info, "info")
            try time(e.time)
        case .stepStart(let e):
            try c.encode("step:start", "type")
            try c.encode(e.stepID, "step_id")
            try c.encode(e.runID, "run_id")
            try time(e.time)
            var data: [String: JSONValue] = ["type": .string(e.type), "tags": .array(e.tags.map(JSONValue.string))]
            data["name"] = e.name.map(JSONValue.string)
            data["parent_step"] = e.parentStep.map { .string($0.uuidString.lowercased()) }
            data["span_id"] = e.spanID.map(JSONValue.string)
            data["info"] = e.info.map(JSONValue.object)
            data["input"] = e.input
            try c.encode(data, "data")
        case .stepEnd(let e):
            try c.encode("step:end", "type")
            try c.encode(e.stepID, "step_id")
            try c.encode(e.runID, "run_id")
            try time(e.time)
            var data: [String: JSONValue] = ["output": e.output]
            data["info"] = e.info.map(JSONValue.object)
            try c.encode(data, "data")
        case .stepError(let e):
            try c.encode("step:error", "type")
            try c.encode(e.stepID, "step_id")
            try c.encode(e.runID, "run_id")
            try time(e.time)
            try c.encode(["error": e.error], "data")
        case .stepState(let e):
            try c.encode("step:state", "type")
            try c.encode(e.stepID, "step_id")
            try c.encode(e.runID, "run_id")
            try time(e.time)
            try c.encode(["state": JSONValue.string(e.state)], "data")
        case .event(let e):
            try c.encode(e.type, "type")
            try c.encode(e.id, "id")
            try c.encodeIfPresent(e.runID, "run_id")
            try c.encodeIfPresent(e.stepID, "step_id")
            try c.encodeIfPresent(e.data, "data")
            try c.encodeIfPresent(e.error, "error")
            try time(e.time)
        }
    }
}

/// RFC 3339 timestamps as the events carry them.
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    public static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
