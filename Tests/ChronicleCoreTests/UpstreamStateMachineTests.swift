@testable import ChronicleCore
import ChronicleTesting
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

/// The exchange state machine, driven synchronously: waiters are numbers, timers are names.
@Suite("Upstream exchange state machine")
struct UpstreamExchangeStateMachineTests {
    typealias Machine = UpstreamExchangeStateMachine<Int, Int, String>
    let head = HTTPResponseHead(version: .http1_1, status: .ok)

    func started(highWaterMark: Int = 8) -> Machine {
        var machine = Machine(highWaterMark: highWaterMark)
        #expect(machine.startHeadTimer("head") == nil)
        return machine
    }

    @Test func headBeforeItsWaiterIsKept() {
        var machine = started()
        guard case .cancelTimer("head") = machine.receiveHead(head) else { Issue.record("timer not cancelled"); return }
        guard case .deliver(let delivered) = machine.waitForHead(1) else { Issue.record("head not delivered"); return }
        #expect(delivered.status == .ok)
    }

    @Test func waiterGetsTheHeadWhenItArrives() {
        var machine = started()
        guard case .wait = machine.waitForHead(1) else { Issue.record("should wait"); return }
        guard case .deliver(1, _, cancelTimer: "head") = machine.receiveHead(head) else {
            Issue.record("waiter not resumed"); return
        }
    }

    @Test func bodyIsMergedAndReadingPausesAtTheHighWaterMark() {
        var machine = started(highWaterMark: 8)
        _ = machine.waitForHead(1)
        _ = machine.receiveHead(head)
        guard case .none = machine.receiveBody(ByteBuffer(string: "abcd")) else { Issue.record("paused early"); return }
        guard case .pauseReading = machine.receiveBody(ByteBuffer(string: "efgh")) else { Issue.record("no pause"); return }
        // Already paused: not asked twice.
        guard case .none = machine.receiveBody(ByteBuffer(string: "ij")) else { Issue.record("paused twice"); return }
        guard case .deliver(let bytes, resumeReading: true) = machine.takeBody() else { Issue.record("no resume"); return }
        #expect(String(buffer: bytes) == "abcdefghij")
        guard case .wait = machine.takeBody() else { Issue.record("should wait"); return }
    }

    @Test func waitingReaderGetsBytesAndTheEnd() {
        var machine = started()
        _ = machine.waitForHead(1)
        _ = machine.receiveHead(head)
        guard case .wait = machine.takeBody() else { Issue.record("should wait"); return }
        let generation = machine.waitForBody(7)
        #expect(machine.armBodyTimer("idle", generation: generation) == nil)
        guard case .deliver(7, let part, cancelTimer: "idle") = machine.receiveBody(ByteBuffer(string: "x")) else {
            Issue.record("reader not resumed"); return
        }
        #expect(String(buffer: part) == "x")
        _ = machine.takeBody()
        _ = machine.waitForBody(8)
        guard case .deliverEnd(8, cancelTimer: nil) = machine.receiveEnd(noHeadError: ProviderError(kind: .generic)) else {
            Issue.record("end not delivered"); return
        }
        guard case .end = machine.takeBody() else { Issue.record("not finished"); return }
    }

    /// A timer of an earlier wait that fires late must not fail the current wait.
    @Test func staleTimerIsIgnored() {
        var machine = started()
        _ = machine.waitForHead(1)
        _ = machine.receiveHead(head)
        _ = machine.takeBody()
        let first = machine.waitForBody(1)
        _ = machine.receiveBody(ByteBuffer(string: "x"))
        _ = machine.takeBody()
        _ = machine.takeBody()
        let second = machine.waitForBody(2)
        #expect(first != second)
        guard case .none = machine.timedOut(generation: first, ProviderError(kind: .timeout)) else {
            Issue.record("a stale timer failed the exchange"); return
        }
        guard case .fail(nil, 2, _, cancelTimer: nil, cancelRequest: true) =
            machine.timedOut(generation: second, ProviderError(kind: .timeout))
        else { Issue.record("the current timer did not fail the wait"); return }
    }

    @Test func headTimeoutFailsTheWaiterAndCancelsTheRequest() {
        var machine = started()
        _ = machine.waitForHead(3)
        guard case .fail(3, nil, let error, cancelTimer: "head", cancelRequest: true) =
            machine.timedOut(generation: 0, ProviderError(kind: .timeout))
        else { Issue.record("head waiter not failed"); return }
        #expect((error as? ProviderError)?.kind == .timeout)
        // The head arriving afterwards changes nothing.
        guard case .none = machine.receiveHead(head) else { Issue.record("late head accepted"); return }
    }

    /// Bytes that arrived before a transport failure are handed out first, then the failure.
    @Test func bytesBeforeATransportFailureComeFirst() {
        var machine = started()
        _ = machine.waitForHead(1)
        _ = machine.receiveHead(head)
        _ = machine.receiveBody(ByteBuffer(string: "partial"))
        guard case .none = machine.transportFailed(ProviderError(kind: .connectionClosed)) else {
            Issue.record("failure jumped the queue"); return
        }
        guard case .deliver(let bytes, _) = machine.takeBody() else { Issue.record("bytes lost"); return }
        #expect(String(buffer: bytes) == "partial")
        guard case .fail(let error) = machine.takeBody() else { Issue.record("failure lost"); return }
        #expect((error as? ProviderError)?.kind == .connectionClosed)
    }

    /// Giving up on a finished response does not cancel anything; on an unfinished one it cancels the request.
    @Test func abandonCancelsOnlyUnfinishedRequests() {
        var finished = started()
        _ = finished.waitForHead(1)
        _ = finished.receiveHead(head)
        _ = finished.receiveBody(ByteBuffer(string: "x"))
        _ = finished.receiveEnd(noHeadError: ProviderError(kind: .generic))
        guard case .fail(_, _, _, _, cancelRequest: false) = finished.abandon(ProviderError(kind: .cancelled)) else {
            Issue.record("a finished request was cancelled"); return
        }
        var unfinished = started()
        _ = unfinished.waitForHead(1)
        _ = unfinished.receiveHead(head)
        _ = unfinished.receiveBody(ByteBuffer(string: "x"))
        guard case .fail(_, _, _, _, cancelRequest: true) = unfinished.abandon(ProviderError(kind: .cancelled)) else {
            Issue.record("an unfinished request was not cancelled"); return
        }
    }

    @Test func endWithoutAHeadFailsTheHeadWaiter() {
        var machine = started()
        _ = machine.waitForHead(4)
        guard case .failHead(4, _, cancelTimer: "head") =
            machine.receiveEnd(noHeadError: ProviderError(kind: .connectionClosed))
        else { Issue.record("head waiter not failed"); return }
    }

    /// The exchange arms its idle timer on the injected clock only while a reader waits.
    @Test func idleTimeoutOnTheManualClock() async throws {
        let clock = ManualClock()
        let exchange = UpstreamExchange(eventLoop: MultiThreadedEventLoopGroup.singleton.next(), clock: clock)
        exchange.receiveHead(head)
        _ = try await exchange.awaitHead()
        _ = exchange.receiveBody(ByteBuffer(string: "first"))
        #expect(try await exchange.nextPart(idleTimeout: .seconds(5)).map { String(buffer: $0) } == "first")
        #expect(clock.pendingSleeps == 0, "no timer while bytes were ready")
        let reader = Task { try await exchange.nextPart(idleTimeout: .seconds(5)) }
        await clock.waitForPendingSleeps(1)
        clock.advance(by: .seconds(4))
        clock.advance(by: .seconds(1))
        await #expect(throws: ProviderError(kind: .timeout, message: "Provider stream was silent for 5000 ms")) {
            try await reader.value
        }
    }
}

/// The connection state machine: reuse, closing, and when a failed request may be sent again.
@Suite("HTTP/1.1 connection state machine")
struct HTTP1ConnectionStateMachineTests {
    func head(_ version: HTTPVersion = .http1_1, _ headers: HTTPHeaders = [:], status: HTTPResponseStatus = .ok)
        -> HTTPResponseHead
    {
        HTTPResponseHead(version: version, status: status, headers: headers)
    }

    @Test func keepAliveResponseReturnsTheConnection() {
        var machine = HTTP1ConnectionStateMachine()
        #expect(machine.startRequest() == .writeRequest)
        #expect(machine.startRequest() == nil, "one request at a time")
        #expect(machine.receivedHead(head()) == .forwardHead)
        #expect(machine.receivedEnd() == .finishAndRelease)
        #expect(machine.state == .idle)
        #expect(machine.startRequest() == .writeRequest)
        #expect(machine.state == .inRequest(reused: true, responseStarted: false))
    }

    @Test(arguments: [
        ("connection: close", HTTPVersion.http1_1, HTTPHeaders([("connection", "close")])),
        ("HTTP/1.0", HTTPVersion.http1_0, HTTPHeaders()),
    ])
    func nonKeepAliveResponseClosesTheConnection(_ name: String, _ version: HTTPVersion, _ headers: HTTPHeaders) {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        _ = machine.receivedHead(head(version, headers))
        #expect(machine.receivedEnd() == .finishAndClose, "\(name)")
        #expect(machine.channelClosed() == .none)
    }

    @Test func informationalHeadIsSkipped() {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        #expect(machine.receivedHead(head(status: .continue)) == .none)
        #expect(machine.receivedHead(head()) == .forwardHead)
    }

    /// A reused connection closed before any response byte: the request was never answered, send it again.
    @Test func staleReusedConnectionIsRetried() {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        _ = machine.receivedHead(head())
        _ = machine.receivedEnd()
        _ = machine.startRequest()
        #expect(machine.channelClosed() == .retryRequest)
    }

    @Test func noRetryOnceResponseBytesArrived() {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        _ = machine.receivedHead(head())
        _ = machine.receivedEnd()
        _ = machine.startRequest()
        machine.responseBytesArrived()
        #expect(machine.errorCaught("bad head") == .close)
        #expect(machine.channelClosed() == .failRequest(.beforeHead(errorDescription: "bad head")))
    }

    @Test func freshConnectionClosedIsNotRetried() {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        #expect(machine.channelClosed() == .failRequest(.beforeHead(errorDescription: nil)))
    }

    @Test func closeMidBodyFailsTheRequest() {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        _ = machine.receivedHead(head())
        #expect(machine.channelClosed() == .failRequest(.midBody(errorDescription: nil)))
    }

    @Test func abortClosesAndIsNotReportedAgain() {
        var machine = HTTP1ConnectionStateMachine()
        _ = machine.startRequest()
        _ = machine.receivedHead(head())
        #expect(machine.abort() == .close)
        #expect(machine.receivedEnd() == .none, "a half-read connection never goes back to the pool")
        #expect(machine.channelClosed() == .none)
    }

    @Test func idleConnectionClosedLeavesThePool() {
        var machine = HTTP1ConnectionStateMachine()
        #expect(machine.channelClosed() == .removeFromPool)
        var idle = HTTP1ConnectionStateMachine()
        #expect(idle.closeIfIdle() == .close)
        _ = idle.startRequest()
        #expect(idle.closeIfIdle() == .none)
    }

    @Test func endpointsParse() throws {
        let endpoint = try #require(UpstreamEndpoint(url: "https://API.example.com/v1/chat?x=1"))
        #expect(endpoint.key == .init(tls: true, host: "api.example.com", port: 443))
        #expect(endpoint.target == "/v1/chat?x=1")
        #expect(endpoint.hostHeader == "api.example.com")
        let local = try #require(UpstreamEndpoint(url: "http://[::1]:8080"))
        #expect(local.key == .init(tls: false, host: "::1", port: 8080))
        #expect(local.target == "/")
        #expect(local.hostHeader == "[::1]:8080")
        #expect(local.hostIsIPAddress)
        #expect(UpstreamEndpoint(url: "ftp://x/y") == nil)
        #expect(UpstreamEndpoint(url: "http://user:pw@x/y") == nil)
        #expect(UpstreamEndpoint(url: "http://x:99999/") == nil)
    }
}

/// Counts flushes on their way to the socket.
private final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    var flushes = 0
    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}

@Suite("HTTP/1.1 connection handler")
struct HTTP1ClientHandlerTests {
    /// Head, body and end leave in one flush, so the kernel sees one `writev` rather than one per part.
    @Test func requestIsWrittenWithOneFlush() throws {
        let channel = EmbeddedChannel()
        let endpoint = try #require(UpstreamEndpoint(url: "http://127.0.0.1:8080/v1/chat"))
        let pool = HTTP1ConnectionPool(eventLoop: channel.eventLoop, configuration: HTTP1PoolConfiguration(),
                                       tls: TLSContextCache(.makeClientConfiguration()))
        let counter = FlushCounter()
        let client = HTTP1ClientHandler(pool: pool, key: endpoint.key)
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        try channel.pipeline.syncOperations.addHandler(client)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let exchange = UpstreamExchange(eventLoop: channel.eventLoop, clock: SystemClock())
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.target,
                                   headers: HTTPHeaders([("host", endpoint.hostHeader), ("content-length", "2")]))
        #expect(client.start(HTTP1Request(endpoint: endpoint, head: head, body: ByteBuffer(string: "{}")), exchange: exchange)
            == .started)
        #expect(counter.flushes == 1)
        var written = ByteBuffer()
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(var bytes) = part else { Issue.record("unexpected file region"); break }
            written.writeBuffer(&bytes)
        }
        let text = String(buffer: written)
        #expect(text.hasPrefix("POST /v1/chat HTTP/1.1\r\n"))
        #expect(text.hasSuffix("\r\n\r\n{}"))
        #expect(client.start(HTTP1Request(endpoint: endpoint, head: head, body: ByteBuffer()), exchange: exchange)
            == .unusable, "one request at a time")
        _ = try? channel.finish()
    }
}
