import ChronicleCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// A real HTTP server on a loopback port that answers like a provider: recorded responses, streams with
/// pauses, errors, or silence. It records every request it receives.
public final class MockUpstream: Sendable {
    /// One canned answer.
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Body

        public enum Body: Sendable {
            /// A complete body.
            case bytes([UInt8])
            /// A stream written part by part, pausing `delay` before each part after the first.
            case parts([[UInt8]], delay: Duration)
            /// Headers, then the given parts, then silence until the client gives up.
            case partsThenHang([[UInt8]])
            /// No response at all until the client gives up.
            case hang
        }

        public init(status: Int = 200, headers: [(String, String)] = [], body: Body) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        /// A JSON body.
        public static func json(_ text: String, status: Int = 200, headers: [(String, String)] = []) -> Reply {
            Reply(status: status, headers: [("content-type", "application/json")] + headers, body: .bytes(Array(text.utf8)))
        }

        /// A server-sent-event stream, one write per event (events split on blank lines).
        public static func sse(_ text: String, delay: Duration = .zero) -> Reply {
            let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
            let events = normalized.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { Array(($0 + "\n\n").utf8) }
            return Reply(headers: [("content-type", "text/event-stream")], body: .parts(events, delay: delay))
        }
    }

    /// A request as the mock received it.
    public struct RecordedRequest: Sendable {
        public var method: String
        public var path: String
        public var headers: [String: String]
        public var body: [UInt8]

        /// The body parsed as JSON.
        public var json: JSONValue? { try? JSONCoding.decode(JSONValue.self, from: body) }
    }

    private struct State {
        var replies: [Reply]
        var requests: [RecordedRequest] = []
        var finishedStreams = 0
        var cancelledStreams = 0
        var stopping = false
    }

    private let state: NIOLockedValueBox<State>
    private let serviceGroup: ServiceGroup
    private let runTask: Task<Void, any Error>
    /// The port the mock listens on.
    public let port: Int

    /// `http://127.0.0.1:<port>` plus `path`.
    public func url(_ path: String = "/v1/chat/completions") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Requests received so far.
    public var requests: [RecordedRequest] { state.withLockedValue { $0.requests } }

    /// Streams the mock finished writing, and streams whose client went away first.
    public var streamOutcomes: (finished: Int, cancelled: Int) {
        state.withLockedValue { ($0.finishedStreams, $0.cancelledStreams) }
    }

    /// Starts a mock that answers with `replies` in order, repeating the last one.
    public static func start(_ replies: Reply...) async throws -> MockUpstream {
        try await start(replies: replies)
    }

    public static func start(replies: [Reply]) async throws -> MockUpstream {
        precondition(!replies.isEmpty, "a mock upstream needs at least one reply")
        let state = NIOLockedValueBox(State(replies: replies))
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: 64 * 1024 * 1024)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let reply = state.withLockedValue { state -> Reply in
                state.requests.append(RecordedRequest(
                    method: request.method.rawValue, path: request.uri.path, headers: headers,
                    body: Array(body.readableBytesView)))
                return state.replies.count > 1 ? state.replies.removeFirst() : state.replies[0]
            }
            return try await respond(reply, state: state)
        }
        router.post("/**", use: handler)
        // GET serves fetched resources, such as images a provider request links to.
        router.get("/**", use: handler)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "mock-upstream")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await value in portStream { port = value }
        return MockUpstream(state: state, serviceGroup: group, runTask: task, port: port)
    }

    private init(state: NIOLockedValueBox<State>, serviceGroup: ServiceGroup, runTask: Task<Void, any Error>, port: Int) {
        self.state = state
        self.serviceGroup = serviceGroup
        self.runTask = runTask
        self.port = port
    }

    private static func respond(_ reply: Reply, state: NIOLockedValueBox<State>) async throws -> Response {
        var headers = HTTPFields()
        for (name, value) in reply.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        let status = HTTPResponse.Status(code: reply.status)
        switch reply.body {
        case .bytes(let bytes):
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        case .hang:
            try await waitUntilStopping(state)
            return Response(status: .gatewayTimeout)
        case .parts(let parts, let delay):
            return Response(status: status, headers: headers, body: ResponseBody { writer in
                do {
                    for (index, part) in parts.enumerated() {
                        if index > 0, delay > .zero { try await Task.sleep(for: delay) }
                        try await writer.write(ByteBuffer(bytes: part))
                    }
                    try await writer.finish(nil)
                    state.withLockedValue { $0.finishedStreams += 1 }
                } catch {
                    state.withLockedValue { $0.cancelledStreams += 1 }
                    throw error
                }
            })
        case .partsThenHang(let parts):
            return Response(status: status, headers: headers, body: ResponseBody { writer in
                do {
                    for part in parts { try await writer.write(ByteBuffer(bytes: part)) }
                    try await waitUntilStopping(state)
                    try await writer.finish(nil)
                } catch {
                    state.withLockedValue { $0.cancelledStreams += 1 }
                    throw error
                }
            })
        }
    }

    /// Silence until the client gives up or the mock stops; polled, so a stopping mock never waits on it.
    private static func waitUntilStopping(_ state: NIOLockedValueBox<State>) async throws {
        while !state.withLockedValue({ $0.stopping }) {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Stops the server gracefully: hanging replies end, in-flight ones finish.
    public func stop() async {
        state.withLockedValue { $0.stopping = true }
        await serviceGroup.triggerGracefulShutdown()
        _ = try? await runTask.value
    }
}
