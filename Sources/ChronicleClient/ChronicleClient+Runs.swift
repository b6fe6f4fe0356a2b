import Foundation

extension ChronicleClient {
    /// Runs `body` as a run: records `run:start`, then `run:update` with the returned value as the run's
    /// output (status `finished`), or with the error (status `error`) before rethrowing it.
    ///
    /// Every chat call inside `body`, and inside the child tasks it starts, carries the run's id.
    /// - Parameters:
    ///   - name: the run's name.
    ///   - id: the run's id; a new time-ordered UUID by default.
    ///   - input: recorded as the run's input.
    ///   - description: recorded as the run's description.
    ///   - tags: recorded as the run's tags.
    ///   - info: recorded in the run's `info`.
    ///   - isolation: the caller's actor, which `body` runs on; filled in by the compiler.
    ///   - body: the run's work; its value becomes the run's output.
    public func run<Output: Encodable>(
        _ name: String, id: UUID? = nil, input: (any Encodable)? = nil, description: String? = nil,
        tags: [String] = [], info: [String: JSONValue] = [:], isolation: isolated (any Actor)? = #isolation,
        _ body: (Run) async throws -> Output
    ) async throws -> Output {
        try await performRun(name, id: id, input: input, description: description, tags: tags, info: info,
                             isolation: isolation, body, output: { Self.encodeOutput($0) })
    }

    /// The `run` method for a body whose value is not `Encodable`:
    /// the run records no output.
    @_disfavoredOverload
    public func run<Output>(
        _ name: String, id: UUID? = nil, input: (any Encodable)? = nil, description: String? = nil,
        tags: [String] = [], info: [String: JSONValue] = [:], isolation: isolated (any Actor)? = #isolation,
        _ body: (Run) async throws -> Output
    ) async throws -> Output {
        try await performRun(name, id: id, input: input, description: description, tags: tags, info: info,
                             isolation: isolation, body, output: { _ in nil })
    }

    /// The run that the current task works in, if any.
    public static var currentRunID: UUID? { RunScope.current?.runID }

    /// The step that the current task works in, if any.
    public static var currentStepID: UUID? { RunScope.current?.stepID }

    func performRun<Output>(
        _ name: String, id: UUID?, input: (any Encodable)?, description: String?, tags: [String],
        info: [String: JSONValue], isolation: isolated (any Actor)?, _ body: (Run) async throws -> Output,
        output: (Output) -> JSONValue?
    ) async throws -> Output {
        let runID = id ?? UUID.v7()
        let metadata = configuration.metadata
        record(WorkflowEventJSON.runStart(
            id: runID, name: name, description: description, application: metadata.application,
            environment: metadata.environment, input: jsonValue(input), tags: tags, info: info, time: Date()))
        let run = Run(id: runID, name: name, client: self)
        do {
            let value = try await RunScope.$current.withValue(RunScope(runID: runID, stepID: nil)) {
                try await body(run)
            }
            record(WorkflowEventJSON.runUpdate(id: runID, status: "finished", output: output(value), info: nil,
                                               time: Date()))
            return value
        } catch {
            record(WorkflowEventJSON.runUpdate(id: runID, status: "error", output: WorkflowEventJSON.describe(error),
                                               info: nil, time: Date()))
            throw error
        }
    }

    func performStep<Output>(
        _ name: String, type: String, input: (any Encodable)?, tags: [String], info: [String: JSONValue]?,
        runID: UUID, parent: UUID?, isolation: isolated (any Actor)?, _ body: (Step) async throws -> Output,
        output: (Output) -> JSONValue?
    ) async throws -> Output {
        let stepID = UUID.v7()
        record(WorkflowEventJSON.stepStart(runID: runID, stepID: stepID, parent: parent, type: type, name: name,
                                           input: jsonValue(input), tags: tags, info: info, time: Date()))
        let step = Step(id: stepID, runID: runID, parentID: parent, name: name, client: self)
        do {
            let value = try await RunScope.$current.withValue(RunScope(runID: runID, stepID: stepID)) {
                try await body(step)
            }
            record(WorkflowEventJSON.stepEnd(runID: runID, stepID: stepID, output: output(value) ?? .null,
                                             info: nil, time: Date()))
            return value
        } catch {
            record(WorkflowEventJSON.stepError(runID: runID, stepID: stepID, error: WorkflowEventJSON.describe(error),
                                               time: Date()))
            throw error
        }
    }
}

extension ChronicleClient {
    /// Runs `body` as a step of the current run, for code that has the client but not the ``Run``: inside
    /// a step's body the new step gets it as its parent. Outside any run, the step gets a run of its own,
    /// named after it, as the reference client's `runStep` does.
    public func step<Output: Encodable>(
        _ name: String, type: String = "task", input: (any Encodable)? = nil, tags: [String] = [],
        info: [String: JSONValue]? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: (Step) async throws -> Output
    ) async throws -> Output {
        try await performScopedStep(name, type: type, input: input, tags: tags, info: info, isolation: isolation,
                                    body, output: { Self.encodeOutput($0) })
    }

    /// The `step` method for a body whose value is not `Encodable` (recorded output `null`).
    @_disfavoredOverload
    public func step<Output>(
        _ name: String, type: String = "task", input: (any Encodable)? = nil, tags: [String] = [],
        info: [String: JSONValue]? = nil, isolation: isolated (any Actor)? = #isolation,
        _ body: (Step) async throws -> Output
    ) async throws -> Output {
        try await performScopedStep(name, type: type, input: input, tags: tags, info: info, isolation: isolation,
                                    body, output: { _ in .null })
    }

    private func performScopedStep<Output>(
        _ name: String, type: String, input: (any Encodable)?, tags: [String], info: [String: JSONValue]?,
        isolation: isolated (any Actor)?, _ body: (Step) async throws -> Output, output: (Output) -> JSONValue?
    ) async throws -> Output {
        if let scope = RunScope.current {
            return try await performStep(name, type: type, input: input, tags: tags, info: info, runID: scope.runID,
                                         parent: scope.stepID, isolation: isolation, body, output: output)
        }
        return try await performRun(name, id: nil, input: input, description: nil, tags: [], info: [:],
                                    isolation: isolation, { run in
            try await self.performStep(name, type: type, input: input, tags: tags, info: info, runID: run.id,
                                       parent: nil, isolation: isolation, body, output: output)
        }, output: output)
    }
}
