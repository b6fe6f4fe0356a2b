import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

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
    }

    private let channel: any Channel
    private let counts: NIOLockedValueBox<Counts>

    struct Counts {
        var opened = 0
        var requested = 0
        var closedAfterRequest = 0
    }
    public let port: Int

    public func url(_ path: String = "/v1/chat/completions") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Connections accepted so far.
    public var connections: Int { counts.withLockedValue { $0.opened } }
    /// Connections a request arrived on.
    public var requests: Int { counts.withLockedValue { $0.requested } }
    /// Of those, the ones closed since (by either side): a gateway that abandons a request closes its
    /// connection. (A pooled connection that never carried a request may stay open.)
    public var closedRequests: Int { counts.withLockedValue { $0.closedAfterRequest } }

    public static func start(_ behavior: Behavior) async throws -> RawUpstream {
        let counts = NIOLockedValueBox(Counts())
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counts.withLockedValue { $0.opened += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MisbehavingHandler(behavior: behavior, counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawUpstream(channel: channel, counts: counts, port: channel.localAddress?.port ?? 0)
    }

    private init(channel: any Channel, counts: NIOLockedValueBox<Counts>, port: Int) {
        self.channel = channel
        self.counts = counts
        self.port = port
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

    init(behavior: RawUpstream.Behavior, counts: NIOLockedValueBox<RawUpstream.Counts>) {
        self.behavior = behavior
        self.counts = counts
    }

    func channelInactive(context: ChannelHandlerContext) {
        if answered { counts.withLockedValue { $0.closedAfterRequest += 1 } }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        counts.withLockedValue { $0.requested += 1 }
        switch behavior {
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
}
