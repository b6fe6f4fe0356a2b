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
        exchange.markReader()
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

/// What an exchange asks of the transport carrying it.
protocol UpstreamExchangeTransport: Sendable {
    /// Read from the upstream again: the reader took the buffered bytes that had passed the high-water mark.
    func resumeReading()
    /// Stop the request now (the caller gave up or a timeout fired); a connection is closed, not reused.
    func cancel()
}

/// One upstream request as its caller sees it: waits for the response head, then hands out the body part
/// by part, whichever transport carries it. The transport reports what arrives; the decisions are the
/// ``UpstreamExchangeStateMachine``'s. Timeouts are event-loop timers armed only while someone actually
/// waits, rather than a task group and a sleeping task per read. Response bytes are buffered up to
/// ``highWaterMark``; past it the transport stops reading the upstream socket until the reader catches up.
final class UpstreamExchange: Sendable {
    /// Buffered, unread body bytes past which reading from the upstream pauses.
    static let highWaterMark = 256 * 1024

    typealias Machine = UpstreamExchangeStateMachine<
        CheckedContinuation<HTTPResponseHead, any Error>, CheckedContinuation<ByteBuffer?, any Error>, TimeoutTimer
    >

    private struct Locked {
        var machine: Machine
        var transport: (any UpstreamExchangeTransport)?
        /// Whether an ``UpstreamBodyReader`` owns cancelling the request when dropped.
        var hasReader = false
    }

    /// The loop the transport's callbacks run on and timers are scheduled on.
    let eventLoop: any EventLoop
    private let clock: any GatewayClock
    /// Taken by the transport (on `eventLoop`) and the reader (normally on the same loop, so uncontended);
    /// one per exchange, never shared between exchanges or loops.
    private let locked: NIOLockedValueBox<Locked>

    var hasReader: Bool { locked.withLockedValue { $0.hasReader } }

    /// Whether the exchange already failed (timed out, cancelled): a transport should not start it.
    var hasFailed: Bool { locked.withLockedValue { $0.machine.hasFailed } }

    init(eventLoop: any EventLoop, clock: any GatewayClock, highWaterMark: Int = UpstreamExchange.highWaterMark) {
        self.eventLoop = eventLoop
        self.clock = clock
        locked = NIOLockedValueBox(Locked(machine: Machine(highWaterMark: highWaterMark)))
    }

    func markReader() {
        locked.withLockedValue { $0.hasReader = true }
    }

    /// Starts the wait for the response head: at most `timeout` from now, connecting included.
    func startHeadTimer(_ timeout: Duration) {
        let timer = clock.scheduleTimeout(after: timeout, on: eventLoop) { [self] in
            timedOut(generation: 0, ProviderError(
                kind: .timeout, message: "Provider sent no response headers within \(timeout.milliseconds) ms"))
        }
        locked.withLockedValue { $0.machine.startHeadTimer(timer) }?.cancel()
    }

    /// Hands the exchange to the transport carrying it; `false` when it already failed (the transport
    /// then stops the request itself).
    func attach(_ transport: any UpstreamExchangeTransport) -> Bool {
        locked.withLockedValue { locked in
            guard !locked.machine.hasFailed else { return false }
            locked.transport = transport
            return true
        }
    }

    /// Waits for the response head; throws what the transport, a timeout or a cancellation ended it with.
    func awaitHead() async throws -> HTTPResponseHead {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponseHead, any Error>) in
                switch locked.withLockedValue({ $0.machine.waitForHead(continuation) }) {
                case .wait: break
                case .deliver(let head): continuation.resume(returning: head)
                case .fail(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            abandon(ProviderError(kind: .cancelled))
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
                abandon(ProviderError(kind: .cancelled))
            }
        } catch {
            throw Self.mapBodyError(error)
        }
    }

    /// The buffered bytes, the end, or the failure; otherwise, with a continuation, parks it and arms the
    /// idle timer.
    private func takeReady(orWaitWith continuation: CheckedContinuation<ByteBuffer?, any Error>? = nil,
                           idleTimeout: Duration = .zero) -> Result<ByteBuffer?, any Error>? {
        let (action, transport) = locked.withLockedValue { locked -> (Machine.NextBodyAction, (any UpstreamExchangeTransport)?) in
            let action = locked.machine.takeBody()
            guard case .wait = action, let continuation else { return (action, locked.transport) }
            let generation = locked.machine.waitForBody(continuation)
            let timer = clock.scheduleTimeout(after: idleTimeout, on: eventLoop) { [self] in
                timedOut(generation: generation, ProviderError(
                    kind: .timeout, message: "Provider stream was silent for \(idleTimeout.milliseconds) ms"))
            }
            // Under the lock, so the wait cannot end before its timer is stored.
            locked.machine.armBodyTimer(timer, generation: generation)?.cancel()
            return (action, nil)
        }
        switch action {
        case .deliver(let bytes, let resumeReading):
            if resumeReading { transport?.resumeReading() }
            return .success(bytes)
        case .end: return .success(nil)
        case .fail(let error): return .failure(error)
        case .wait: return nil
        }
    }

    /// The consumer dropped the body: an unfinished request is cancelled so its connection is not kept busy.
    func abandon() {
        abandon(ProviderError(kind: .cancelled))
    }

    private func abandon(_ error: ProviderError) {
        run(locked.withLockedValue { ($0.machine.abandon(error), $0.transport) })
    }

    private func timedOut(generation: Int, _ error: ProviderError) {
        run(locked.withLockedValue { ($0.machine.timedOut(generation: generation, error), $0.transport) })
    }

    private func run(_ pair: (Machine.FailAction, (any UpstreamExchangeTransport)?)) {
        guard case .fail(let headWaiter, let bodyWaiter, let error, let timer, let cancelRequest) = pair.0 else { return }
        timer?.cancel()
        headWaiter?.resume(throwing: error)
        bodyWaiter?.resume(throwing: error)
        if cancelRequest { pair.1?.cancel() }
    }

    // MARK: Reported by the transport (on `eventLoop`)

    func receiveHead(_ head: HTTPResponseHead) {
        switch locked.withLockedValue({ $0.machine.receiveHead(head) }) {
        case .none: break
        case .cancelTimer(let timer): timer?.cancel()
        case .deliver(let waiter, let head, let timer):
            timer?.cancel()
            waiter.resume(returning: head)
        }
    }

    /// Returns `true` when the transport should stop reading until ``UpstreamExchangeTransport/resumeReading()``.
    func receiveBody(_ part: ByteBuffer) -> Bool {
        switch locked.withLockedValue({ $0.machine.receiveBody(part) }) {
        case .none: return false
        case .pauseReading: return true
        case .deliver(let waiter, let part, let timer):
            timer?.cancel()
            waiter.resume(returning: part)
            return false
        }
    }

    func receiveEnd() {
        let action = locked.withLockedValue { locked in
            defer { locked.transport = nil }
            return locked.machine.receiveEnd(
                noHeadError: ProviderError(kind: .connectionClosed, message: "Provider closed the connection before responding"))
        }
        switch action {
        case .none: break
        case .deliverEnd(let waiter, let timer):
            timer?.cancel()
            waiter.resume(returning: nil)
        case .failHead(let waiter, let error, let timer):
            timer?.cancel()
            waiter?.resume(throwing: error)
        }
    }

    /// The transport failed: bytes that arrived before are handed out first, then `error`.
    func transportFailed(_ error: any Error) {
        run(locked.withLockedValue { locked in
            defer { locked.transport = nil }
            return (locked.machine.transportFailed(error), nil)
        })
    }

    private static func mapBodyError(_ error: any Error) -> ProviderError {
        switch error {
        case let error as ProviderError: error
        case is CancellationError: ProviderError(kind: .cancelled)
        default: UpstreamHTTPClient.mapBodyTransportError(error)
        }
    }
}
