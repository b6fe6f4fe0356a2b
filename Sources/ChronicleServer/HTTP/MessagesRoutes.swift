import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The paths of the Anthropic Messages API, whose errors are answered in Anthropic's shape.
enum MessagesPaths {
    static let messages = ["/v1/messages", "/anthropic/v1/messages"]
    static let countTokens = ["/v1/messages/count_tokens", "/anthropic/v1/messages/count_tokens"]

    static func contains(_ path: String) -> Bool {
        messages.contains(path) || countTokens.contains(path)
    }
}

/// Serves the Anthropic Messages API, `/v1/messages` (and under `/anthropic` for clients whose base URL
/// ends there), on every provider: Anthropic-format providers get the client's bytes with only `model`
/// replaced and answer byte for byte; the others get the request translated, and their answer translated
/// back by the conversions in `Formats/AnthropicMessages`. Routing, retries, fallback and recording are
/// the chat route's.
struct MessagesRoutes<Context: GatewayKeyRequestContext>: Sendable {
    let gateway: Gateway
    let maxBodySize: Int
    let policy: RequestPolicy
    /// Joins calls that carry a coding agent's session to its run; `nil` when that is switched off.
    let agentSessions: AgentSessionRecorder?
    /// Budgets checked before a call goes upstream, and the prices of the cost header.
    var cost: CostTracker?

    func register(on router: Router<Context>) {
        let messages: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await self.messages(request, context: context)
        }
        let countTokens: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await self.countTokens(request, context: context)
        }
        for path in MessagesPaths.messages { router.post(RouterPath(path), use: messages) }
        for path in MessagesPaths.countTokens { router.post(RouterPath(path), use: countTokens) }
        router.postOnly(MessagesPaths.messages + MessagesPaths.countTokens)
    }

    func messages(_ request: Request, context: Context) async throws -> Response {
        // As on the chat route: the call exists from acceptance and this route finishes it on every path.
        let call = GatewayCall(context: .init(gatewayKeyName: context.gatewayKeyName), finishedBy: .caller)
        do {
            // The connection's task already runs on its event loop (`EventLoopBoundChildChannel`).
            return try await respond(to: request, context: context, call: call)
        } catch {
            call.finish(.ending(error))
            var apiError = Self.anthropicError(error, logger: context.logger)
            apiError.headers.addCallHeaders(call, overhead: call.overhead)
            throw apiError
        }
    }

    private func respond(to request: Request, context: Context, call: GatewayCall) async throws -> Response {
        let bytes = try await ChatRoutes<Context>.body(of: request, call: call, limit: maxBodySize)
        let (callRequest, decodedOptions) = try RequestDecoding.messagesCall(
            bytes, headers: request.headers, agentSessions: agentSessions)
        var options = decodedOptions
        try policy.check(&options, messageCount: callRequest.messageCount)
        options.internalMetadata.gatewayKey = context.gatewayKeyName
        // Over a budget, nothing goes upstream; the 429 is answered in Anthropic's shape on this route.
        try cost?.budgets.check(gatewayKey: context.gatewayKeyName, userID: options.metadata.userID)

        let gateway = self.gateway
        let channel = context.clientChannel
        let stream = try await ClientDisconnect.cancelling(on: channel) { [options] in
            try await gateway.send(call: callRequest, options: options, call: call)
        }
        return try await MessagesAnswer.Relay(MessagesAnswer(stream: stream, requestedModel: callRequest.model ?? ""))
            .response(streaming: callRequest.isStreaming, channel: channel, cost: cost, logger: context.logger)
    }

    // MARK: count_tokens

    func countTokens(_ request: Request, context: Context) async throws -> Response {
        do {
            // Nothing is recorded for a count, so this call is only a timer for reading the body.
            let timer = GatewayCall(finishedBy: .caller)
            defer { timer.finish() }
            let bytes = try await ChatRoutes<Context>.body(of: request, call: timer, limit: maxBodySize)
            guard let wire = WireMessagesRequest.scan(bytes, requiringMaxTokens: false) else {
                throw APIError(status: 400, kind: "invalid_request",
                               message: "The body must be a JSON object with a non-empty string `model` and `messages`")
            }
            var options = RequestOptions()
            // Counting is not a call: it joins no agent session's run.
            try ChronicleHeaders.merge(request.headers, into: &options, agentSessions: nil)
            // The same limits as a call: an override URL outside the allow-list must not be reachable by
            // counting instead.
            try policy.check(&options, messageCount: wire.messageCount)
            let messages = MessagesCall(wire: wire, anthropicVersion: request.headers[.anthropicVersion],
                                        anthropicBeta: request.headers[.anthropicBeta])
            switch try await gateway.countTokens(messages, options: options) {
            case .counted(let status, let body):
                return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                                body: ResponseBody(byteBuffer: body))
            case .unsupported(let provider):
                var error = APIError(status: 404, kind: "not_found",
                                     message: "Provider '\(provider)' cannot count tokens: count_tokens is served only by Anthropic-format providers")
                error.anthropic = AnthropicError(.notFound, message: error.message)
                throw error
            }
        } catch {
            throw Self.anthropicError(error, logger: context.logger)
        }
    }

    // MARK: Errors

    /// Any error as an Anthropic client gets it: a provider's failure as ``AnthropicError/init(relaying:)``
    /// has it; `retry-after` on a rate limit.
    static func anthropicError(_ error: any Error, logger: Logger) -> APIError {
        var apiError = APIError(converting: error, logger: logger)
        let providerError: ProviderError?
        switch error {
        case GatewayError.provider(let failure, _, _, _): providerError = failure
        case let failure as ProviderError: providerError = failure
        default: providerError = nil
        }
        if let providerError, apiError.anthropic == nil {
            apiError.anthropic = AnthropicError(relaying: providerError)
        }
        return apiError
    }
}
