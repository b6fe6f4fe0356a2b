import NIOCore
import NIOHTTP1

/// Where one upstream request stands, seen from the code that waits for its response: no head yet, head
/// arrived, body buffered, a reader waiting, finished or failed. Pure state and no I/O: both transports
/// (the pooled HTTP/1.1 connections and AsyncHTTPClient) feed it what the upstream did and what the reader
/// asks for, and carry out the actions it returns. Generic over the waiters and timers so that tests
/// drive it synchronously with plain values.
struct UpstreamExchangeStateMachine<HeadWaiter, BodyWaiter, Timer> {
    /// The body as received but not yet handed out.
    struct Body {
        var buffered: ByteBuffer?
        /// Whether the transport was told to stop reading because `buffered` passed the high-water mark.
        var readingPaused = false
        /// Whether the upstream finished the response (`buffered` may still hold its last bytes).
        var upstreamEnded = false
        /// A transport failure that came after some bytes: reported once those are handed out.
        var pendingFailure: (any Error)?

        var isEmpty: Bool { buffered == nil }
    }

    enum State {
        /// The request is on its way; no response head yet. The timer bounds the wait for the head.
        case waitingHead(waiter: HeadWaiter?, timer: Timer?)
        /// The head arrived before anyone asked for it; body bytes may already be buffered.
        case headArrived(HTTPResponseHead, Body)
        /// The head was handed out; nobody waits for the body, which may hold buffered bytes.
        case bodyBuffered(Body)
        /// A reader waits for body bytes (none are buffered); `generation` names its idle timer.
        case readerWaiting(BodyWaiter, timer: Timer?, generation: Int)
        /// The whole body was handed out.
        case finished
        /// Failed: by the transport, a timeout, a cancellation, or the reader giving up.
        case failed(any Error)
    }

    private(set) var state: State = .waitingHead(waiter: nil, timer: nil)
    /// Buffered, unread body bytes past which the transport stops reading from the upstream.
    let highWaterMark: Int
    /// The head timer is generation 0; each reader wait arms a new one, so a late-firing old timer is ignored.
    private var timerGeneration = 0

    init(highWaterMark: Int) {
        self.highWaterMark = highWaterMark
    }

    // MARK: The caller's side

    /// Arms the head timer (called once, as the request starts).
    mutating func startHeadTimer(_ timer: Timer) -> Timer? {
        guard case .waitingHead(let waiter, nil) = state else { return timer }
        state = .waitingHead(waiter: waiter, timer: timer)
        return nil
    }

    enum WaitForHeadAction {
        case wait
        case deliver(HTTPResponseHead)
        case fail(any Error)
    }

    mutating func waitForHead(_ waiter: HeadWaiter) -> WaitForHeadAction {
        switch state {
        case .waitingHead(_, let timer):
            state = .waitingHead(waiter: waiter, timer: timer)
            return .wait
        case .headArrived(let head, let body):
            state = .bodyBuffered(body)
            return .deliver(head)
        case .failed(let error):
            return .fail(error)
        case .bodyBuffered, .readerWaiting, .finished:
            preconditionFailure("the response head is awaited once")
        }
    }

    enum NextBodyAction {
        /// Bytes to hand out; `resumeReading` tells the transport to read from the upstream again.
        case deliver(ByteBuffer, resumeReading: Bool)
        case end
        case fail(any Error)
        /// Nothing yet: wait (``waitForBody(_:)``).
        case wait
    }

    /// What a reader gets now, without waiting.
    mutating func takeBody() -> NextBodyAction {
        switch state {
        case .bodyBuffered(var body):
            if let buffered = body.buffered {
                let resume = body.readingPaused
                body.buffered = nil
                body.readingPaused = false
                state = .bodyBuffered(body)
                return .deliver(buffered, resumeReading: resume)
            }
            if let failure = body.pendingFailure {
                state = .failed(failure)
                return .fail(failure)
            }
            if body.upstreamEnded {
                state = .finished
                return .end
            }
            return .wait
        case .finished:
            return .end
        case .failed(let error):
            return .fail(error)
        case .readerWaiting:
            preconditionFailure("one reader at a time")
        case .waitingHead, .headArrived:
            preconditionFailure("the body is read after the head")
        }
    }

    /// Parks `waiter` (after ``takeBody()`` said to wait); returns the generation its idle timer must carry.
    mutating func waitForBody(_ waiter: BodyWaiter) -> Int {
        guard case .bodyBuffered(let body) = state, body.isEmpty, !body.upstreamEnded, body.pendingFailure == nil
        else { preconditionFailure("a reader waits only when nothing is ready") }
        timerGeneration += 1
        state = .readerWaiting(waiter, timer: nil, generation: timerGeneration)
        return timerGeneration
    }

    /// Stores the idle timer of the wait `generation`; returns it when that wait is already over (to cancel).
    mutating func armBodyTimer(_ timer: Timer, generation: Int) -> Timer? {
        guard case .readerWaiting(let waiter, nil, generation) = state else { return timer }
        state = .readerWaiting(waiter, timer: timer, generation: generation)
        return nil
    }

    // MARK: The transport's side

    enum HeadReceivedAction {
        case none
        /// Nobody waits yet: the head is kept; the head timer is no longer needed.
        case cancelTimer(Timer?)
        case deliver(HeadWaiter, HTTPResponseHead, cancelTimer: Timer?)
    }

    mutating func receiveHead(_ head: HTTPResponseHead) -> HeadReceivedAction {
        switch state {
        case .waitingHead(let waiter, let timer):
            if let waiter {
                state = .bodyBuffered(Body())
                return .deliver(waiter, head, cancelTimer: timer)
            }
            state = .headArrived(head, Body())
            return .cancelTimer(timer)
        case .failed:
            return .none
        case .headArrived, .bodyBuffered, .readerWaiting, .finished:
            preconditionFailure("one response head per exchange")
        }
    }

    enum BodyReceivedAction {
        case none
        /// Buffered past the high-water mark: stop reading until the reader catches up.
        case pauseReading
        case deliver(BodyWaiter, ByteBuffer, cancelTimer: Timer?)
    }

    mutating func receiveBody(_ part: ByteBuffer) -> BodyReceivedAction {
        switch state {
        case .readerWaiting(let waiter, let timer, _):
            state = .bodyBuffered(Body())
            return .deliver(waiter, part, cancelTimer: timer)
        case .headArrived(let head, var body):
            state = .finished  // drops the buffer's other reference, so appending does not copy it
            let pause = Self.append(part, to: &body, highWaterMark: highWaterMark)
            state = .headArrived(head, body)
            return pause ? .pauseReading : .none
        case .bodyBuffered(var body):
            state = .finished
            let pause = Self.append(part, to: &body, highWaterMark: highWaterMark)
            state = .bodyBuffered(body)
            return pause ? .pauseReading : .none
        case .failed:
            return .none
        case .waitingHead, .finished:
            preconditionFailure("body bytes come after the head and before the end")
        }
    }

    private static func append(_ part: ByteBuffer, to body: inout Body, highWaterMark: Int) -> Bool {
        if body.buffered == nil {
            body.buffered = part
        } else {
            body.buffered?.writeImmutableBuffer(part)
        }
        guard !body.readingPaused, (body.buffered?.readableBytes ?? 0) >= highWaterMark else { return false }
        body.readingPaused = true
        return true
    }

    enum EndReceivedAction {
        case none
        case deliverEnd(BodyWaiter, cancelTimer: Timer?)
        /// The upstream finished without a head: only a broken transport does that.
        case failHead(HeadWaiter?, any Error, cancelTimer: Timer?)
    }

    mutating func receiveEnd(noHeadError: @autoclosure () -> any Error) -> EndReceivedAction {
        switch state {
        case .readerWaiting(let waiter, let timer, _):
            state = .finished
            return .deliverEnd(waiter, cancelTimer: timer)
        case .headArrived(let head, var body):
            body.upstreamEnded = true
            state = .headArrived(head, body)
            return .none
        case .bodyBuffered(var body):
            body.upstreamEnded = true
            state = .bodyBuffered(body)
            return .none
        case .waitingHead(let waiter, let timer):
            let error = noHeadError()
            state = .failed(error)
            return .failHead(waiter, error, cancelTimer: timer)
        case .failed, .finished:
            return .none
        }
    }

    enum FailAction {
        case none
        /// Wake whoever waits with the error, cancel the timer, and (`cancelRequest`) stop the upstream request.
        case fail(HeadWaiter?, BodyWaiter?, any Error, cancelTimer: Timer?, cancelRequest: Bool)
    }

    /// The transport failed. Bytes that arrived before are handed out first, then the failure.
    mutating func transportFailed(_ error: any Error) -> FailAction {
        switch state {
        case .headArrived(_, let body) where body.upstreamEnded, .bodyBuffered(let body) where body.upstreamEnded:
            // The response is complete; what happens to the connection afterwards is not this exchange's.
            return .none
        case .headArrived(let head, var body) where !body.isEmpty:
            body.pendingFailure = body.pendingFailure ?? error
            state = .headArrived(head, body)
            return .none
        case .bodyBuffered(var body) where !body.isEmpty:
            body.pendingFailure = body.pendingFailure ?? error
            state = .bodyBuffered(body)
            return .none
        default:
            return fail(error, cancelRequest: false)
        }
    }

    /// The caller gave up (cancelled, aborted, dropped the body) or a timeout fired: the exchange ends now,
    /// buffered bytes are dropped and an unfinished request is cancelled.
    mutating func abandon(_ error: any Error) -> FailAction {
        fail(error, cancelRequest: true)
    }

    /// The timer of `generation` fired; a timer whose wait already ended does nothing.
    mutating func timedOut(generation: Int, _ error: any Error) -> FailAction {
        switch state {
        case .waitingHead where generation == 0:
            return fail(error, cancelRequest: true)
        case .readerWaiting(_, _, let current) where current == generation:
            return fail(error, cancelRequest: true)
        default:
            return .none
        }
    }

    private mutating func fail(_ error: any Error, cancelRequest: Bool) -> FailAction {
        switch state {
        case .waitingHead(let waiter, let timer):
            state = .failed(error)
            return .fail(waiter, nil, error, cancelTimer: timer, cancelRequest: cancelRequest)
        case .readerWaiting(let waiter, let timer, _):
            state = .failed(error)
            return .fail(nil, waiter, error, cancelTimer: timer, cancelRequest: cancelRequest)
        case .headArrived(_, let body), .bodyBuffered(let body):
            state = .failed(error)
            let unfinished = !body.upstreamEnded && body.pendingFailure == nil
            return .fail(nil, nil, error, cancelTimer: nil, cancelRequest: cancelRequest && unfinished)
        case .finished, .failed:
            return .none
        }
    }

    /// Whether the exchange ended in failure (a transport about to start it should not).
    var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }
}

extension UpstreamExchangeStateMachine: Sendable where HeadWaiter: Sendable, BodyWaiter: Sendable, Timer: Sendable {}
extension UpstreamExchangeStateMachine.State: Sendable where HeadWaiter: Sendable, BodyWaiter: Sendable, Timer: Sendable {}
extension UpstreamExchangeStateMachine.Body: Sendable where HeadWaiter: Sendable, BodyWaiter: Sendable, Timer: Sendable {}
