import ChronicleCore
import Foundation
import HTTPTypes
import NIOCore

/// How request bodies become typed values, and how bad ones become 4xx errors. Public so that the fuzzer
/// drives exactly what the routes run.
public enum RequestDecoding {
    /// A chat request as the route hands it to the gateway: the client's bytes with what the gateway needs
    /// scanned out (``WireChatRequest``), or, when the scan cannot vouch for the body, decoded in full, which
    /// either accepts it or names what is wrong. `x-chronicle-*` headers are merged into the options.
    /// - Throws: ``APIError``: 400 for malformed JSON or a wrong shape (naming the field), 422 for bad headers.
    public static func chatCall(_ bytes: ByteBuffer, headers: HTTPFields = [:]) throws(APIError)
        -> (request: CallRequest, options: RequestOptions)
    {
        try chatCall(bytes, headers: headers, agentSessions: nil)
    }

    /// ``chatCall(_:headers:)`` on a chat route: a call carrying a coding agent's session joins its run
    /// through `agentSessions` (`nil` when that is switched off).
    static func chatCall(_ bytes: ByteBuffer, headers: HTTPFields, agentSessions: AgentSessionRecorder?)
        throws(APIError) -> (request: CallRequest, options: RequestOptions)
    {
        guard let (wire, scannedOptions) = WireChatRequest.scan(bytes) else {
            let body = try chatBody(bytes, headers: headers, agentSessions: agentSessions)
            return (.typed(body.request), body.options)
        }
        var options = scannedOptions
        try mergeHeaders(headers, into: &options, agentSessions: agentSessions)
        return (.wire(wire), options)
    }

    /// A chat request body decoded in full with its options, `x-chronicle-*` headers merged in.
    /// - Throws: ``APIError``: 400 for malformed JSON or a wrong shape (naming the field), 422 for bad headers.
    public static func chatBody(_ bytes: ByteBuffer, headers: HTTPFields = [:]) throws(APIError) -> ProxyRequestBody {
        try chatBody(bytes, headers: headers, agentSessions: nil)
    }

    static func chatBody(_ bytes: ByteBuffer, headers: HTTPFields, agentSessions: AgentSessionRecorder?)
        throws(APIError) -> ProxyRequestBody
    {
        var body: ProxyRequestBody
        do {
            body = try JSONCoding.decode(ProxyRequestBody.self, from: bytes.readableBytesView)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty, !isJSON(bytes) {
                throw APIError.badRequest("invalid_json", "Request body is not valid JSON: \(describeDecodingError(error))")
            }
            throw APIError.badRequest("invalid_request", "Invalid request body: \(describeDecodingError(error))")
        } catch {
            throw APIError.badRequest("invalid_request", "Invalid request body: \(error)")
        }
        try mergeHeaders(headers, into: &body.options, agentSessions: agentSessions)
        return body
    }

    /// An Anthropic Messages API request as the route hands it to the gateway: the client's bytes, scanned
    /// (``WireMessagesRequest``), with the options from the `x-chronicle-*` headers (Chronicle reads none
    /// from this body, so that it stays Anthropic's) and `metadata.user_id` as the call's user.
    /// - Throws: ``APIError`` 400 `invalid_request_error` naming what is wrong; 422 for bad headers.
    public static func messagesCall(_ bytes: ByteBuffer, headers: HTTPFields = [:]) throws(APIError)
        -> (request: CallRequest, options: RequestOptions)
    {
        try messagesCall(bytes, headers: headers, agentSessions: nil)
    }

    /// ``messagesCall(_:headers:)`` on the Messages route, with coding agents' sessions joined to their runs
    /// through `agentSessions` (`nil` when that is switched off).
    static func messagesCall(_ bytes: ByteBuffer, headers: HTTPFields, agentSessions: AgentSessionRecorder?)
        throws(APIError) -> (request: CallRequest, options: RequestOptions)
    {
        let wire: WireMessagesRequest
        if let scanned = WireMessagesRequest.scan(bytes) {
            wire = scanned
        } else {
            // The full decoder names what is wrong. A body it accepts that the scan could not vouch for (an
            // escaped or repeated key, say) is re-encoded once, so that the gateway holds one form.
            let decoded: AnthropicMessagesRequest
            do {
                decoded = try AnthropicIngress.decode(bytes.readableBytesView)
            } catch {
                let wording = isJSON(bytes) ? error.message : "Request body is not valid JSON: \(error.message)"
                var apiError = APIError.badRequest("invalid_request", wording)
                apiError.anthropic = AnthropicError(.invalidRequest, message: wording)
                throw apiError
            }
            guard let encoded = try? JSONCoding.encodeBytes(decoded),
                  let rescanned = WireMessagesRequest.scan(ByteBuffer(bytes: encoded))
            else {
                throw APIError.badRequest("invalid_request", "The request could not be read")
            }
            wire = rescanned
        }
        var options = RequestOptions()
        options.metadata.userID = wire.userID
        try mergeHeaders(headers, into: &options, agentSessions: agentSessions)
        let call = MessagesCall(wire: wire, anthropicVersion: headers[.anthropicVersion],
                                anthropicBeta: headers[.anthropicBeta])
        return (.messages(call), options)
    }

    /// An OpenAI embeddings request as the route hands it to the gateway: the client's bytes, read in one
    /// pass (``EmbeddingsRequest``), with the options from the `x-chronicle-*` headers (Chronicle reads none
    /// from this body, so that it stays OpenAI's) and `user` as the call's user.
    /// - Throws: ``APIError`` 400 naming the member at fault; 422 for bad headers.
    public static func embeddingsCall(_ bytes: ByteBuffer, headers: HTTPFields = [:]) throws(APIError)
        -> (request: CallRequest, options: RequestOptions)
    {
        let (request, options) = try embeddingsCall(bytes, headers: headers, agentSessions: nil)
        return (.embeddings(request), options)
    }

    /// ``embeddingsCall(_:headers:)`` on the embeddings route, with coding agents' sessions joined to their
    /// runs through `agentSessions` (`nil` when that is switched off).
    static func embeddingsCall(_ bytes: ByteBuffer, headers: HTTPFields, agentSessions: AgentSessionRecorder?)
        throws(APIError) -> (request: EmbeddingsRequest, options: RequestOptions)
    {
        let request: EmbeddingsRequest
        do {
            request = try EmbeddingsRequest.decode(bytes)
        } catch {
            var apiError = APIError.badRequest(error.isMalformedJSON ? "invalid_json" : "invalid_request", error.message)
            if let param = error.param { apiError.body = ["param": .string(param)] }
            throw apiError
        }
        var options = RequestOptions()
        options.metadata.userID = request.user
        try mergeHeaders(headers, into: &options, agentSessions: agentSessions)
        return (request, options)
    }

    /// An OpenAI Responses API request as the route hands it to the gateway: the client's bytes, scanned
    /// (``WireResponsesRequest``), with the options from the `x-chronicle-*` headers and the body's `user`
    /// as the end user. A body the scan cannot vouch for is decoded in full, which names what is wrong, and
    /// one it accepts is re-encoded once, so that the gateway holds one form.
    /// - Throws: ``APIError`` 400 `invalid_request_error` naming the member that is wrong; 422 for bad headers.
    public static func responsesCall(_ bytes: ByteBuffer, headers: HTTPFields = [:]) throws(APIError)
        -> (request: CallRequest, options: RequestOptions)
    {
        try responsesCall(bytes, headers: headers, agentSessions: nil)
    }

    static func responsesCall(_ bytes: ByteBuffer, headers: HTTPFields, agentSessions: AgentSessionRecorder?)
        throws(APIError) -> (request: CallRequest, options: RequestOptions)
    {
        let wire: WireResponsesRequest
        if let scanned = WireResponsesRequest.scan(bytes) {
            wire = scanned
        } else {
            let members: [String: JSONValue]
            do {
                guard case .object(let object) = try JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView) else {
                    throw APIError(responses: .invalid(nil, "The request body must be a JSON object"))
                }
                members = object
            } catch let error as APIError {
                throw error
            } catch {
                throw APIError(responses: .invalid(nil, "Request body is not valid JSON: \(describeDecodingError(error))"))
            }
            // The members the scan reads, checked by the full decoder, which names the one at fault.
            do {
                _ = try ResponsesIngress.decodeRoutingMembers(members)
            } catch {
                throw APIError(responses: error)
            }
            guard let encoded = try? JSONCoding.encodeBytes(JSONValue.object(members)),
                  let rescanned = WireResponsesRequest.scan(ByteBuffer(bytes: encoded))
            else {
                throw APIError(responses: .invalid(nil, "The request could not be read"))
            }
            wire = rescanned
        }
        var options = RequestOptions()
        options.metadata.userID = wire.userID
        try mergeHeaders(headers, into: &options, agentSessions: agentSessions)
        return (.responses(ResponsesCall(wire: wire)), options)
    }

    private static func mergeHeaders(_ headers: HTTPFields, into options: inout RequestOptions,
                                     agentSessions: AgentSessionRecorder?) throws(APIError) {
        do {
            try ChronicleHeaders.merge(headers, into: &options, agentSessions: agentSessions)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(status: 422, kind: "invalid_proxy_headers", message: "\(error)")
        }
    }

    /// One workflow event, or a `{"events": [...]}` batch.
    /// - Throws: ``APIError``: 400 for malformed JSON, 422 naming the field (and batch index) otherwise.
    public static func events(_ bytes: ByteBuffer, batch: Bool) throws(APIError) -> [WorkflowEvent] {
        struct Batch: Decodable {
            var events: [WorkflowEvent]
        }
        do {
            if batch {
                return try JSONCoding.decode(Batch.self, from: bytes.readableBytesView).events
            }
            return [try JSONCoding.decode(WorkflowEvent.self, from: bytes.readableBytesView)]
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty, !isJSON(bytes) {
                throw APIError.badRequest("invalid_json", "Request body is not valid JSON: \(describeDecodingError(error))")
            }
            throw APIError(status: 422, kind: "invalid_event_payload",
                           message: "Invalid event payload: \(describeDecodingError(error))")
        } catch {
            throw APIError(status: 422, kind: "invalid_event_payload", message: "Invalid event payload: \(error)")
        }
    }

    /// Whether the bytes are syntactically JSON (only asked on the error path, to word the error right).
    static func isJSON(_ bytes: ByteBuffer) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView), options: [.fragmentsAllowed])) != nil
    }
}

extension HTTPField.Name {
    /// The Messages API version the client speaks.
    static let anthropicVersion = HTTPField.Name("anthropic-version")!
    /// The Messages API betas the client opts into.
    static let anthropicBeta = HTTPField.Name("anthropic-beta")!
}
