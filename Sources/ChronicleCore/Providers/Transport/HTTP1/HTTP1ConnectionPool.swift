import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Settings of the pooled HTTP/1.1 upstream transport.
public struct HTTP1PoolConfiguration: Sendable {
    /// How long opening a connection (TCP, not TLS) may take.
    public var connectTimeout: Duration = .seconds(10)
    /// How long an unused keep-alive connection stays open.
    public var idleTimeout: Duration = .seconds(60)
    /// Idle connections kept per scheme, host and port on each event loop; more are closed when freed.
    public var maxIdleConnectionsPerEndpoint = 64
    /// TLS for `https://` upstreams: the system's trust roots, full hostname verification, ALPN `http/1.1`.
    public var tls: TLSConfiguration

    public init() {
        tls = TLSConfiguration.makeClientConfiguration()
        tls.applicationProtocols = ["http/1.1"]
    }
}

/// The connections to every upstream from one event loop. Used only on that loop (through
/// `NIOLoopBoundBox`), so the hot path takes no lock shared between loops.
final class HTTP1ConnectionPool {
    let eventLoop: any EventLoop
    private let configuration: HTTP1PoolConfiguration
    private let tls: TLSContextCache
    private var idle: [UpstreamEndpoint.Key: [HTTP1ClientHandler]] = [:]
    private var idleCount = 0
    /// Every open connection, idle or busy, to close at shutdown.
    private var open: [ObjectIdentifier: any Channel] = [:]
    /// Parsed upstream URLs: providers send to a handful, so each is parsed once per loop.
    private var endpoints: [String: UpstreamEndpoint] = [:]
    private var sweep: RepeatedTask?
    private var isShutDown = false

    init(eventLoop: any EventLoop, configuration: HTTP1PoolConfiguration, tls: TLSContextCache) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.tls = tls
    }

    /// Connections open now (for tests and shutdown).
    var openConnections: Int { open.count }

    /// POSTs `body` to `url` for `exchange`.
    func execute(url: String, headers: HTTPHeaders, body: ByteBuffer, exchange: UpstreamExchange) {
        let endpoint: UpstreamEndpoint
        if let cached = endpoints[url] {
            endpoint = cached
        } else {
            guard let parsed = UpstreamEndpoint(url: url) else {
                exchange.transportFailed(ProviderError(
                    kind: .connection, message: "Could not reach the provider: not an http(s) URL without credentials"))
                return
            }
            // A bound against a caller that sends to ever new URLs (per-request override URLs).
            if endpoints.count >= 1024 { endpoints.removeAll(keepingCapacity: true) }
            endpoints[url] = parsed
            endpoint = parsed
        }
        var headers = headers
        if !headers.contains(name: "host") { headers.add(name: "host", value: endpoint.hostHeader) }
        headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.target, headers: headers)
        send(HTTP1Request(endpoint: endpoint, head: head, body: body), exchange: exchange, mayReuse: true)
    }

    /// Sends on an idle connection to the same endpoint (when `mayReuse`), else on a new one.
    func send(_ request: HTTP1Request, exchange: UpstreamExchange, mayReuse: Bool) {
        guard !isShutDown else {
            exchange.transportFailed(ProviderError(kind: .connection, message: "The gateway is shutting down"))
            return
        }
        guard !exchange.hasFailed else { return }
        if mayReuse {
            // The most recently used first: it is the likeliest still open at the other end.
            while let connection = idle[request.endpoint.key]?.popLast() {
                idleCount -= 1
                switch connection.start(request, exchange: exchange) {
                case .started:
                    return
                case .exchangeGone:
                    release(connection)
                    return
                case .unusable:
                    continue
                }
            }
        }
        connect(request, exchange: exchange)
    }

    private func connect(_ request: HTTP1Request, exchange: UpstreamExchange) {
        let key = request.endpoint.key
        var sslContext: NIOSSLContext?
        if key.tls {
            do {
                sslContext = try tls.context()
            } catch {
                exchange.transportFailed(ProviderError(kind: .connection, message: "TLS is misconfigured: \(error)"))
                return
            }
        }
        // IP addresses are never sent as the TLS server name; NIOSSL then checks the peer's address instead.
        let serverHostname = request.endpoint.hostIsIPAddress ? nil : key.host
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [sslContext] channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    }
                    let client = HTTP1ClientHandler(pool: pool.value, key: key)
                    try sync.addHandler(ResponseByteObserver(client: client))
                    try sync.addHTTPClientHandlers(leftOverBytesStrategy: .fireError)
                    try sync.addHandler(client)
                }
            }
            .connect(host: key.host, port: key.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    pool.value.connected(channel, request: request, exchange: exchange)
                case .failure(let error):
                    exchange.transportFailed(ProviderError(kind: .connection, message: "Could not reach the provider: \(error)"))
                }
            }
    }

    private func connected(_ channel: any Channel, request: HTTP1Request, exchange: UpstreamExchange) {
        guard !isShutDown, let connection = try? channel.pipeline.syncOperations.handler(type: HTTP1ClientHandler.self)
        else {
            channel.close(promise: nil)
            exchange.transportFailed(ProviderError(kind: .connection, message: "The gateway is shutting down"))
            return
        }
        switch connection.start(request, exchange: exchange) {
        case .started:
            open[ObjectIdentifier(channel)] = channel
        case .exchangeGone:
            // Timed out or cancelled while connecting: the fresh connection serves the next request.
            open[ObjectIdentifier(channel)] = channel
            release(connection)
        case .unusable:
            exchange.transportFailed(ProviderError(
                kind: .connectionClosed, message: "Provider closed the connection before responding"))
        }
    }

    /// A connection finished its response and may be reused.
    func release(_ connection: HTTP1ClientHandler) {
        guard !isShutDown, connection.isIdleAndOpen,
            idle[connection.key]?.count ?? 0 < configuration.maxIdleConnectionsPerEndpoint
        else {
            connection.closeIfIdle()
            return
        }
        connection.idleSince = .now()
        idle[connection.key, default: []].append(connection)
        idleCount += 1
        if sweep == nil { startSweep() }
    }

    /// A connection closed: it leaves the pool.
    func remove(_ connection: HTTP1ClientHandler, channel: any Channel) {
        open[ObjectIdentifier(channel)] = nil
        if var list = idle[connection.key], let index = list.firstIndex(where: { $0 === connection }) {
            list.remove(at: index)
            idle[connection.key] = list.isEmpty ? nil : list
            idleCount -= 1
        }
    }

    /// Closes idle connections past the idle timeout; one repeating timer per loop while any are idle, not one
    /// timer per released connection.
    private func startSweep() {
        let interval = TimeAmount.nanoseconds(max(configuration.idleTimeout.nanoseconds / 4, 1_000_000))
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        sweep = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            pool.value.closeExpired()
        }
    }

    private func closeExpired() {
        let cutoff = NIODeadline.now() - .nanoseconds(configuration.idleTimeout.nanoseconds)
        for list in idle.values {
            for connection in list where connection.idleSince <= cutoff {
                connection.closeIfIdle()
            }
        }
        if idleCount == 0 {
            sweep?.cancel()
            sweep = nil
        }
    }

    /// Closes every connection, idle or busy; requests still running fail as the connection closes.
    func shutdown() -> EventLoopFuture<Void> {
        isShutDown = true
        sweep?.cancel()
        sweep = nil
        let channels = Array(open.values)
        for channel in channels { channel.close(promise: nil) }
        return EventLoopFuture.andAllComplete(channels.map(\.closeFuture), on: eventLoop)
    }
}

/// One `NIOSSLContext` for every loop, made on first use (loading the trust roots is not free).
final class TLSContextCache: Sendable {
    private let configuration: TLSConfiguration
    private let cached = NIOLockedValueBox<NIOSSLContext?>(nil)

    init(_ configuration: TLSConfiguration) {
        self.configuration = configuration
    }

    func context() throws -> NIOSSLContext {
        try cached.withLockedValue { cached in
            if let cached { return cached }
            let context = try NIOSSLContext(configuration: configuration)
            cached = context
            return context
        }
    }
}

/// The HTTP/1.1 pools of an event loop group, one per loop; a call uses the pool of the loop it runs on.
final class HTTP1Pools: Sendable {
    private let group: any EventLoopGroup
    /// Built once; read-only afterwards, so looking up a loop's pool takes no lock.
    private let pools: [ObjectIdentifier: NIOLoopBoundBox<HTTP1ConnectionPool>]

    init(group: any EventLoopGroup, configuration: HTTP1PoolConfiguration) {
        self.group = group
        let tls = TLSContextCache(configuration.tls)
        var pools: [ObjectIdentifier: NIOLoopBoundBox<HTTP1ConnectionPool>] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = .makeBoxSendingValue(
                HTTP1ConnectionPool(eventLoop: loop, configuration: configuration, tls: tls), eventLoop: loop)
        }
        self.pools = pools
    }

    /// The caller's own loop when it runs on one of the group's (a server request does, through its task
    /// executor preference), so the call never leaves it; any of the group's loops otherwise.
    func eventLoopForCaller() -> any EventLoop {
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, pools[ObjectIdentifier(current)] != nil {
            return current
        }
        return group.any()
    }

    func execute(url: String, headers: HTTPHeaders, body: ByteBuffer, exchange: UpstreamExchange) {
        let eventLoop = exchange.eventLoop
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            exchange.transportFailed(ProviderError(kind: .connection, message: "No connection pool for this event loop"))
            return
        }
        if eventLoop.inEventLoop {
            pool.value.execute(url: url, headers: headers, body: body, exchange: exchange)
        } else {
            eventLoop.execute { pool.value.execute(url: url, headers: headers, body: body, exchange: exchange) }
        }
    }

    /// Connections open in every pool (for tests).
    func openConnections() async -> Int {
        var total = 0
        for pool in pools.values {
            total += (try? await pool.eventLoop.submit { pool.value.openConnections }.get()) ?? 0
        }
        return total
    }

    /// Closes every pooled connection; later calls fail with a connection error.
    func shutdown() async {
        for pool in pools.values {
            try? await pool.eventLoop.flatSubmit { pool.value.shutdown() }.get()
        }
    }
}
