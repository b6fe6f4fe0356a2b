import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes connections held by slow or stalled clients, so that none can pin a connection, a task or
/// buffered memory forever:
/// - a request's head must arrive within `headerTimeout` of the connection opening (slowloris), and the
///   next one within `idleTimeout + headerTimeout` of the previous response;
/// - its body must arrive within `bodyTimeout` of its head;
/// - a response may not wait more than `writeTimeout` on a client that stopped reading (the channel stays
///   unwritable), which would otherwise hold the upstream stream open indefinitely;
/// - a client that closes its side is disconnected, and in-flight work is told (``ConnectionWatch``).
///
/// Sits after the HTTP codec, so it sees request parts; the timers are scheduled on the channel's loop.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let headerTimeout: TimeAmount
    private let bodyTimeout: TimeAmount
    private let writeTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var readDeadline: Scheduled<Void>?
    private var writeStall: Scheduled<Void>?
    private let watch = ConnectionWatch()

    init(headerTimeout: Duration, bodyTimeout: Duration, writeTimeout: Duration, idleTimeout: Duration) {
        self.headerTimeout = TimeAmount(headerTimeout)
        self.bodyTimeout = TimeAmount(bodyTimeout)
        self.writeTimeout = TimeAmount(writeTimeout)
        self.idleTimeout = TimeAmount(idleTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        ClientDisconnect.register(watch, for: context.channel)
        if context.channel.isActive { arm(headerTimeout, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        ClientDisconnect.unregister(context.channel)
        watch.disconnected()
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(headerTimeout, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        watch.disconnected()
        ClientDisconnect.unregister(context.channel)
        context.fireChannelInactive()
    }

    /// A client that closes its side has gone away (HTTP/1.1 clients do not half-close and then wait for
    /// an answer); close ours too, as nginx does, so that in-flight work is cancelled.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent {
            watch.disconnected()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(bodyTimeout, context: context)
        case .body: break
        case .end:
            readDeadline?.cancel()
            readDeadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(idleTimeout + headerTimeout, context: context) }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeStall?.cancel()
            writeStall = nil
        } else if writeStall == nil {
            let loop = context.eventLoop.assumeIsolated()
            writeStall = loop.scheduleTask(in: writeTimeout) { [weak self] in
                self?.writeStall = nil
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        readDeadline?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        readDeadline = loop.scheduleTask(in: timeout) { [weak self] in
            self?.readDeadline = nil
            context.close(promise: nil)
        }
    }

    private func cancelTimers() {
        readDeadline?.cancel()
        readDeadline = nil
        writeStall?.cancel()
        writeStall = nil
    }
}
