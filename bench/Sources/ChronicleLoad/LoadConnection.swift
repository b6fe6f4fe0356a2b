import NIOCore
import NIOHTTP1

/// Monotonic nanoseconds; all timestamps of a run use this clock.
@inline(__always) func nowNanos() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// One finished exchange, measured on the connection's event loop.
struct Exchange {
    var start: UInt64
    var firstByte: UInt64
    var end: UInt64
    var status: UInt
    var bodyBytes: Int
}

/// What a connection tells its shard. Both live on the same event loop.
protocol ConnectionOwner: AnyObject {
    func connectionFinished(_ connection: LoadConnection, exchange: Exchange, reusable: Bool)
    func connectionFirstByte(_ connection: LoadConnection, exchange: Exchange)
    func connectionClosed(_ connection: LoadConnection, duringExchange: Bool)
}

/// One keep-alive HTTP/1.1 connection sending one request at a time (no pipelining, like real clients).
final class LoadConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    // Unowned would be enough (the shard outlives its connections) but weak costs little and cannot crash.
    private weak var owner: (any ConnectionOwner)?
    private let template: RequestTemplate
    private var context: ChannelHandlerContext?
    private var current: Exchange?
    private var serverCloses = false
    /// Set when the shard closes the connection on purpose, so an aborted exchange is not an error.
    var closingOnPurpose = false
    let id: Int

    var isBusy: Bool { current != nil }

    init(id: Int, owner: any ConnectionOwner, template: RequestTemplate) {
        self.id = id
        self.owner = owner
        self.template = template
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Sends the request; `start` is when it should have started (open loop) or now (closed loop).
    func send(start: UInt64) {
        guard let context, current == nil else { return }
        current = Exchange(start: start, firstByte: 0, end: 0, status: 0, bodyBytes: 0)
        context.write(Self.wrapOutboundOut(.head(template.head)), promise: nil)
        if template.body.readableBytes > 0 {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(template.body))), promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func close() {
        closingOnPurpose = true
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            current?.status = head.status.code
            serverCloses = !head.isKeepAlive
        case .body(let body):
            guard var exchange = current else { return }
            if exchange.firstByte == 0 {
                exchange.firstByte = nowNanos()
                current = exchange
                owner?.connectionFirstByte(self, exchange: exchange)
            }
            current?.bodyBytes += body.readableBytes
        case .end:
            guard var exchange = current else { return }
            exchange.end = nowNanos()
            if exchange.firstByte == 0 { exchange.firstByte = exchange.end }
            current = nil
            if serverCloses { context.close(promise: nil) }
            owner?.connectionFinished(self, exchange: exchange, reusable: !serverCloses)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let during = current != nil && !closingOnPurpose
        current = nil
        owner?.connectionClosed(self, duringExchange: during)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets and parse errors end the connection; channelInactive then counts the error.
        context.close(promise: nil)
    }
}
