import ChronicleCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Serves OpenAI's embeddings API, `/v1/embeddings` (and `/embeddings`), on every provider with one:
/// OpenAI-format providers get the client's bytes with only `model` replaced and answer byte for byte;
/// Gemini, Bedrock and Ollama get the request translated and their vectors written back in OpenAI's format
/// by the conversions in `Formats/OpenAIEmbeddings`. Routing, retries, fallback, keys, limits and
/// recording are the chat route's.
struct EmbeddingsRoutes<Context: GatewayKeyRequestContext>: Sendable {
    static var paths: [String] { ["/v1/embeddings", "/embeddings"] }

    let gateway: Gateway
    let maxBodySize: Int
    let policy: RequestPolicy
    /// Joins calls that carry a coding agent's session to its run; `nil` when that is switched off.
    let agentSessions: AgentSessionRecorder?
    /// Budgets checked before a call goes upstream, and the prices of the cost header.
    var cost: CostTracker?

    func register(on router: Router<Context>) {
        let handler: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await self.embeddings(request, context: context)
        }
        for path in Self.paths { router.post(RouterPath(path), use: handler) }
        router.postOnly(Self.paths)
    }

    func embeddings(_ request: Request, context: Context) async throws -> Response {
        // As on the chat route: the call exists from acceptance and this route finishes it on every path.
        let call = GatewayCall(context: .init(gatewayKeyName: context.gatewayKeyName), finishedBy: .caller)
        do {
            return try await respond(to: request, context: context, call: call)
        } catch {
            call.finish(.ending(error))
            var apiError = APIError(converting: error, logger: context.logger)
            apiError.headers.addCallHeaders(call, overhead: call.overhead)
            throw apiError
        }
    }

    private func respond(to request: Request, context: Context, call: GatewayCall) async throws -> Response {
        let bytes = try await ChatRoutes<Context>.body(of: request, call: call, limit: maxBodySize)
        let (embeddings, decodedOptions) = try RequestDecoding.embeddingsCall(
            bytes, headers: request.headers, agentSessions: agentSessions)
        var options = decodedOptions
        // Inputs are not messages (the body size limit bounds them); the other limits apply as on chat.
        try policy.check(&options, messageCount: 0)
        options.internalMetadata.gatewayKey = context.gatewayKeyName
        // Over a budget, nothing goes upstream.
        try cost?.budgets.check(gatewayKey: context.gatewayKeyName, userID: options.metadata.userID)

        let gateway = self.gateway
        let answer = try await ClientDisconnect.cancelling(on: context.clientChannel) { [options] in
            try await gateway.embed(embeddings, options: options, call: call)
        }
        // The record goes to the sink before the body is written, as on the chat route.
        let overhead = call.finish()
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.addCallHeaders(call, overhead: overhead)
        headers.addCost(call, prices: cost)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: answer.body))
    }
}
