import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The paths of the OpenAI Responses API, whose errors are answered in OpenAI's shape with `param`.
enum ResponsesPaths {
    static let responses = ["/v1/responses", "/openai/v1/responses"]

    static func contains(_ path: String) -> Bool {
        responses.contains(path)
    }
}

/// Serves OpenAI's Responses API, `/v1/responses`, on every provider: providers that serve that API
/// themselves (OpenAI, Azure OpenAI, an upstream configured with `responses_api`) get the client's bytes
/// with only `model` replaced and answer byte for byte; the others get the request translated into a chat
/// request, and their answer translated back, by the conversions in `Formats/OpenAIResponses`. Routing,
/// retries, fallback, limits and recording are the chat route's.
struct ResponsesRoutes<Context: GatewayKeyRequestContext>: Sendable {
    let gateway: Gateway
    let maxBodySize: Int
    let policy: RequestPolicy
    /// Joins calls that carry a coding agent's session to its run; `nil` when that is switched off.
    let agentSessions: AgentSessionRecorder?
    /// Budgets checked before a call goes upstream, and the prices of the cost header.
    var cost: CostTracker?

    func register(on router: Router<Context>) {
        let responses: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await self.responses(request, context: context)
        }
        for path in ResponsesPaths.responses { router.post(RouterPath(path), use: responses) }
        router.postOnly(ResponsesPaths.responses)
    }

    func responses(_ request: Request, context: Context) async throws -> Response {
        // As on the chat route: the call exists from acceptance and this route finishes it on every path.
        let call = GatewayCall(context: .init(gatewayKeyName: context.gatewayKeyName), finishedBy: .caller)
        do {
            return try await respond(to: request, context: context, call: call)
        } catch {
            call.finish(.ending(error))
            var apiError = Self.responsesError(error, logger: context.logger)
            apiError.headers.addCallHeaders(call, overhead: call.overhead)
            throw apiError
        }
    }

    private func respond(to request: Request, context: Context, call: GatewayCall) async throws -> Response {
        let bytes = try await ChatRoutes<Context>.body(of: request, call: call, limit: maxBodySize)
        let (callRequest, decodedOptions) = try RequestDecoding.responsesCall(
            bytes, headers: request.headers, agentSessions: agentSessions)
        guard case .responses(let responses) = callRequest else {
            throw APIError(responses: .invalid(nil, "The request could not be read"))
        }
        var options = decodedOptions
        try policy.check(&options, messageCount: callRequest.messageCount)
        options.internalMetadata.gatewayKey = context.gatewayKeyName
        // Over a budget, nothing goes upstream.
        try cost?.budgets.check(gatewayKey: context.gatewayKeyName, userID: options.metadata.userID)

        let gateway = self.gateway
        let channel = context.clientChannel
        let stream = try await ClientDisconnect.cancelling(on: channel) { [options] in
            try await gateway.send(call: callRequest, options: options, call: call)
        }
        return try await ResponsesAnswer.Relay(ResponsesAnswer(stream: stream, request: responses.wire))
            .response(streaming: callRequest.isStreaming, channel: channel, cost: cost, logger: context.logger)
    }

    /// Any error as a Responses client gets it: a request refused before it went upstream names the member
    /// at fault (`param`); an upstream's OpenAI-shaped error keeps its type, message and `param`.
    static func responsesError(_ error: any Error, logger: Logger) -> APIError {
        var apiError = APIError(converting: error, logger: logger)
        let providerError: ProviderError?
        switch error {
        case GatewayError.provider(let failure, _, _, _): providerError = failure
        case let failure as ProviderError: providerError = failure
        default: providerError = nil
        }
        if let providerError, apiError.responses == nil {
            var relayed = ResponsesError(relaying: providerError)
            relayed.status = Int(apiError.status.code)
            relayed.message = apiError.message
            apiError.responses = relayed
        }
        return apiError
    }
}
