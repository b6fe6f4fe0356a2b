import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// An upstream response whose head has arrived: status, headers, and the body still to be read.
public struct UpstreamResponse: Sendable {
    public let status: HTTPResponseStatus
    public let headers: HTTPHeaders
    /// Read part by part; once the last reference goes, an unfinished request is cancelled.
    public let body: UpstreamBody
}

/// The body of an ``UpstreamResponse``.
public final class UpstreamBody: Sendable {
    private let exchange: UpstreamExchange

    init(exchange: UpstreamExchange) {
        self.exchange = exchange
    }

    deinit {
        // Once a reader exists, its lifetime decides: the stream's iterator may outlive this response.
        if !exchange.hasReader { exchange.abandon() }
    }

    /// The bytes that arrived since the last call (several network reads may be merged), or `nil` at the end.
    ///
    /// - Throws: ``ProviderError`` `.timeout` if nothing arrives within `idleTimeout`, `.cancelled` if the task
    ///   is cancelled, `.connectionClosed` if the connection fails mid-body.
    public func next(idleTimeout: Duration) async throws(ProviderError) -> ByteBuffer? {
        try await exchange.nextPart(idleTimeout: idleTimeout)
    }

    /// Ends the request now: a reader waiting for the next part gets ``ProviderErrorKind/cancelled``.
    public func abort() {
        exchange.abandon()
    }

    /// A reader that cancels the request when it is dropped unfinished, even while the response (and so
    /// this body) is still referenced: for a stream whose consumer may stop part-way.
    public func reader() -> UpstreamBodyReader {
        exchange.state.withLockedValue { $0.hasReader = true }
        return UpstreamBodyReader(exchange: exchange)
    }
}

/// Reads an ``UpstreamBody``; dropping it unfinished cancels the upstream request.
public final class UpstreamBodyReader: Sendable {
    private let exchange: UpstreamExchange

    init(exchange: UpstreamExchange) {
        self.exchange = exchange
    }

    deinit {
        exchange.abandon()
    }

    /// See ``UpstreamBody/next(idleTimeout:)``.
    public func next(idleTimeout: Duration) async throws(ProviderError) -> ByteBuffer? {
        try await exchange.nextPart(idleTimeout: idleTimeout)
    }
}

/// One upstream request, driven through AsyncHTTPClient's delegate API so that every callback runs on the
/// event loop the request was started from (normally the inbound connection's) and timeouts are
/// event-loop timers armed only while a reader actually waits, rather than a task group and a sleeping
/// task per read. Response bytes are buffered up to ``highWaterMark``; past it the upstream socket is
/// not read until the consumer catches up.
final class UpstreamExchange: HTTPClientResponseDelegate {
    typealias Response = Void

    /// Buffered, unread body bytes past which reading from the upstream pauses.
    static let highWaterMark = 256 * 1024

    fileprivate struct State {
        var task: HTTPClient.Task<Void>?
        var head: HTTPResponseHead?
        var headWaiter: CheckedContinuation<HTTPResponseHead, any Error>?
        var headTimer: TimeoutTimer?
        var buffered: ByteBuffer?
        var bodyWaiter: CheckedContinuation<ByteBuffer?, any Error>?
        var idleTimer: TimeoutTimer?
        /// Completed when the consumer takes the buffer, to resume reading from the upstream.
        var demand: EventLoopPromise<Void>?
        var ended = false
        /// Whether an ``UpstreamBodyReader`` owns cancelling the request when dropped.
        var hasReader = false
        /// The first terminal failure: a timeout, a cancellation, or the transport's error.
        var failure: (any Error)?
    }

    let eventLoop: any EventLoop
    private let clock: any GatewayClock
    fileprivate let state = NIOLockedValueBox(State())

    fileprivate var hasReader: Bool { state.withLockedValue { $0.hasReader } }

    private init(eventLoop: any EventLoop, clock: any GatewayClock) {
        self.eventLoop = eventLoop
        self.clock = clock
    }

    /// Sends `request` and waits for the response head, at most `timeout` from now (connecting included).
    static func send(_ request: HTTPClient.Request, client: HTTPClient, clock: any GatewayClock, timeout: Duration)
        async throws(ProviderError) -> UpstreamResponse
    {
        // `any()` is the calling thread's loop when the caller runs on one of the client's loops.
        let eventLoop = client.eventLoopGroup.any()
        let exchange = UpstreamExchange(eventLoop: eventLoop, clock: clock)
        exchange.state.withLockedValue { state in
            state.headTimer = clock.scheduleTimeout(after: timeout, on: eventLoop) {
                exchange.fail(ProviderError(
                    kind: .timeout, message: "Provider sent no response headers within \(timeout.milliseconds) ms"))
            }
        }
        // `.delegate(on:)`, not `.delegateAndChannel(on:)`: the pool prefers a connection on this loop, but
        // connections it opens only to satisfy a required loop are closed, not kept alive, once idle.
        let task = client.execute(
            request: request, delegate: exchange, eventLoop: .delegate(on: eventLoop), deadline: nil, logger: nil)
        exchange.attach(task)
        let head: HTTPResponseHead
        do {
            head = try await exchange.awaitHead()
        } catch {
            throw UpstreamHTTPClient.mapTransportError(error, timeout: timeout)
        }
        return UpstreamResponse(status: head.status, headers: head.headers, body: UpstreamBody(exchange: exchange))
    }

    private func attach(_ task: HTTPClient.Task<Void>) {
        let cancel = state.withLockedValue { state -> Bool in
            guard state.failure == nil else { return true }
            if !state.ended { state.task = task }
            return false
        }
        if cancel { task.cancel() }
    }

    private func awaitHead() async throws -> HTTPResponseHead {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponseHead, any Error>) in
                let ready = state.withLockedValue { state -> Result<HTTPResponseHead, any Error>? in
                    if let head = state.head { return .success(head) }
                    if let failure = state.failure { return .failure(failure) }
                    state.headWaiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            fail(ProviderError(kind: .cancelled))
        }
    }

    func nextPart(idleTimeout: Duration) async throws(ProviderError) -> ByteBuffer? {
        do {
            // Most reads find bytes already buffered: no continuation, no timer.
            if let ready = takeReady() { return try ready.get() }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                    if let ready = takeReady(orWaitWith: continuation, idleTimeout: idleTimeout) {
                        continuation.resume(with: ready)
                    }
                }
            } onCancel: {
                fail(ProviderError(kind: .cancelled))
            }
        } catch {
            throw Self.mapBodyError(error)
        }
    }

    /// The buffered bytes, the end, or the failure; otherwise, with a continuation, parks it and arms the
    /// idle timer.
    private func takeReady(orWaitWith continuation: CheckedContinuation<ByteBuffer?, any Error>? = nil,
                           idleTimeout: Duration = .zero) -> Result<ByteBuffer?, any Error>? {
        let (ready, demand) = state.withLockedValue { state -> (Result<ByteBuffer?, any Error>?, EventLoopPromise<Void>?) in
            if let buffered = state.buffered, !(state.failure is ProviderError) {
                state.buffered = nil
                defer { state.demand = nil }
                return (.success(buffered), state.demand)
            }
            if let failure = state.failure { return (.failure(failure), nil) }
            if state.ended { return (.success(nil), nil) }
            guard let continuation else { return (nil, nil) }
            state.bodyWaiter = continuation
            state.idleTimer = clock.scheduleTimeout(after: idleTimeout, on: eventLoop) { [self] in
                fail(ProviderError(kind: .timeout, message: "Provider stream was silent for \(idleTimeout.milliseconds) ms"))
            }
            return (nil, nil)
        }
        demand?.succeed()
        return ready
    }

    /// The consumer dropped the body: an unfinished request is cancelled so its connection is not kept busy.
    func abandon() {
        fail(ProviderError(kind: .cancelled))
    }

    /// Ends the exchange with `error` unless it already ended: wakes whoever waits and cancels the upstream.
    private func fail(_ error: any Error) {
        // Bytes that arrived before a transport failure stay buffered: handed out first, then the failure.
        guard let taken = end({ $0.failure = error }) else { return }
        taken.headTimer?.cancel()
        taken.idleTimer?.cancel()
        taken.headWaiter?.resume(throwing: error)
        taken.bodyWaiter?.resume(throwing: error)
        taken.demand?.succeed()
        taken.task?.cancel()
    }

    /// Marks the exchange ended with `mark` and takes whoever waits on it (waiters, timers, the task), unless
    /// it had already ended.
    private func end(_ mark: (inout State) -> Void) -> State? {
        state.withLockedValue { state -> State? in
            guard state.failure == nil, !state.ended else { return nil }
            mark(&state)
            let taken = state
            state.task = nil
            state.headWaiter = nil
            state.headTimer = nil
            state.bodyWaiter = nil
            state.idleTimer = nil
            state.demand = nil
            return taken
        }
    }

    private static func mapBodyError(_ error: any Error) -> ProviderError {
        switch error {
        case let error as ProviderError: error
        case is CancellationError: ProviderError(kind: .cancelled)
        case let error as HTTPClientError where error == .cancelled: ProviderError(kind: .cancelled)
        default: ProviderError(kind: .connectionClosed, message: "Provider connection failed mid-response: \(error)")
        }
    }

    // MARK: HTTPClientResponseDelegate (called on `eventLoop`)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let (waiter, timer) = state.withLockedValue { state -> (CheckedContinuation<HTTPResponseHead, any Error>?, TimeoutTimer?) in
            guard state.failure == nil else { return (nil, nil) }
            state.head = head
            defer { state.headWaiter = nil; state.headTimer = nil }
            return (state.headWaiter, state.headTimer)
        }
        timer?.cancel()
        waiter?.resume(returning: head)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        enum Outcome {
            case deliver(CheckedContinuation<ByteBuffer?, any Error>, TimeoutTimer?)
            case buffered
            case pause(EventLoopPromise<Void>)
        }
        let outcome = state.withLockedValue { state -> Outcome in
            guard state.failure == nil else { return .buffered }
            if let waiter = state.bodyWaiter {
                defer { state.bodyWaiter = nil; state.idleTimer = nil }
                return .deliver(waiter, state.idleTimer)
            }
            if state.buffered == nil {
                state.buffered = part
            } else {
                state.buffered?.writeImmutableBuffer(part)
            }
            guard (state.buffered?.readableBytes ?? 0) >= Self.highWaterMark else { return .buffered }
            let promise = task.eventLoop.makePromise(of: Void.self)
            state.demand = promise
            return .pause(promise)
        }
        switch outcome {
        case .deliver(let waiter, let timer):
            timer?.cancel()
            waiter.resume(returning: part)
            return task.eventLoop.makeSucceededVoidFuture()
        case .buffered:
            return task.eventLoop.makeSucceededVoidFuture()
        case .pause(let promise):
            return promise.futureResult
        }
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        fail(error)
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        guard let taken = end({ $0.ended = true }) else { return }
        taken.headTimer?.cancel()
        taken.idleTimer?.cancel()
        taken.demand?.succeed()
        // A response always has a head before it finishes; this only guards against a broken transport.
        taken.headWaiter?.resume(throwing: HTTPClientError.remoteConnectionClosed)
        taken.bodyWaiter?.resume(returning: nil)
    }
}
