import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A TCP server that misbehaves below HTTP: it answers every connection with fixed bytes (or nothing)
/// and then closes or resets it. For fault injection that a well-behaved HTTP server cannot produce:
/// resets before headers, truncated bodies, streams cut mid-way.
public final class RawUpstream: Sendable {
    public enum Behavior: Sendable {
        /// Close the connection as soon as the request starts arriving, without a byte of response.
        case closeImmediately
        /// Reset the connection (RST, not FIN) as soon as the request starts arriving.
        case reset
        /// Write `bytes`, then close.
        case writeThenClose([UInt8])
        /// Write `bytes`, then keep the connection open and silent.
        case writeThenHang([UInt8])
        /// Answer the requests on each connection in turn as `steps` say (the last one repeats), keeping the
        /// connection open between them: a keep-alive upstream, or one that drops a kept-alive connection.
        case keepAlive([Step])
        /// Answer with a `content-length` body of `size` bytes, written as fast as the socket takes it
        /// (``bodyBytesWritten`` tells how far it got: a client that stops reading stops it).
        case largeBody(size: Int)
        /// Answer with an event stream of `count` copies of `event`, written as fast as the socket takes
        /// them (a client that stops reading stops it; ``closedRequests`` tells when it hangs up).
        case eventStream(event: [UInt8], count: Int)
    }

    /// What a ``Behavior/keepAlive(_:)`` upstream does with one request.
    public enum Step: Sendable {
        /// Write these bytes (a whole response) and wait for the next request.
        case respond([UInt8])
        /// Close the connection without a byte of response.
        case close
        /// Write these bytes (an incomplete response), then close.
        case writeThenClose([UInt8])
    }

    /// A complete `200` response with a JSON body, for ``Step/respond(_:)``.
    public static func okResponse(_ json: String = #"{"ok":true}"#, extraHeaders: String = "") -> [UInt8] {
        Array("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \(json.utf8.count)\r\n\(extraHeaders)\r\n\(json)".utf8)
    }

    private let channel: any Channel
    private let counts: NIOLockedValueBox<Counts>

    struct Counts {
        var opened = 0
        var requested = 0
        var closedAfterRequest = 0
        var bodyBytesWritten = 0
    }
    public let port: Int
    private let tls: Bool

    /// `http://127.0.0.1:<port>` plus `path`; with TLS `https://localhost:<port>`, the name its certificate carries.
    public func url(_ path: String = "/v1/chat/completions") -> String {
        tls ? "https://localhost:\(port)\(path)" : "http://127.0.0.1:\(port)\(path)"
    }

    /// Connections accepted so far.
    public var connections: Int { counts.withLockedValue { $0.opened } }
    /// Connections a request arrived on.
    public var requests: Int { counts.withLockedValue { $0.requested } }
    /// Of those, the ones closed since (by either side): a gateway that abandons a request closes its
    /// connection. (A pooled connection that never carried a request may stay open.)
    public var closedRequests: Int { counts.withLockedValue { $0.closedAfterRequest } }
    /// Body bytes the socket accepted so far (``Behavior/largeBody(size:)``).
    public var bodyBytesWritten: Int { counts.withLockedValue { $0.bodyBytesWritten } }

    /// Listens on a loopback port; with `tls`, connections are TLS first.
    public static func start(_ behavior: Behavior, tls: NIOSSLContext? = nil) async throws -> RawUpstream {
        let counts = NIOLockedValueBox(Counts())
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counts.withLockedValue { $0.opened += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(MisbehavingHandler(behavior: behavior, counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawUpstream(channel: channel, counts: counts, port: channel.localAddress?.port ?? 0, tls: tls != nil)
    }

    private init(channel: any Channel, counts: NIOLockedValueBox<Counts>, port: Int, tls: Bool) {
        self.channel = channel
        self.counts = counts
        self.port = port
        self.tls = tls
    }

    public func stop() async {
        try? await channel.close()
    }
}

private final class MisbehavingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let behavior: RawUpstream.Behavior
    let counts: NIOLockedValueBox<RawUpstream.Counts>
    var answered = false
    /// Request bytes not yet answered (keep-alive behaviour).
    var pending = ByteBuffer()
    /// Requests answered on this connection (keep-alive behaviour).
    var served = 0

    init(behavior: RawUpstream.Behavior, counts: NIOLockedValueBox<RawUpstream.Counts>) {
        self.behavior = behavior
        self.counts = counts
    }

    func channelInactive(context: ChannelHandlerContext) {
        if answered { counts.withLockedValue { $0.closedAfterRequest += 1 } }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .keepAlive(let steps) = behavior {
            var bytes = unwrapInboundIn(data)
            pending.writeBuffer(&bytes)
            answerCompleteRequests(context: context, steps: steps)
            return
        }
        guard !answered else { return }
        answered = true
        counts.withLockedValue { $0.requested += 1 }
        switch behavior {
        case .keepAlive:
            break
        case .largeBody(let size):
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: \(size)\r\n\r\n"
            context.writeAndFlush(NIOAny(ByteBuffer(string: head)), promise: nil)
            writeBody(context: NIOLoopBound(context, eventLoop: context.eventLoop), remaining: size)
        case .eventStream(let event, let count):
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: \(event.count * count)\r\n\r\n"
            context.writeAndFlush(NIOAny(ByteBuffer(string: head)), promise: nil)
            writeEvents(context: NIOLoopBound(context, eventLoop: context.eventLoop), event: ByteBuffer(bytes: event),
                        remaining: count)
        case .closeImmediately:
            context.close(promise: nil)
        case .reset:
            // SO_LINGER with a zero timeout turns close into a reset.
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            if let provider = context.channel as? any SocketOptionProvider {
                provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in bound.value.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        case .writeThenClose(let bytes):
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes))).whenComplete { _ in bound.value.close(promise: nil) }
        case .writeThenHang(let bytes):
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
        }
    }

    /// Writes the body 64 KiB at a time, each once the previous one reached the socket.
    private func writeBody(context: NIOLoopBound<ChannelHandlerContext>, remaining: Int) {
        guard remaining > 0 else { return }
        let size = min(remaining, 64 * 1024)
        let counts = counts
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.value.writeAndFlush(NIOAny(ByteBuffer(repeating: UInt8(ascii: "x"), count: size))).whenSuccess {
            counts.withLockedValue { $0.bodyBytesWritten += size }
            handler.value.writeBody(context: context, remaining: remaining - size)
        }
    }

    /// Writes `remaining` copies of `event`, each once the previous one reached the socket.
    private func writeEvents(context: NIOLoopBound<ChannelHandlerContext>, event: ByteBuffer, remaining: Int) {
        guard remaining > 0 else { return }
        let counts = counts
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.value.writeAndFlush(NIOAny(event)).whenSuccess {
            counts.withLockedValue { $0.bodyBytesWritten += event.readableBytes }
            handler.value.writeEvents(context: context, event: event, remaining: remaining - 1)
        }
    }

    /// Answers every complete request (head plus `content-length` body) in `pending`.
    private func answerCompleteRequests(context: ChannelHandlerContext, steps: [RawUpstream.Step]) {
        while let headEnd = pending.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
            let headLength = headEnd.upperBound - pending.readerIndex
            let head = String(decoding: pending.readableBytesView.prefix(headLength), as: UTF8.self).lowercased()
            var bodyLength = 0
            for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                bodyLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            guard pending.readableBytes >= headLength + bodyLength else { return }
            pending.moveReaderIndex(forwardBy: headLength + bodyLength)
            answered = true
            counts.withLockedValue { $0.requested += 1 }
            let step = steps.isEmpty ? .close : steps[min(served, steps.count - 1)]
            served += 1
            switch step {
            case .respond(let bytes):
                context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
            case .close:
                context.close(promise: nil)
                return
            case .writeThenClose(let bytes):
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes))).whenComplete { _ in bound.value.close(promise: nil) }
                return
            }
        }
    }
}
