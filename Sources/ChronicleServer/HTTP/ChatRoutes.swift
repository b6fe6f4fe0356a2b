import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import Logging

/// The request body: a chat request with Chronicle's options beside it.
public struct ProxyRequestBody: Decodable, Sendable {
    public var request: ChatRequest
    public var options: RequestOptions

    public init(from decoder: any Decoder) throws {
        // One parse: both views read the same decoded container.
        var request = try ChatRequest(from: decoder)
        for key in RequestOptions.bodyKeys { request.unknownFields.removeValue(forKey: key) }
        self.request = request
        self.options = try RequestOptions(from: decoder)
    }
}

/// Serves `/chat`, `/v1/chat/completions` and friends.
struct ChatRoutes<Context: GatewayKeyRequestContext>: Sendable {
    let gateway: Gateway
    let maxBodySize: Int
    let policy: RequestPolicy
    /// Attaches calls carrying a coding agent's session to its run; `nil` when `agent_sessions` is off.
    let agentSessions: AgentSessionRecorder?
    /// Budgets checked before a call goes upstream, and the prices of the cost header.
    var cost: CostTracker?

    func register(on router: Router<Context>) {
        let handler: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await self.chat(request, context: context)
        }
        router.post("/chat", use: handler)
        router.post("/chat/**", use: handler)
        router.post("/v1/chat/completions", use: handler)
        router.post("/v1/chat/**", use: handler)
        router.postOnly(["/chat", "/v1/chat/completions"])
    }

    func chat(_ request: Request, context: Context) async throws -> Response {
        // The call exists from acceptance, so that reading the body is timed, and this route finishes it on
        // every path: it never relies on the call being released.
        let call = GatewayCall(context: .init(gatewayKeyName: context.gatewayKeyName), finishedBy: .caller)
        do {
            // The connection's task already runs on its event loop (`EventLoopBoundChildChannel`).
            return try await respond(to: request, context: context, call: call)
        } catch {
            // A call the gateway failed is finished already, with its error; a request rejected before the
            // gateway took it has nothing to record.
            call.finish(.ending(error))
            var apiError = APIError(converting: error, logger: context.logger)
            apiError.headers.addCallHeaders(call, overhead: call.overhead)
            throw apiError
        }
    }

    /// The request body, read within the limit; reading it is the client's time, not the gateway's.
    /// - Throws: ``APIError`` 413 when the body is larger than `limit`.
    static func body(of request: Request, call: GatewayCall, limit: Int) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw Self.tooLarge(limit)
        }
        do {
            return try await call.waiting { try await request.body.collect(upTo: limit) }
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Self.tooLarge(limit)
        }
    }

    private func respond(to request: Request, context: Context, call: GatewayCall) async throws -> Response {
        let bytes = try await Self.body(of: request, call: call, limit: maxBodySize)
        let (callRequest, decodedOptions) = try RequestDecoding.chatCall(
            bytes, headers: request.headers, agentSessions: agentSessions)
        var options = decodedOptions
        try policy.check(&options, messageCount: callRequest.messageCount)
        // Stored with the record; the per-key limits read the key from the call's context instead.
        options.internalMetadata.gatewayKey = context.gatewayKeyName
        // Over a budget, nothing goes upstream; the check reads only in-memory counters.
        try cost?.budgets.check(gatewayKey: context.gatewayKeyName, userID: options.metadata.userID)

        let gateway = self.gateway
        let channel = context.clientChannel
        if callRequest.isStreaming {
            let stream = try await ClientDisconnect.cancelling(on: channel) { [options] in
                try await gateway.send(call: callRequest, options: options, call: call)
            }
            let includeUsage = callRequest.includesStreamUsage
            // A stream's header can only tell the overhead before its first byte; the stored value covers
            // the whole stream up to its final event.
            var headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
            headers.addCallHeaders(call, overhead: call.overhead)
            let logger = context.logger
            return ServerSentEvents.response(
                for: stream, headers: headers, watch: channel.flatMap(ClientDisconnect.watch(for:))
            ) { writer in
                try await ServerSentEvents.relay(stream, forwardUsageOnlyChunks: includeUsage, to: &writer, logger: logger)
            }
        }
        let collected = try await ClientDisconnect.cancelling(on: channel) { [options] in
            try await gateway.send(call: callRequest, options: options, call: call).collect()
        }
        let responseBody: ByteBuffer
        if let wire = collected.response.wireJSON,
           let spliced = try WireBody.splicing(collected.requestInfo, into: wire) {
            responseBody = spliced
        } else {
            responseBody = ByteBuffer(bytes: try JSONCoding.encodeBytes(
                WithMeta(value: try collected.response.decoded(), meta: collected.requestInfo)))
        }
        // The record goes to the sink before the body is written: a client that has its answer implies a
        // recorded call. Writing the body is the client's time, so the overhead stops here.
        let overhead = call.finish()
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.addCallHeaders(call, overhead: overhead)
        headers.addCost(call, prices: cost)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: responseBody))
    }

    /// Milliseconds with microsecond resolution: the overhead is usually well under a millisecond.
    static func formatOverhead(_ overhead: Duration) -> String {
        let microseconds = max(0, overhead.nanoseconds / 1000)
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: 413, kind: "body_too_large", message: "Request body is larger than the limit of \(limit) bytes")
    }
}

extension GatewayCall.Outcome {
    /// How an error thrown while answering ends the call: a client that went away, a provider's failure,
    /// or the gateway's own (a response it could not encode).
    static func ending(_ error: any Error) -> GatewayCall.Outcome {
        switch error {
        case is ClientDisconnect.Disconnected, is CancellationError:
            return .clientDisconnected
        case let error as ProviderError:
            return .failed(error)
        default:
            return .failed(ProviderError(kind: .generic, message: "The gateway could not answer: \(type(of: error))"))
        }
    }
}

/// An upstream's JSON object relayed as it came, with Chronicle's `meta` added as its last member.
enum WireBody {
    /// `prefix`, the object with `"meta":` spliced before its closing brace, `suffix`; `nil` if `wire` does
    /// not end with an object's closing brace.
    static func splicing(_ meta: RequestInfo?, into wire: [UInt8], prefix: String = "", suffix: String = "") throws
        -> ByteBuffer?
    {
        let isBlank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
        guard let close = wire.lastIndex(where: { !isBlank($0) }), wire[close] == UInt8(ascii: "}") else { return nil }
        var buffer = ByteBuffer()
        guard let meta else {
            buffer.reserveCapacity(prefix.utf8.count + wire.count + suffix.utf8.count)
            buffer.writeString(prefix)
            buffer.writeBytes(wire)
            buffer.writeString(suffix)
            return buffer
        }
        let encodedMeta = try JSONCoding.encodeBytes(meta)
        buffer.reserveCapacity(prefix.utf8.count + wire.count + encodedMeta.count + suffix.utf8.count + 8)
        buffer.writeString(prefix)
        buffer.writeBytes(wire[..<close])
        // `{}` has no member for `meta` to follow.
        let isEmptyObject = wire[..<close].last(where: { !isBlank($0) }) == UInt8(ascii: "{")
        buffer.writeString(isEmptyObject ? #""meta":"# : #","meta":"#)
        buffer.writeBytes(encodedMeta)
        buffer.writeString("}")
        buffer.writeString(suffix)
        return buffer
    }
}

/// A value encoded with Chronicle's `meta` object beside its own members.
struct WithMeta<Value: Encodable>: Encodable {
    let value: Value
    let meta: RequestInfo?

    enum CodingKeys: String, CodingKey { case meta }

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
        if let meta {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(meta, forKey: .meta)
        }
    }
}

/// Relays a chat stream as server-sent events: OpenAI-format chunks, the first carrying `meta`.
enum ServerSentEvents {
    static let done = ByteBuffer(string: "data: [DONE]\n\n")

    /// The response: this task pulls the upstream, encodes each event and writes it, so a slow client slows
    /// the upstream read instead of growing a buffer, with no hand-over between tasks per event. When the
    /// client disconnects (``ConnectionWatch``), the call is finished as cancelled and the upstream
    /// aborted at once, even while the upstream is silent and nothing is being written, and even if the
    /// body is never written at all.
    /// `relay` writes the events; it must finish the call before its last write.
    static func response(for stream: ChatStream, headers: HTTPFields, watch: ConnectionWatch?,
                         relay: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
        let call = stream.call
        // Once the relay runs, it finishes the call itself, when the aborted upstream or a failed write
        // stops it, so that the time of a write the client left in the middle of counts as waiting.
        let relayStarted = NIOLockedValueBox(false)
        let disconnectAction = watch?.onDisconnect {
            stream.abortUpstream()
            if !relayStarted.withLockedValue({ $0 }) { call.finish(.clientDisconnected) }
        }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            relayStarted.withLockedValue { $0 = true }
            defer { if let watch, let disconnectAction { watch.removeAction(disconnectAction) } }
            try await relay(&writer)
            try await writer.finish(nil)
        })
    }

    /// Writes the stream's events as SSE, then `event: error` if it failed, then `[DONE]`. The call is
    /// finished before that final event, so its record reaches the sink before the client has the whole
    /// stream. A failed write (the client went away) finishes the call as cancelled and ends the relay by
    /// throwing.
    static func relay(_ stream: ChatStream, forwardUsageOnlyChunks: Bool, to writer: inout some ResponseBodyWriter,
                      logger: Logger) async throws {
        let call = stream.call
        var meta: RequestInfo? = stream.requestInfo
        var failure: ByteBuffer?
        var iterator = stream.makeAsyncIterator()
        // Time spent writing to the client since the last read, counted with the next read.
        var writeWait = Duration.zero
        var eventsSinceYield = 0
        // Events decoded from one upstream read go out in one socket write rather than one each.
        var unwritten = ByteBuffer()
        while true {
            // The relay runs on its connection's event loop, and a burst of buffered upstream bytes can hold
            // thousands of events that are read, translated and written without ever suspending. Giving the
            // loop back now and then lets it serve its other connections in between.
            eventsSinceYield += 1
            if eventsSinceYield == Self.eventsBetweenYields {
                eventsSinceYield = 0
                if unwritten.readableBytes > 0 {
                    writeWait += try await write(unwritten, to: &writer, call: call)
                    unwritten.clear()
                }
                await Task.yield()
            }
            var encoded: ByteBuffer
            do {
                defer { writeWait = .zero }
                guard let event = try await iterator.next(afterWaiting: writeWait) else { break }
                let chunk: ChatChunk
                switch event {
                case .requestInfo, .responseInfo, .relayedMessages, .embeddings, .relayedResponses:
                    continue
                case .chunk(let streamed):
                    // Usage the gateway asked for on its own account is recorded, not forwarded.
                    if streamed.isUsageOnly, !forwardUsageOnlyChunks {
                        continue
                    }
                    chunk = streamed
                case .single(let response):
                    chunk = ChatChunk(response: try response.decoded())
                }
                encoded = try wireEvent(chunk, meta: meta)
                    ?? encodeEvent(WithMeta(value: try chunk.decoded(), meta: meta))
            } catch let error as ProviderError {
                if error.kind != .cancelled {
                    logger.warning("stream failed", metadata: ["error.kind": "\(error.kind.rawValue)"])
                    failure = errorEvent(error)
                }
                break
            } catch {
                call.finish(.ending(error))
                logger.warning("stream failed", metadata: ["error": "\(type(of: error))"])
                break
            }
            meta = nil
            if iterator.hasReadyEvent, unwritten.readableBytes + encoded.readableBytes < Self.coalescedWriteLimit {
                unwritten.writeBuffer(&encoded)
                continue
            }
            if unwritten.readableBytes > 0 {
                unwritten.writeBuffer(&encoded)
                encoded = unwritten
                unwritten = ByteBuffer()
            }
            writeWait = try await write(encoded, to: &writer, call: call)
        }
        // What is left, the error event and `[DONE]` go out in one write, after the record is handed over.
        var last = unwritten
        if var failure { last.writeBuffer(&failure) }
        last.writeImmutableBuffer(done)
        call.finish()
        _ = try await write(last, to: &writer, call: call)
    }

    /// How many events a stream relays before it lets its event loop serve other connections.
    static let eventsBetweenYields = 16

    /// The most a relay gathers into one socket write.
    static let coalescedWriteLimit = 64 * 1024

    /// Writes one event and returns how long that took: waiting for the client is not the gateway's time.
    /// A client that went away gets the call finished as cancelled.
    static func write(_ event: ByteBuffer, to writer: inout some ResponseBodyWriter, call: GatewayCall)
        async throws -> Duration
    {
        let start = ContinuousClock.now
        do {
            try await writer.write(event)
        } catch {
            call.addWaiting(ContinuousClock.now - start)
            call.finish(.clientDisconnected)
            throw error
        }
        return ContinuousClock.now - start
    }

    /// The chunk's upstream bytes as an SSE event (`meta` spliced in when given), or `nil` when the chunk
    /// must be encoded: no upstream bytes, or bytes that cannot go on one `data:` line.
    static func wireEvent(_ chunk: ChatChunk, meta: RequestInfo?) throws -> ByteBuffer? {
        guard let wire = chunk.wireJSON, !wire.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") })
        else { return nil }
        return try WireBody.splicing(meta, into: wire, prefix: "data: ", suffix: "\n\n")
    }

    static func encodeEvent(_ value: some Encodable) throws -> ByteBuffer {
        let data = try JSONCoding.encodeBytes(value)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.count + 8)
        buffer.writeString("data: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    /// `event: error` with `{"error": E, "message": M}` as Rust Chronicle sends it.
    static func errorEvent(_ error: ProviderError) -> ByteBuffer {
        let payload: JSONValue
        if let body = error.body, let message = body["message"]?.stringValue {
            payload = ["error": body["error"] ?? .null, "message": .string(message)]
        } else if let body = error.body, let message = body["error"]?["message"]?.stringValue {
            payload = ["error": body["error"] ?? .null, "message": .string(message)]
        } else {
            payload = ["error": error.body ?? .string(error.kind.rawValue), "message": .string(error.message)]
        }
        var buffer = ByteBuffer(string: "event: error\n")
        let encoded = (try? encodeEvent(payload)) ?? ByteBuffer(string: "data: {}\n\n")
        buffer.writeImmutableBuffer(encoded)
        return buffer
    }
}

extension HTTPField.Name {
    /// The gateway's own time on the call, in milliseconds.
    static let chronicleOverhead = HTTPField.Name("x-chronicle-overhead-ms")!
    /// The call's id: its record's id, for finding the call in the log.
    static let chronicleCallID = HTTPField.Name("x-chronicle-call-id")!
    /// What a non-streamed call cost in US dollars, when its model has a price.
    static let chronicleCost = HTTPField.Name("x-chronicle-cost-usd")!
}

extension HTTPFields {
    /// The headers every chat response carries: the call's id (once the gateway took the request, so that
    /// a record exists under it) and the gateway's overhead.
    mutating func addCallHeaders(_ call: GatewayCall, overhead: Duration) {
        if call.isRecorded { self[.chronicleCallID] = call.id.uuidString.lowercased() }
        self[.chronicleOverhead] = ChatRoutes<ChronicleRequestContext>.formatOverhead(overhead)
    }

    /// `x-chronicle-cost-usd` for a finished call whose model has a price (from the in-memory table).
    mutating func addCost(_ call: GatewayCall, prices: CostTracker?) {
        guard let prices, let billing = call.billing, let dollars = prices.cost(of: billing) else { return }
        self[.chronicleCost] = AmountFormat.header(dollars)
    }
}
