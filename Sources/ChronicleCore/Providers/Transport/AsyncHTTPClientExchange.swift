import AsyncHTTPClient
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Carries an ``UpstreamExchange`` over AsyncHTTPClient's delegate API (for HTTP/2, and for operators who
/// choose it): every callback runs on the event loop the request was started from (normally the inbound
/// connection's), and reading pauses by leaving a body part's future pending until the reader catches up.
final class AsyncHTTPClientExchange: HTTPClientResponseDelegate, UpstreamExchangeTransport {
    typealias Response = Void

    private struct State {
        var task: HTTPClient.Task<Void>?
        /// Completed when the reader takes the buffer, to resume reading from the upstream.
        var demand: EventLoopPromise<Void>?
        /// The reader caught up before the pause was set up: the next pause is skipped.
        var resumedEarly = false
        var cancelled = false
    }

    let exchange: UpstreamExchange
    private let state = NIOLockedValueBox(State())

    private init(exchange: UpstreamExchange) {
        self.exchange = exchange
    }

    /// Sends `request` and waits for the response head, at most `timeout` from now (connecting included).
    static func send(_ request: HTTPClient.Request, client: HTTPClient, clock: any GatewayClock, timeout: Duration)
        async throws(ProviderError) -> UpstreamResponse
    {
        // `any()` is the calling thread's loop when the caller runs on one of the client's loops.
        let eventLoop = client.eventLoopGroup.any()
        let exchange = UpstreamExchange(eventLoop: eventLoop, clock: clock)
        exchange.startHeadTimer(timeout)
        let carrier = AsyncHTTPClientExchange(exchange: exchange)
        // Attached before any callback can arrive, so that a pause is always resumable.
        if !exchange.attach(carrier) { carrier.cancel() }
        // `.delegate(on:)`, not `.delegateAndChannel(on:)`: the pool prefers a connection on this loop, but
        // connections it opens only to satisfy a required loop are closed, not kept alive, once idle.
        let task = client.execute(
            request: request, delegate: carrier, eventLoop: .delegate(on: eventLoop), deadline: nil, logger: nil)
        carrier.attach(task)
        let head: HTTPResponseHead
        do {
            head = try await exchange.awaitHead()
        } catch {
            throw UpstreamHTTPClient.mapTransportError(error, timeout: timeout)
        }
        return UpstreamResponse(status: head.status, headers: head.headers, body: UpstreamBody(exchange: exchange))
    }

    private func attach(_ task: HTTPClient.Task<Void>) {
        let cancelNow = state.withLockedValue { state -> Bool in
            state.task = task
            return state.cancelled
        }
        if cancelNow { task.cancel() }
    }

    // MARK: UpstreamExchangeTransport

    func resumeReading() {
        let demand = state.withLockedValue { state -> EventLoopPromise<Void>? in
            guard let demand = state.demand else {
                state.resumedEarly = true
                return nil
            }
            state.demand = nil
            return demand
        }
        demand?.succeed()
    }

    func cancel() {
        let (task, demand) = state.withLockedValue { state in
            state.cancelled = true
            defer { state.demand = nil }
            return (state.task, state.demand)
        }
        demand?.succeed()
        task?.cancel()
    }

    // MARK: HTTPClientResponseDelegate (called on the exchange's loop)

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        exchange.receiveHead(head)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        guard exchange.receiveBody(part) else { return task.eventLoop.makeSucceededVoidFuture() }
        let promise = task.eventLoop.makePromise(of: Void.self)
        let pause = state.withLockedValue { state -> Bool in
            guard !state.resumedEarly, !state.cancelled else {
                state.resumedEarly = false
                return false
            }
            state.demand = promise
            return true
        }
        if !pause { promise.succeed() }
        return promise.futureResult
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {
        exchange.transportFailed(error)
        cancel()
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        exchange.receiveEnd()
    }
}
