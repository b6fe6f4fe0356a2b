import AsyncHTTPClient
@testable import ChronicleCore
import ChronicleTesting
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

/// Runs a task's jobs on one event loop, as the server runs each request on its connection's loop.
private final class LoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop
    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}

/// Runs `operation` on one of the singleton group's loops, like a server request.
private func onOneLoop<T: Sendable>(_ operation: @Sendable () async throws -> T) async throws -> T {
    try await withTaskExecutorPreference(LoopExecutor(MultiThreadedEventLoopGroup.singleton.next()), operation: operation)
}

/// The client under test: AsyncHTTPClient's event loop group (the singleton), the chosen transport.
func upstreamClient(_ kind: UpstreamHTTPClientKind, clock: any GatewayClock = SystemClock(),
                    pool: HTTP1PoolConfiguration = HTTP1PoolConfiguration()) -> UpstreamHTTPClient {
    UpstreamHTTPClient(httpClient: HTTPClient.shared, clock: clock, kind: kind, pool: pool)
}

/// Moves `clock` on by `step` until `task` ends: the idle timer is armed once the reader parks, which this
/// side cannot observe directly.
func advance<T>(_ clock: ManualClock, by step: Duration, until task: Task<T, any Error>) async {
    let done = NIOLockedValueBox(false)
    let watcher = Task {
        _ = await task.result
        done.withLockedValue { $0 = true }
    }
    for _ in 0..<500 where !done.withLockedValue({ $0 }) {
        clock.advance(by: step)
        try? await Task.sleep(for: .milliseconds(10))
    }
    _ = await watcher.result
}

/// Waits (polling real time, bounded) until `condition` holds.
func eventually(within limit: Duration = .seconds(5), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

private let ok = RawUpstream.okResponse()
private let body = ByteBuffer(string: #"{"model":"m"}"#)

private func call(_ client: UpstreamHTTPClient, _ url: String, timeout: Duration = .seconds(10))
    async throws -> String
{
    let response = try await client.post(url: url, headers: [:], body: body, timeout: timeout)
    return String(buffer: try await client.readBody(response, idleTimeout: timeout))
}

/// The pooled HTTP/1.1 transport over real sockets: reuse, retries, aborts, backpressure, TLS, timeouts.
@Suite("Pooled HTTP/1.1 upstream connections")
struct HTTP1PoolTests {
    @Test func sequentialCallsReuseOneConnection() async throws {
        let upstream = try await RawUpstream.start(.keepAlive([.respond(ok)]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            for _ in 0..<5 { #expect(try await call(client, upstream.url()) == #"{"ok":true}"#) }
        }
        #expect(upstream.requests == 5)
        #expect(upstream.connections == 1, "keep-alive: one connection for sequential calls on one loop")
        await client.shutdown()
        await upstream.stop()
    }

    /// `connection: close` and HTTP/1.0 answers are not reused; a body delimited by the close is read whole.
    @Test func nonKeepAliveAnswersAreNotReused() async throws {
        let closing = try await RawUpstream.start(.keepAlive([.respond(RawUpstream.okResponse(extraHeaders: "connection: close\r\n"))]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            #expect(try await call(client, closing.url()) == #"{"ok":true}"#)
            #expect(try await call(client, closing.url()) == #"{"ok":true}"#)
        }
        #expect(closing.connections == 2)
        let http10 = try await RawUpstream.start(.keepAlive([.writeThenClose(Array("HTTP/1.0 200 OK\r\n\r\n{\"old\":1}".utf8))]))
        try await onOneLoop { () async throws in
            #expect(try await call(client, http10.url()) == #"{"old":1}"#)
            #expect(try await call(client, http10.url()) == #"{"old":1}"#)
        }
        #expect(http10.connections == 2)
        await client.shutdown()
        await closing.stop()
        await http10.stop()
    }

    @Test func chunkedBodyIsReassembled() async throws {
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        let upstream = try await RawUpstream.start(.keepAlive([.respond(Array(chunked.utf8))]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            #expect(try await call(client, upstream.url()) == "abcdefg")
            #expect(try await call(client, upstream.url()) == "abcdefg")
        }
        #expect(upstream.connections == 1)
        await client.shutdown()
        await upstream.stop()
    }

    /// A kept-alive connection the upstream closed before answering: the call is sent again, once, on a
    /// fresh connection.
    @Test func staleConnectionIsRetriedOnce() async throws {
        let upstream = try await RawUpstream.start(.keepAlive([.respond(ok), .close]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            #expect(try await call(client, upstream.url()) == #"{"ok":true}"#)
            #expect(try await call(client, upstream.url()) == #"{"ok":true}"#, "answered on a fresh connection")
        }
        #expect(upstream.connections == 2)
        #expect(upstream.requests == 3)
        await client.shutdown()
        await upstream.stop()
    }

    /// Once a response byte arrived, the request is never sent again.
    @Test func noRetryAfterResponseBytes() async throws {
        let upstream = try await RawUpstream.start(.keepAlive([.respond(ok), .writeThenClose(Array("HTTP/1.1 200 O".utf8))]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            #expect(try await call(client, upstream.url()) == #"{"ok":true}"#)
            await #expect(throws: ProviderError.self) { try await call(client, upstream.url()) }
        }
        #expect(upstream.connections == 1, "not retried on another connection")
        await client.shutdown()
        await upstream.stop()
    }

    enum GiveUp: String, CaseIterable, Sendable { case abort, dropReader, cancelTask }

    /// Giving up on a body part-way closes that connection; the next call opens a new one.
    @Test(arguments: GiveUp.allCases)
    func givingUpClosesTheConnection(_ how: GiveUp) async throws {
        let chunk = "data: 1\n\n"
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            + String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n"
        let upstream = try await RawUpstream.start(.keepAlive([.respond(Array(head.utf8))]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            let response = try await client.post(url: upstream.url(), headers: [:], body: body, timeout: .seconds(10))
            switch how {
            case .abort:
                _ = try await response.body.next(idleTimeout: .seconds(10))
                response.body.abort()
            case .dropReader:
                var reader: UpstreamBodyReader? = response.body.reader()
                _ = try await reader?.next(idleTimeout: .seconds(10))
                reader = nil
            case .cancelTask:
                let body = response.body
                let task = Task { while try await body.next(idleTimeout: .seconds(60)) != nil {} }
                try await Task.sleep(for: .milliseconds(50))
                task.cancel()
                _ = await task.result
            }
        }
        #expect(await eventually { upstream.closedRequests == 1 }, "the half-read connection is closed")
        #expect(await eventually { await client.openPooledConnections() == 0 })
        await client.shutdown()
        await upstream.stop()
    }

    /// A reader that does not read: the transport stops reading the socket, so the upstream stalls after
    /// the high-water mark plus the kernel's buffers, instead of the gateway buffering the whole body.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func slowReaderStopsTheUpstream(_ kind: UpstreamHTTPClientKind) async throws {
        let size = 64 * 1024 * 1024
        let upstream = try await RawUpstream.start(.largeBody(size: size))
        let client = upstreamClient(kind)
        var response: UpstreamResponse? = try await client.post(url: upstream.url(), headers: [:], body: body, timeout: .seconds(10))
        // Wait until the upstream stops making progress.
        var last = -1
        while upstream.bodyBytesWritten != last {
            last = upstream.bodyBytesWritten
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(upstream.bodyBytesWritten < 24 * 1024 * 1024, "written: \(upstream.bodyBytesWritten)")
        if let unwrapped = response {
            let all = try await client.readBody(unwrapped, limit: size, idleTimeout: .seconds(10))
            #expect(all.readableBytes == size)
        }
        response = nil
        await client.shutdown()
        await upstream.stop()
    }

    /// A response whose last part fills the buffer to the high-water mark pauses reading as it ends: the
    /// connection goes back to the pool reading again, so the next call on it is answered.
    @Test func connectionPausedAtTheEndIsReusable() async throws {
        let size = UpstreamExchange.highWaterMark
        let response = Array("HTTP/1.1 200 OK\r\ncontent-length: \(size)\r\n\r\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: size)
        let upstream = try await RawUpstream.start(.keepAlive([.respond(response)]))
        let client = upstreamClient(.nio)
        try await onOneLoop { () async throws in
            for _ in 0..<2 {
                let response = try await client.post(url: upstream.url(), headers: [:], body: body, timeout: .seconds(3))
                // Let the whole body arrive (and pause reading) before taking any of it.
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await client.readBody(response, idleTimeout: .seconds(3)).readableBytes == size)
            }
        }
        #expect(upstream.connections == 1)
        await client.shutdown()
        await upstream.stop()
    }

    static let tlsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/tls")

    static func serverContext(_ name: String) throws -> NIOSSLContext {
        let directory = tlsDirectory.path
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile("\(directory)/\(name).pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: "\(directory)/\(name).key", format: .pem)))
        return try NIOSSLContext(configuration: configuration)
    }

    static func trustingTestCA() throws -> HTTP1PoolConfiguration {
        var pool = HTTP1PoolConfiguration()
        pool.tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(tlsDirectory.appendingPathComponent("ca.pem").path))
        return pool
    }

    @Test func tlsWithACustomTrustRoot() async throws {
        let upstream = try await RawUpstream.start(.keepAlive([.respond(ok)]), tls: try Self.serverContext("localhost"))
        let client = upstreamClient(.nio, pool: try Self.trustingTestCA())
        try await onOneLoop { () async throws in
            #expect(try await call(client, upstream.url()) == #"{"ok":true}"#)
            #expect(try await call(client, upstream.url()) == #"{"ok":true}"#)
        }
        #expect(upstream.connections == 1)
        await client.shutdown()
        await upstream.stop()
    }

    /// Hostname verification is on: a certificate for another name is refused, as is an unknown authority.
    @Test func tlsRefusesAWrongNameOrAnUnknownAuthority() async throws {
        let wrongName = try await RawUpstream.start(.keepAlive([.respond(ok)]), tls: try Self.serverContext("wrong.example"))
        let trusting = upstreamClient(.nio, pool: try Self.trustingTestCA())
        do {
            _ = try await call(trusting, wrongName.url())
            Issue.record("a certificate for another name was accepted")
        } catch let error as ProviderError {
            #expect(error.kind == .connection)
        }
        let rightName = try await RawUpstream.start(.keepAlive([.respond(ok)]), tls: try Self.serverContext("localhost"))
        let systemRoots = upstreamClient(.nio)
        do {
            _ = try await call(systemRoots, rightName.url())
            Issue.record("a certificate from an unknown authority was accepted")
        } catch let error as ProviderError {
            #expect(error.kind == .connection)
        }
        await trusting.shutdown()
        await systemRoots.shutdown()
        await wrongName.stop()
        await rightName.stop()
    }

    /// No head within the timeout, on the injected clock: `.timeout`, and the connection is closed.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func headerTimeoutOnTheManualClock(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await RawUpstream.start(.writeThenHang([]))
        let clock = ManualClock()
        let client = upstreamClient(kind, clock: clock)
        let pending = Task { try await call(client, upstream.url(), timeout: .seconds(30)) }
        await clock.waitForPendingSleeps(1)
        #expect(await eventually { upstream.requests == 1 })
        clock.advance(by: .seconds(30))
        do {
            _ = try await pending.value
            Issue.record("no timeout")
        } catch let error as ProviderError {
            #expect(error.kind == .timeout)
        }
        #expect(await eventually { upstream.closedRequests == 1 })
        await client.shutdown()
        await upstream.stop()
    }

    /// A body that goes silent while a reader waits fails with `.timeout` after the idle timeout.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func idleBodyTimeoutOnTheManualClock(_ kind: UpstreamHTTPClientKind) async throws {
        let chunk = "data: 1\n\n"
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n"
        let upstream = try await RawUpstream.start(.writeThenHang(Array(head.utf8)))
        let clock = ManualClock()
        let client = upstreamClient(kind, clock: clock)
        let response = try await client.post(url: upstream.url(), headers: [:], body: body, timeout: .seconds(30))
        let first = try await response.body.next(idleTimeout: .seconds(2))
        #expect(first.map { String(buffer: $0) } == chunk)
        let reader = Task { try await response.body.next(idleTimeout: .seconds(2)) }
        await advance(clock, by: .seconds(2), until: reader)
        do {
            _ = try await reader.value
            Issue.record("no timeout")
        } catch let error as ProviderError {
            #expect(error.kind == .timeout)
        }
        #expect(await eventually { upstream.closedRequests == 1 })
        await client.shutdown()
        await upstream.stop()
    }

    /// Shutting down closes pooled connections; later calls fail with a connection error.
    @Test func shutdownClosesPooledConnections() async throws {
        let upstream = try await RawUpstream.start(.keepAlive([.respond(ok)]))
        let client = upstreamClient(.nio)
        #expect(try await call(client, upstream.url()) == #"{"ok":true}"#)
        #expect(await client.openPooledConnections() == 1)
        await client.shutdown()
        #expect(await client.openPooledConnections() == 0)
        #expect(await eventually { upstream.closedRequests == 1 })
        do {
            _ = try await call(client, upstream.url())
            Issue.record("a call after shutdown succeeded")
        } catch let error as ProviderError {
            #expect(error.kind == .connection)
        }
        await upstream.stop()
    }

    @Test func idleConnectionsCloseAfterTheIdleTimeout() async throws {
        let upstream = try await RawUpstream.start(.keepAlive([.respond(ok)]))
        var pool = HTTP1PoolConfiguration()
        pool.idleTimeout = .milliseconds(100)
        let client = upstreamClient(.nio, pool: pool)
        #expect(try await call(client, upstream.url()) == #"{"ok":true}"#)
        #expect(await eventually { upstream.closedRequests == 1 }, "the idle connection was closed")
        #expect(await client.openPooledConnections() == 0)
        await client.shutdown()
        await upstream.stop()
    }

    /// `Gateway.shutdown` closes the pooled connections, as the server does on SIGTERM.
    @Test func gatewayShutdownClosesPooledConnections() async throws {
        let answer = try Fixtures.text("openai_text_response_nonstreaming.json")
        let upstream = try await RawUpstream.start(.keepAlive([.respond(RawUpstream.okResponse(answer))]))
        let config = GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withoutDefaultProviders().build()
        _ = try await gateway.send(request("p/m")).collect()
        #expect(upstream.connections == 1)
        #expect(upstream.closedRequests == 0, "kept alive after the call")
        try await gateway.shutdown()
        #expect(await eventually { upstream.closedRequests == 1 })
        await upstream.stop()
    }
}
