import NIOHTTP1

/// The life of one pooled upstream HTTP/1.1 connection: idle in the pool, carrying a request, reading a
/// response body, closing. Pure state and no I/O: the channel handler reports what happened and carries
/// out the returned action. It decides the two questions that matter for correctness: whether the
/// connection may go back to the pool, and whether a request that failed may be sent again.
struct HTTP1ConnectionStateMachine {
    enum State: Equatable {
        /// Open, no request: in the pool.
        case idle
        /// A request was written; no response head yet. `reused`: the connection had served a request
        /// before. `responseStarted`: some response byte arrived (even an incomplete head).
        case inRequest(reused: Bool, responseStarted: Bool)
        /// The head arrived; the body is being read. `keepAlive`: the connection may be reused after it.
        case readingBody(keepAlive: Bool)
        /// Closing (or closed) by our decision or the peer's; nothing more is sent.
        case closing
        case closed
    }

    /// Why a request failed, for the error its caller sees.
    enum Failure: Equatable {
        /// Closed before a complete response head; `error` is the transport's own error, if it gave one.
        case beforeHead(errorDescription: String?)
        /// Closed (or failed) while the body was being read.
        case midBody(errorDescription: String?)
    }

    enum Action: Equatable {
        case none
        /// Write the request (head, body and end in one flush).
        case writeRequest
        /// Hand the head to the exchange.
        case forwardHead
        /// The response is complete: hand the end to the exchange, then return the connection to the pool.
        case finishAndRelease
        /// The response is complete but the connection may not be reused: hand the end over, then close.
        case finishAndClose
        /// Close the channel (an abort, an idle timeout, a transport error).
        case close
        /// The channel closed while idle: take it out of the pool.
        case removeFromPool
        /// The request failed: fail the exchange with this.
        case failRequest(Failure)
        /// The request was never answered on a reused connection that turned out closed: send it again,
        /// once, on a fresh connection.
        case retryRequest
    }

    private(set) var state: State = .idle
    /// Requests this connection has carried; a request on a connection that served one before is "reused".
    private(set) var requestsStarted = 0
    /// The first transport error, reported when the channel closes.
    private var firstError: String?

    /// Starts a request; `nil` when the connection cannot take one (the pool then uses another).
    mutating func startRequest() -> Action? {
        guard state == .idle else { return nil }
        state = .inRequest(reused: requestsStarted > 0, responseStarted: false)
        requestsStarted += 1
        return .writeRequest
    }

    /// Raw response bytes arrived (before decoding): from now on the request must not be sent again.
    mutating func responseBytesArrived() {
        if case .inRequest(let reused, false) = state { state = .inRequest(reused: reused, responseStarted: true) }
    }

    mutating func receivedHead(_ head: HTTPResponseHead) -> Action {
        guard case .inRequest = state else { return .none }
        // Informational heads (100 Continue and friends) precede the real one; 101 would switch protocols,
        // which a POST without an Upgrade header never asks for.
        if (100..<200).contains(head.status.code) && head.status.code != 101 {
            return .none
        }
        // `isKeepAlive` reads the version (HTTP/1.0 closes unless asked) and the `connection` header.
        state = .readingBody(keepAlive: head.isKeepAlive)
        return .forwardHead
    }

    mutating func receivedEnd() -> Action {
        guard case .readingBody(let keepAlive) = state else { return .none }
        if keepAlive {
            state = .idle
            return .finishAndRelease
        }
        state = .closing
        return .finishAndClose
    }

    /// The caller gave up (abort, cancellation, timeout): a half-read connection is never reused.
    mutating func abort() -> Action {
        switch state {
        case .inRequest, .readingBody:
            state = .closing
            return .close
        case .idle, .closing, .closed:
            return .none
        }
    }

    /// The pool's idle timer fired, or the pool has more idle connections than it keeps, or it shuts down.
    mutating func closeIfIdle() -> Action {
        guard state == .idle else { return .none }
        state = .closing
        return .close
    }

    mutating func errorCaught(_ description: String) -> Action {
        if firstError == nil { firstError = description }
        switch state {
        case .closing, .closed: return .none
        case .idle, .inRequest, .readingBody: return .close
        }
    }

    mutating func channelClosed() -> Action {
        let previous = state
        state = .closed
        switch previous {
        case .idle:
            return .removeFromPool
        case .inRequest(let reused, let responseStarted):
            if reused && !responseStarted { return .retryRequest }
            return .failRequest(.beforeHead(errorDescription: firstError))
        case .readingBody:
            return .failRequest(.midBody(errorDescription: firstError))
        case .closing, .closed:
            return .none
        }
    }
}
