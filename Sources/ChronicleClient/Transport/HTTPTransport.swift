import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Reaches a Chronicle gateway (this one or Rust Chronicle) over HTTP: `POST /v1/chat/completions` and
/// `POST /v1/events`.
public struct HTTPTransport: ChronicleTransport {
    /// The gateway's base URL, such as `http://127.0.0.1:9782`.
    public let baseURL: String
    /// Sent as `Authorization: Bearer …` when the gateway requires a key.
    public let apiKey: String?
    let httpClient: HTTPClient
    /// How long one delivery of events may take before it is retried.
    let eventTimeout: TimeAmount
    /// How long a chat call may take in all (the gateway's own timeouts are per attempt).
    let chatTimeout: TimeAmount
    /// The largest answer body read.
    let maxBodySize = 64 * 1024 * 1024

    /// - Parameters:
    ///   - baseURL: the gateway's base URL; a trailing `/` or `/v1` is accepted.
    ///   - apiKey: the gateway key, when the gateway requires one.
    ///   - httpClient: the client to use; ``sharedHTTPClient`` by default.
    ///   - chatTimeout: how long a chat call may take in all, streaming included.
    ///   - eventTimeout: how long one delivery of events may take before it counts as failed and is retried.
    public init(baseURL: String, apiKey: String? = nil, httpClient: HTTPClient = HTTPTransport.sharedHTTPClient,
                chatTimeout: Duration = .seconds(600), eventTimeout: Duration = .seconds(10)) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/v1") { base.removeLast(3) }
        self.baseURL = base
        self.apiKey = apiKey
        self.httpClient = httpClient
        self.chatTimeout = .milliseconds(chatTimeout.wholeMilliseconds)
        self.eventTimeout = .milliseconds(eventTimeout.wholeMilliseconds)
    }

    /// The HTTP client transports share unless given one. A connection the gateway refuses fails at once
    /// rather than being retried until the connect timeout (`HTTPClient.shared` keeps trying for 90 s): a
    /// call to a gateway that is down fails fast, and event delivery retries on its own backoff. It lives as
    /// long as the process, like `HTTPClient.shared`.
    public static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    func makeRequest(path: String, body: [UInt8], headers: [(name: String, value: String)], streaming: Bool)
        -> HTTPClientRequest
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "accept", value: streaming ? "text/event-stream" : "application/json")
        if let apiKey { request.headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    static func callID(_ headers: HTTPHeaders) -> UUID? {
        headers.first(name: "x-chronicle-call-id").flatMap(UUID.init(uuidString:))
    }

    public func chat(_ request: TransportRequest) async throws -> TransportReply {
        let httpRequest = makeRequest(path: "/v1/chat/completions", body: request.body, headers: request.headers,
                                      streaming: false)
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await httpClient.execute(httpRequest, timeout: chatTimeout)
            body = try await response.body.collect(upTo: maxBodySize)
        } catch {
            throw ChronicleError(status: nil, kind: "transport", message: "The gateway could not be reached: \(error)")
        }
        let callID = Self.callID(response.headers)
        guard (200..<300).contains(response.status.code) else {
            throw ChronicleError.fromBody(status: Int(response.status.code), body: Array(body.readableBytesView),
                                          callID: callID)
        }
        return TransportReply(body: Array(body.readableBytesView), callID: callID)
    }

    public func streamChat(_ request: TransportRequest) async throws -> TransportStream {
        let httpRequest = makeRequest(path: "/v1/chat/completions", body: request.body, headers: request.headers,
                                      streaming: true)
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(httpRequest, timeout: chatTimeout)
        } catch {
            throw ChronicleError(status: nil, kind: "transport", message: "The gateway could not be reached: \(error)")
        }
        let callID = Self.callID(response.headers)
        guard (200..<300).contains(response.status.code) else {
            let body = (try? await response.body.collect(upTo: maxBodySize)) ?? ByteBuffer()
            throw ChronicleError.fromBody(status: Int(response.status.code), body: Array(body.readableBytesView),
                                          callID: callID)
        }
        let (events, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        // The response body is read by a task of its own, ended when the consumer stops iterating.
        let reader = Task {
            var parser = ServerSentEventReader()
            do {
                for try await buffer in response.body {
                    for event in parser.feed(buffer.readableBytesView) {
                        if try Self.deliver(event, to: continuation, callID: callID) { return }
                    }
                }
                if let event = parser.finish(), try Self.deliver(event, to: continuation, callID: callID) { return }
                continuation.finish()
            } catch let error as ChronicleError {
                continuation.finish(throwing: error)
            } catch {
                continuation.finish(throwing: ChronicleError(
                    status: nil, kind: "transport", message: "The stream was cut off: \(error)", callID: callID))
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return TransportStream(callID: callID, events: events)
    }

    /// Yields one SSE event's data; returns whether the stream is over (`[DONE]`). An `error` event throws.
    static func deliver(_ event: ServerSentEventReader.Event,
                        to continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation,
                        callID: UUID?) throws -> Bool {
        if event.name == "error" {
            throw ChronicleError.fromBody(status: nil, body: event.data, callID: callID)
        }
        if event.data == Array("[DONE]".utf8) {
            continuation.finish()
            return true
        }
        continuation.yield(event.data)
        return false
    }

    public func sendEvents(_ body: [UInt8]) async -> EventDeliveryOutcome {
        let request = makeRequest(path: "/v1/events", body: body, headers: [], streaming: false)
        do {
            let response = try await httpClient.execute(request, timeout: eventTimeout)
            let answer = try await response.body.collect(upTo: 1024 * 1024)
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return .delivered }
            let error = ChronicleError.fromBody(status: status, body: Array(answer.readableBytesView), callID: nil)
            // Recording switched off answers 503, but waiting will not switch it on.
            if error.kind == "recording_disabled" { return .rejected(error.message) }
            if status == 408 || status == 429 || status >= 500 { return .retryable("\(status): \(error.message)") }
            return .rejected("\(status): \(error.message)")
        } catch {
            return .retryable("\(error)")
        }
    }
}
