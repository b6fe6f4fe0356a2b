import ChronicleCore
import Foundation
import HTTPTypes

/// Reads the `x-chronicle-*` request headers.
enum ChronicleHeaders {
    /// Options and metadata from the headers, merged under the body's options with Rust Chronicle's
    /// precedence: the body wins, except `models` and `timeout`, where the header wins.
    ///
    /// A chat route passes its `agentSessions` recorder (`nil` when the switch is off), so that a call that
    /// carries a coding agent's session and no explicit run id joins the session's run; other routes pass
    /// `nil`.
    /// - Throws: ``APIError`` (422 `invalid_proxy_headers`) naming the header with a bad value.
    static func merge(_ headers: HTTPFields, into options: inout RequestOptions,
                      agentSessions: AgentSessionRecorder?) throws {
        func value(_ name: String) -> String? {
            guard let field = HTTPField.Name(name) else { return nil }
            return headers[field]
        }
        func invalid(_ name: String, _ expected: String) -> APIError {
            APIError(status: 422, kind: "invalid_proxy_headers",
                     message: "Failed to parse header value \(name): Expected \(expected)")
        }
        func uuid(_ name: String) throws -> UUID? {
            guard let text = value(name) else { return nil }
            guard let id = UUID(uuidString: text.trimmingCharacters(in: .whitespaces)) else { throw invalid(name, "a UUID") }
            return id
        }
        func uint32(_ name: String) throws -> UInt32? {
            guard let text = value(name) else { return nil }
            guard let number = UInt32(text.trimmingCharacters(in: .whitespaces)) else {
                throw invalid(name, "a non-negative integer")
            }
            return number
        }
        func json<T: Decodable>(_ name: String, _ type: T.Type, _ expected: String) throws -> T? {
            guard let text = value(name) else { return nil }
            do {
                return try JSONCoding.decode(type, from: Array(text.utf8))
            } catch {
                throw invalid(name, "\(expected) (\(describeDecodingError(error)))")
            }
        }

        if options.apiKey == nil { options.apiKey = value("x-chronicle-provider-api-key") }
        if options.apiKeyName == nil { options.apiKeyName = value("x-chronicle-api-key") }
        if options.provider == nil { options.provider = value("x-chronicle-provider") }
        if let model = value("x-chronicle-model") { options.model = model }
        if options.overrideURL == nil { options.overrideURL = value("x-chronicle-override-url") }
        if let models = try json("x-chronicle-models", [ModelChoice].self, "a JSON array of {model, provider}") {
            options.models = models
        }
        if let text = value("x-chronicle-random-choice") {
            guard let flag = Bool(text.trimmingCharacters(in: .whitespaces)) else { throw invalid("x-chronicle-random-choice", "true or false") }
            if options.randomChoice == nil { options.randomChoice = flag }
        }
        if let retry = try json("x-chronicle-retry", RetryOptions.self, "a JSON retry options object"), options.retry == nil {
            options.retry = retry
        }
        if let text = value("x-chronicle-timeout") {
            guard let ms = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                throw invalid("x-chronicle-timeout", "an integer number of milliseconds")
            }
            options.timeout = .milliseconds(Int64(clamping: ms))
        }

        var fromHeaders = RequestMetadata()
        fromHeaders.application = value("x-chronicle-application")
        fromHeaders.environment = value("x-chronicle-environment")
        fromHeaders.organizationID = value("x-chronicle-organization-id")
        fromHeaders.projectID = value("x-chronicle-project-id")
        fromHeaders.userID = value("x-chronicle-user-id")
        fromHeaders.workflowID = value("x-chronicle-workflow-id")
        fromHeaders.workflowName = value("x-chronicle-workflow-name")
        fromHeaders.runID = try uuid("x-chronicle-run-id")
        fromHeaders.stepID = try uuid("x-chronicle-step-id")
        fromHeaders.stepIndex = try uint32("x-chronicle-step-index")
        fromHeaders.promptID = value("x-chronicle-prompt-id")
        fromHeaders.promptVersion = try uint32("x-chronicle-prompt-version")
        if let extra = try json("x-chronicle-extra-meta", [String: JSONValue].self, "a JSON object") {
            fromHeaders.extra = extra
        }
        // Body values win field by field; extra-meta keys merge with the body's.
        options.metadata.fillMissing(from: fromHeaders)
        // Last, once every explicit run and step id is known: those always win over a session's.
        agentSessions?.attach(headers, to: &options.metadata)
    }
}
