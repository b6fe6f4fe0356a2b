import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
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
        let timing = CallTiming(managedByCaller: true)
        do {
            return try await withEventLoopPreference(context.clientChannel) {
                try await respond(to: request, context: context, timing: timing)
            }
        } catch {
            var apiError = APIError(converting: error, logger: context.logger)
            apiError.headers[.chronicleOverhead] = Self.formatOverhead(timing.overhead)
            throw apiError
        }
    }

    private func respond(to request: Request, context: Context, timing: CallTiming) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodySize {
            throw Self.tooLarge(maxBodySize)
        }
        let bytes: ByteBuffer
        do {
            // Uploading is the client's time, not the gateway's.
            bytes = try await timing.waiting { try await request.body.collect(upTo: maxBodySize) }
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Self.tooLarge(maxBodySize)
        }
        let (call, decodedOptions) = try RequestDecoding.chatCall(bytes, headers: request.headers)
        var options = decodedOptions
        try policy.check(&options, messageCount: call.messageCount)
        options.internalMetadata.gatewayKey = context.gatewayKeyName

        let gateway = self.gateway
        let channel = context.clientChannel
        if call.isStreaming {
            let stream = try await ClientDisconnect.cancelling(on: channel) { [options] in
                try await gateway.send(call: call, options: options, timing: timing)
            }
            let includeUsage = call.includesStreamUsage
            // A stream's header can only tell the overhead before its first byte; the stored value covers
            // the whole stream.
            return ServerSentEvents.response(
                for: stream, forwardUsageOnlyChunks: includeUsage,
                overheadHeader: Self.formatOverhead(timing.overhead),
                watch: channel.flatMap(ClientDisconnect.watch(for:)), logger: context.logger)
        }
        let (stream, collected) = try await ClientDisconnect.cancelling(on: channel) { [options] in
            let stream = try await gateway.send(call: call, options: options, timing: timing)
            return (stream, try await stream.collect())
        }
        let responseBody: ByteBuffer
        if let wire = collected.response.wireJSON,
           let spliced = try WireBody.splicing(collected.requestInfo, into: wire) {
            responseBody = spliced
        } else {
            responseBody = ByteBuffer(bytes: try JSONCoding.encodeBytes(
                WithMeta(value: try collected.response.decoded(), meta: collected.requestInfo)))
        }
        let overhead = stream.complete()
        return Response(
            status: .ok, headers: [.contentType: "application/json", .chronicleOverhead: Self.formatOverhead(overhead)],
            body: ResponseBody(byteBuffer: responseBody))
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
    /// the upstream read instead of growing a buffer, with no hand-over between tasks per event. A watcher
    /// (``ConnectionWatch``) aborts the upstream when the client disconnects, even while the upstream is
    /// silent and nothing is being written.
    static func response(for stream: ChatStream, forwardUsageOnlyChunks: Bool, overheadHeader: String,
                         watch: ConnectionWatch?, logger: Logger) -> Response {
        let headers: HTTPFields = [
            .contentType: "text/event-stream",
            .cacheControl: "no-cache",
            .chronicleOverhead: overheadHeader,
        ]
        let timing = stream.timing
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let watch {
                    group.addTask {
                        await watch.waitForDisconnect()
                        // Cancelled when the relay ended first: nothing to abort then.
                        if !Task.isCancelled { stream.abortUpstream() }
                    }
                }
                defer { group.cancelAll() }
                try await relay(stream, forwardUsageOnlyChunks: forwardUsageOnlyChunks, to: &writer, logger: logger)
            }
            try await timing.waiting { try await writer.finish(nil) }
            stream.complete()
        })
    }

    /// Writes the stream's events as SSE, then `event: error` if it failed, then `[DONE]`. A failed write
    /// (the client went away) records the call as cancelled and ends the relay by throwing.
    static func relay(_ stream: ChatStream, forwardUsageOnlyChunks: Bool, to writer: inout some ResponseBodyWriter,
                      logger: Logger) async throws {
        let timing = stream.timing
        var meta: RequestInfo? = stream.requestInfo
        var failure: ByteBuffer?
        var iterator = stream.makeAsyncIterator()
        while true {
            let encoded: ByteBuffer
            do {
                guard let event = try await iterator.next() else { break }
                let chunk: ChatChunk
                switch event {
                case .requestInfo, .responseInfo:
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
                stream.cancel()
                logger.warning("stream failed", metadata: ["error": "\(type(of: error))"])
                break
            }
            meta = nil
            try await write(encoded, to: &writer, stream: stream)
        }
        if let failure { try await write(failure, to: &writer, stream: stream) }
        try await write(done, to: &writer, stream: stream)
    }

    /// Writes one event; waiting for the client is not the gateway's time. A client that went away gets
    /// the call recorded as cancelled.
    private static func write(_ event: ByteBuffer, to writer: inout some ResponseBodyWriter, stream: ChatStream)
        async throws
    {
        let start = ContinuousClock.now
        defer { stream.timing.addWaiting(ContinuousClock.now - start) }
        do {
            try await writer.write(event)
        } catch {
            stream.cancel()
            throw error
        }
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
}
