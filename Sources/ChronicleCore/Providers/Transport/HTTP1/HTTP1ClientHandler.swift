import NIOCore
import NIOHTTP1

/// A request ready to write: the parsed endpoint, the head and the whole body.
struct HTTP1Request: Sendable {
    let endpoint: UpstreamEndpoint
    let head: HTTPRequestHead
    let body: ByteBuffer
}

/// The last handler of a pooled upstream connection: writes a request, feeds the response to its
/// ``UpstreamExchange``, holds socket reads while the reader is behind, and gives the connection back to
/// the pool or closes it, as the ``HTTP1ConnectionStateMachine`` decides. Used only on its channel's loop.
final class HTTP1ClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    enum StartResult {
        case started
        /// The exchange had already failed (timed out, cancelled): nothing was written; the connection is free.
        case exchangeGone
        /// The connection is closing or closed.
        case unusable
    }

    let key: UpstreamEndpoint.Key
    // Strong: the pool (and its idle sweep) outlives its connections even when its owner is dropped unshut.
    private let pool: HTTP1ConnectionPool
    private var machine = HTTP1ConnectionStateMachine()
    private var context: ChannelHandlerContext?
    private var exchange: UpstreamExchange?
    /// Kept until response bytes arrive, to send once more if a reused connection turns out closed.
    private var request: HTTP1Request?
    /// Names the current request, so that a late cancel or resume of an earlier one does nothing.
    private var requestID: UInt64 = 0
    /// Whether the reader is behind: socket reads are held until it catches up.
    private var readingPaused = false
    /// A read the channel asked for while paused, issued on resuming.
    private var readHeld = false
    /// When the connection went idle, for the pool's idle sweep.
    var idleSince: NIODeadline = .now()

    init(pool: HTTP1ConnectionPool, key: UpstreamEndpoint.Key) {
        self.pool = pool
        self.key = key
    }

    var isIdleAndOpen: Bool { machine.state == .idle && context?.channel.isActive == true }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes `request` (head, body and end in one flush, so one `writev` in the common case).
    func start(_ request: HTTP1Request, exchange: UpstreamExchange) -> StartResult {
        guard let context, context.channel.isActive, machine.state == .idle else { return .unusable }
        let id = requestID &+ 1
        let transport = HTTP1ExchangeTransport(handler: NIOLoopBound(self, eventLoop: context.eventLoop), requestID: id)
        guard exchange.attach(transport) else { return .exchangeGone }
        guard machine.startRequest() == .writeRequest else { return .unusable }
        requestID = id
        self.exchange = exchange
        self.request = request
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if request.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        return .started
    }

    /// Some raw response bytes arrived (reported by ``ResponseByteObserver`` before decoding).
    func responseBytesArrived() {
        machine.responseBytesArrived()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard machine.receivedHead(head) == .forwardHead else { return }
            request = nil
            exchange?.receiveHead(head)
        case .body(let part):
            // Only the body of a forwarded head reaches the exchange (not that of a skipped informational one).
            guard case .readingBody = machine.state, let exchange else { return }
            if exchange.receiveBody(part) { readingPaused = true }
        case .end:
            let action = machine.receivedEnd()
            let finished = exchange
            exchange = nil
            request = nil
            // The last part may have paused reading; an idle connection must read again, to see the
            // upstream close it and to read the next response.
            resumeHeldRead(context: context)
            finished?.receiveEnd()
            switch action {
            case .finishAndRelease: pool.release(self)
            case .finishAndClose: context.close(promise: nil)
            default: break
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if readingPaused {
            readHeld = true
        } else {
            context.read()
        }
    }

    func resumeReading(requestID: UInt64) {
        guard requestID == self.requestID, let context else { return }
        resumeHeldRead(context: context)
    }

    private func resumeHeldRead(context: ChannelHandlerContext) {
        readingPaused = false
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// The caller gave up on request `requestID`: its connection is closed, never returned half-read.
    func cancel(requestID: UInt64) {
        guard requestID == self.requestID, machine.abort() == .close else { return }
        exchange = nil
        request = nil
        readingPaused = false
        context?.close(promise: nil)
    }

    /// Closes the connection if it is idle (idle timeout, too many idle, shutdown).
    func closeIfIdle() {
        if machine.closeIfIdle() == .close { context?.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if machine.errorCaught(String(describing: error)) == .close { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let action = machine.channelClosed()
        let exchange = self.exchange
        let request = self.request
        self.exchange = nil
        self.request = nil
        pool.remove(self, channel: context.channel)
        switch action {
        case .retryRequest:
            if let exchange, let request { pool.send(request, exchange: exchange, mayReuse: false) }
        case .failRequest(let failure):
            exchange?.transportFailed(Self.error(for: failure))
        default:
            break
        }
        context.fireChannelInactive()
    }

    static func error(for failure: HTTP1ConnectionStateMachine.Failure) -> ProviderError {
        switch failure {
        case .beforeHead(nil):
            ProviderError(kind: .connectionClosed, message: "Provider closed the connection before responding")
        case .beforeHead(let description?):
            ProviderError(kind: .connection, message: "Could not reach the provider: \(description)")
        case .midBody(let description):
            ProviderError(kind: .connectionClosed,
                          message: "Provider connection failed mid-response: \(description ?? "connection closed")")
        }
    }
}

/// How an exchange reaches the connection carrying it, from any thread: hops to the connection's loop
/// unless already there.
struct HTTP1ExchangeTransport: UpstreamExchangeTransport {
    let handler: NIOLoopBound<HTTP1ClientHandler>
    let requestID: UInt64

    func resumeReading() {
        let eventLoop = handler.eventLoop
        if eventLoop.inEventLoop {
            handler.value.resumeReading(requestID: requestID)
        } else {
            eventLoop.execute { [handler, requestID] in handler.value.resumeReading(requestID: requestID) }
        }
    }

    func cancel() {
        let eventLoop = handler.eventLoop
        if eventLoop.inEventLoop {
            handler.value.cancel(requestID: requestID)
        } else {
            eventLoop.execute { [handler, requestID] in handler.value.cancel(requestID: requestID) }
        }
    }
}

/// Sits before the HTTP decoder and tells the client handler that response bytes arrived, even ones the
/// decoder keeps for an incomplete head: a request whose response had begun must never be sent again.
final class ResponseByteObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let client: HTTP1ClientHandler

    init(client: HTTP1ClientHandler) {
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client.responseBytesArrived()
        context.fireChannelRead(data)
    }
}
