import ChronicleClient
import ChronicleCore
import Foundation

/// A ``ChronicleTransport`` that hands calls and events to an in-process `Gateway`, with no HTTP: the same
/// JSON the HTTP routes read is decoded by the same `Codable` types, calls go through `Gateway.send`, and
/// events through `Gateway.recordEvents`, as the server's `/v1/events` route does. So a client in embedded
/// mode records the same rows as one talking to a server.
public struct EmbeddedTransport: ChronicleTransport {
    public let gateway: Gateway

    public init(gateway: Gateway) {
        self.gateway = gateway
    }

    public func chat(_ request: TransportRequest) async throws -> TransportReply {
        let (chatRequest, options) = try Self.decode(request)
        let collected: CollectedResponse
        do {
            collected = try await gateway.send(chatRequest, options: options).collect()
        } catch {
            throw Self.translate(error)
        }
        let body = try Self.encode(try collected.response.decoded(), meta: collected.requestInfo)
        return TransportReply(body: body, callID: collected.requestInfo.id)
    }

    public func streamChat(_ request: TransportRequest) async throws -> TransportStream {
        let (chatRequest, options) = try Self.decode(request)
        let stream: ChronicleCore.ChatStream
        do {
            stream = try await gateway.send(chatRequest, options: options)
        } catch {
            throw Self.translate(error)
        }
        let (events, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let relay = Task {
            // The first chunk carries `meta`, as on the HTTP route.
            var meta: RequestInfo? = stream.requestInfo
            do {
                for try await event in stream {
                    let chunk: ChronicleCore.ChatChunk
                    switch event {
                    case .chunk(let streamed): chunk = streamed
                    case .single(let response): chunk = ChronicleCore.ChatChunk(response: try response.decoded())
                    case .requestInfo, .responseInfo, .relayedMessages, .relayedResponses, .embeddings: continue
                    }
                    continuation.yield(try Self.encode(try chunk.decoded(), meta: meta))
                    meta = nil
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: Self.translate(error))
            }
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination {
                relay.cancel()
                // Finished as cancelled rather than left to the release of the call.
                stream.cancel()
            }
        }
        return TransportStream(callID: stream.requestInfo.id, events: events)
    }

    public func sendEvents(_ body: [UInt8]) async -> EventDeliveryOutcome {
        struct Batch: Decodable {
            var events: [WorkflowEvent]
        }
        guard gateway.isRecording else { return .rejected("recording is off: the gateway has no log sink") }
        do {
            let batch = try JSONCoding.decode(Batch.self, from: body)
            gateway.recordEvents(batch.events)
            return .delivered
        } catch {
            return .rejected("Invalid event payload: \(error)")
        }
    }

    /// The chat request and Chronicle's options from one body, as the HTTP route splits it, with the run
    /// and step headers filling what the body's metadata leaves out.
    static func decode(_ request: TransportRequest) throws -> (ChronicleCore.ChatRequest, RequestOptions) {
        var chatRequest: ChronicleCore.ChatRequest
        var options: RequestOptions
        do {
            chatRequest = try JSONCoding.decode(ChronicleCore.ChatRequest.self, from: request.body)
            options = try JSONCoding.decode(RequestOptions.self, from: request.body)
        } catch {
            throw ChronicleError(status: 400, kind: "invalid_request",
                                                 message: "Invalid request body: \(error)")
        }
        for key in RequestOptions.bodyKeys { chatRequest.unknownFields.removeValue(forKey: key) }
        var fromHeaders = RequestMetadata()
        fromHeaders.runID = request.header("x-chronicle-run-id").flatMap(UUID.init(uuidString:))
        fromHeaders.stepID = request.header("x-chronicle-step-id").flatMap(UUID.init(uuidString:))
        options.metadata.fillMissing(from: fromHeaders)
        return (chatRequest, options)
    }

    /// A response or chunk as JSON with Chronicle's `meta` beside its members.
    static func encode(_ value: some Encodable, meta: RequestInfo?) throws -> [UInt8] {
        var object = try JSONCoding.decode(ChronicleCore.JSONValue.self, from: try JSONCoding.encodeBytes(value))
        if let meta, case .object(var members) = object {
            members["meta"] = try JSONCoding.decode(ChronicleCore.JSONValue.self, from: try JSONCoding.encodeBytes(meta))
            object = .object(members)
        }
        return try JSONCoding.encodeBytes(object)
    }

    /// A gateway error as the HTTP route would report it: its status, kind and message.
    static func translate(_ error: any Error) -> any Error {
        switch error {
        case let error as GatewayError:
            return ChronicleError(status: error.httpStatus, kind: error.kind, message: error.message)
        case let error as ProviderError:
            let gatewayError = GatewayError.provider(error, numRetries: 0, wasRateLimited: error.kind == .rateLimit,
                                                     attempts: [])
            return ChronicleError(status: gatewayError.httpStatus, kind: gatewayError.kind,
                                                  message: gatewayError.message)
        default:
            return error
        }
    }
}

extension ChronicleClient {
    /// A client of an in-process gateway: the same API and the same recording as over HTTP, with no HTTP.
    ///
    /// ```swift
    /// let gateway = try Gateway.Builder().withConfiguration(configuration).withLogSink(writer).build()
    /// let client = ChronicleClient(gateway: gateway)
    /// ```
    public convenience init(gateway: Gateway, configuration: Configuration = Configuration()) {
        self.init(transport: EmbeddedTransport(gateway: gateway), configuration: configuration)
    }
}
