import NIOCore
import NIOHTTP1

/// The upstream end of one relay: hands every response part to the relay on the same event loop.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    // Weak: the relay owns the upstream channel, and its client may go away first.
    private weak var relay: RelayHandler?

    init(relay: RelayHandler) {
        self.relay = relay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay?.upstreamRead(Self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        relay?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay?.upstreamClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or a malformed response ends the connection; channelInactive then closes the client's.
        context.close(promise: nil)
    }
}
