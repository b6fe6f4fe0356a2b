import NIOCore
import NIOHTTP1
import NIOPosix

/// One inbound client connection and its own upstream keep-alive connection, opened on the same event loop
/// when the client connects. Everything here runs on that loop, so the two sides call each other directly.
///
/// The server pipeline's pipelining assistance hands this handler one request at a time, and holds the next
/// one back until this response's `.end` is written, so at most one exchange is in flight per connection.
final class RelayHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum UpstreamState {
        /// Connecting; request parts that arrive meanwhile wait here, in order.
        case connecting(queued: [HTTPClientRequestPart])
        case connected(any Channel)
        case closed
    }

    private let upstreamAddress: SocketAddress
    private let hostHeader: String
    private var context: ChannelHandlerContext?
    private var upstream = UpstreamState.connecting(queued: [])
    /// Parts written to one side and not flushed yet: flushed once per read burst, or at a message's end.
    private var upstreamNeedsFlush = false
    private var clientNeedsFlush = false
    /// Between a response head and its end: an upstream that closes then leaves the client a cut response.
    private var responseInProgress = false

    init(upstream: SocketAddress, hostHeader: String) {
        self.upstreamAddress = upstream
        self.hostHeader = hostHeader
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                }
            }
            .connect(to: upstreamAddress)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel): self.upstreamConnected(channel)
                case .failure: self.upstreamClosed()
                }
            }
        context.fireChannelActive()
    }

    private func upstreamConnected(_ channel: any Channel) {
        guard case .connecting(let queued) = upstream, context != nil else {
            // The client left while the upstream connection was being opened.
            channel.close(promise: nil)
            return
        }
        do {
            try channel.pipeline.syncOperations.addHandler(UpstreamHandler(relay: self))
        } catch {
            channel.close(promise: nil)
            upstreamClosed()
            return
        }
        upstream = .connected(channel)
        for part in queued { channel.write(part, promise: nil) }
        if !queued.isEmpty { channel.flush() }
    }

    // MARK: client → upstream

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch Self.unwrapInboundIn(data) {
        case .head(var head):
            // The upstream sees its own authority, as behind any reverse proxy; every other header is kept.
            head.headers.replaceOrAdd(name: "host", value: hostHeader)
            part = .head(head)
        case .body(let buffer):
            part = .body(.byteBuffer(buffer))
        case .end(let trailers):
            part = .end(trailers)
        }
        switch upstream {
        case .connecting(var queued):
            upstream = .connecting(queued: [])  // keeps the array uniquely referenced while it grows
            queued.append(part)
            upstream = .connecting(queued: queued)
        case .connected(let channel):
            if case .end = part {
                channel.writeAndFlush(part, promise: nil)
                upstreamNeedsFlush = false
            } else {
                channel.write(part, promise: nil)
                upstreamNeedsFlush = true
            }
        case .closed:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A large request body leaves in the bursts it arrived in, never buffered whole.
        if upstreamNeedsFlush, case .connected(let channel) = upstream {
            upstreamNeedsFlush = false
            channel.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // A slow client stops the upstream reads, so a fast upstream cannot fill this process's memory.
        if case .connected(let channel) = upstream {
            channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .connected(let channel) = upstream { channel.close(promise: nil) }
        upstream = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets from clients that abort (the load generator does at the end of a run) are expected.
        context.close(promise: nil)
    }

    // MARK: upstream → client (called by UpstreamHandler, on the same event loop)

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard let context else { return }
        switch part {
        case .head(let head):
            // Relayed as is: its content-length or chunked framing describes the body that follows, part by part.
            responseInProgress = true
            context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            clientNeedsFlush = true
        case .body(let buffer):
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            clientNeedsFlush = true
        case .end(let trailers):
            responseInProgress = false
            clientNeedsFlush = false
            context.writeAndFlush(Self.wrapOutboundOut(.end(trailers)), promise: nil)
        }
    }

    /// Once per upstream read burst: each streamed event reaches the client as soon as it arrived.
    func upstreamReadComplete() {
        guard clientNeedsFlush, let context else { return }
        clientNeedsFlush = false
        context.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        context?.channel.setOption(ChannelOptions.autoRead, value: isWritable).whenFailure { _ in }
    }

    /// The floor does not reconnect: the benchmark's upstream keeps its connections open, so a closed
    /// upstream means a failure, and closing the client's connection shows it rather than hiding it.
    func upstreamClosed() {
        let wasOpen: Bool
        if case .closed = upstream { wasOpen = false } else { wasOpen = true }
        upstream = .closed
        guard wasOpen, let context else { return }
        if clientNeedsFlush || responseInProgress { context.flush() }
        context.close(promise: nil)
    }
}
