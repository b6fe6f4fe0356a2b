// ChronicleFloor: the floor of any Swift HTTP proxy on this machine, for the side-by-side benchmark.
// A bare SwiftNIO HTTP/1.1 relay: no JSON work, no logging, no routing. Each inbound connection gets one
// upstream keep-alive connection on the same event loop, and request and response parts are relayed as
// they arrive. Whatever a gateway adds beyond this tool's latency is the gateway's own work.
import BenchSupport
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let options: FloorOptions
switch FloorOptions.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let parsed): options = parsed
case .failure(let error):
    Output.standardError("ChronicleFloor: \(error.message)\n\(FloorOptions.usage)\n")
    exit(2)
}

// Resolved once: a name lookup per inbound connection would be work no gateway in the comparison does.
let upstream: SocketAddress
do {
    upstream = try SocketAddress.makeAddressResolvingHost(options.upstreamHost, port: options.upstreamPort)
} catch {
    Output.standardError("ChronicleFloor: cannot resolve upstream \(options.upstreamHost): \(error)\n")
    exit(2)
}
let upstreamHostHeader = "\(options.upstreamHost):\(options.upstreamPort)"

raiseFileDescriptorLimit()
let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    // Relayed SSE events must leave as soon as they are flushed, not wait for Nagle.
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(RelayHandler(upstream: upstream, hostHeader: upstreamHostHeader))
        }
    }

do {
    let channel = try bootstrap.bind(host: options.host, port: options.port).wait()
    Output.standardOutput("ChronicleFloor listening on \(channel.localAddress.map { "\($0)" } ?? "\(options.host):\(options.port)"), upstream \(upstream)\n")
    try channel.closeFuture.wait()
} catch {
    Output.standardError("ChronicleFloor: \(error)\n")
    exit(1)
}
