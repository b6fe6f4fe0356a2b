import Foundation

/// A run in progress, handed to the body of `ChronicleClient.run(_:input:_:)`.
///
/// ```swift
/// try await client.run("summarize", input: url) { run in
///     let page = try await run.step("fetch", type: "tool") { _ in try await fetch(url) }
///     run.event("page_fetched", data: ["bytes": .integer(Int64(page.count))])
///     return try await run.step("draft", type: "llm") { _ in try await client.chat(…) }
/// }
/// ```
public struct Run: Sendable {
    /// The run's id: `GET /v1/runs/{id}` shows it with its steps.
    public let id: UUID
    public let name: String
    let client: ChronicleClient

    /// Runs `body` as a step of this run; calls made inside it carry the step's id. A step started inside
    /// another step's body gets that step as its parent. The value returned becomes the step's output.
    /// A thrown error is recorded as `step:error`, then rethrown.
    public func step<Output: Encodable>(
        _ name: String, type: String = "task", input: (any Encodable)? = nil, tags: [String] = [],
        info: [String: JSONValue]? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: (Step) async throws -> Output
    ) async throws -> Output {
        try await client.performStep(name, type: type, input: input, tags: tags, info: info, runID: id,
                                     parent: currentStep, isolation: isolation, body, output: { ChronicleClient.encodeOutput($0) })
    }

    /// The `step` method for a body whose value is not `Encodable`: the step's
    /// output is recorded as `null`.
    @_disfavoredOverload
    public func step<Output>(
        _ name: String, type: String = "task", input: (any Encodable)? = nil, tags: [String] = [],
        info: [String: JSONValue]? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: (Step) async throws -> Output
    ) async throws -> Output {
        try await client.performStep(name, type: type, input: input, tags: tags, info: info, runID: id,
                                     parent: currentStep, isolation: isolation, body, output: { _ in .null })
    }

    /// Records a generic event in this run (and in the current step, when called inside one).
    public func event(_ type: String, data: (any Encodable)? = nil) {
        client.recordEvent(type, data: data, runID: id, stepID: currentStep)
    }

    /// The step of this run that the current task works in, if any: a step started through the run's handle
    /// inside another step's body gets that step as its parent.
    var currentStep: UUID? {
        let scope = RunScope.current
        return scope?.runID == id ? scope?.stepID : nil
    }
}

/// A step in progress, handed to the body of `Run.step(_:type:_:)`.
public struct Step: Sendable {
    public let id: UUID
    public let runID: UUID
    /// The enclosing step, when this one was started inside another step.
    public let parentID: UUID?
    public let name: String
    let client: ChronicleClient

    /// A step inside this step (its parent is this step).
    public func step<Output: Encodable>(
        _ name: String, type: String = "task", input: (any Encodable)? = nil, tags: [String] = [],
        info: [String: JSONValue]? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: (Step) async throws -> Output
    ) async throws -> Output {
        try await client.performStep(name, type: type, input: input, tags: tags, info: info, runID: runID,
                                     parent: id, isolation: isolation, body, output: { ChronicleClient.encodeOutput($0) })
    }

    /// A step inside this step whose value is not `Encodable` (recorded output `null`).
    @_disfavoredOverload
    public func step<Output>(
        _ name: String, type: String = "task", input: (any Encodable)? = nil, tags: [String] = [],
        info: [String: JSONValue]? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: (Step) async throws -> Output
    ) async throws -> Output {
        try await client.performStep(name, type: type, input: input, tags: tags, info: info, runID: runID,
                                     parent: id, isolation: isolation, body, output: { _ in .null })
    }

    /// Records a generic event in this step.
    public func event(_ type: String, data: (any Encodable)? = nil) {
        client.recordEvent(type, data: data, runID: runID, stepID: id)
    }
}
