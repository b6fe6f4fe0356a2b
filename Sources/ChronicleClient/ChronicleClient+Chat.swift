import Foundation

extension ChronicleClient {
    /// Sends a chat request and returns the whole answer, with Chronicle's `meta` and the call's id.
    ///
    /// Inside a run or step scope the call carries the run's and step's ids (`x-chronicle-run-id`,
    /// `x-chronicle-step-id`), unless `request.options.metadata` sets its own.
    /// - Throws: ``ChronicleError`` with the gateway's status, kind and message.
    public func chat(_ request: ChatRequest) async throws -> ChatResponse {
        let transportRequest = try prepare(request, streaming: false)
        let reply = try await transport.chat(transportRequest)
        var response: ChatResponse
        do {
            response = try JSONDecoder().decode(ChatResponse.self, from: Data(reply.body))
        } catch {
            throw ChronicleError(status: 200, kind: "invalid_response",
                                 message: "The answer could not be read: \(error)", callID: reply.callID)
        }
        response.callID = reply.callID ?? response.meta?.id
        return response
    }

    /// Sends a chat request and streams the answer, chunk by chunk; the last chunk carries the usage.
    ///
    /// The request is sent when iteration starts, tagged with the run and step scope this method was
    /// called in.
    public func streamChat(_ request: ChatRequest) -> ChatStream {
        let prepared = Result { try prepare(request, streaming: true) }
        let transport = self.transport
        return ChatStream(open: { try await transport.streamChat(try prepared.get()) })
    }

    /// The body and headers of a call: client metadata filled in, the scope's run and step as headers.
    func prepare(_ request: ChatRequest, streaming: Bool) throws -> TransportRequest {
        var request = request
        request.stream = streaming
        request.options.metadata = request.options.metadata.filled(from: configuration.metadata)
        var headers: [(name: String, value: String)] = []
        if let scope = RunScope.current {
            // Both gateways read these headers; metadata in the body wins over them.
            headers.append(("x-chronicle-run-id", scope.runID.uuidString.lowercased()))
            if let step = scope.stepID { headers.append(("x-chronicle-step-id", step.uuidString.lowercased())) }
        }
        do {
            return TransportRequest(body: Array(try JSONEncoder().encode(request)), headers: headers)
        } catch {
            throw ChronicleError(status: nil, kind: "invalid_request", message: "The request could not be encoded: \(error)")
        }
    }
}
