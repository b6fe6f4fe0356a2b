// ChronicleMock: a fast OpenAI/Anthropic-shaped upstream for benchmarking the gateway.
// It must never be the bottleneck, so it is plain SwiftNIO with precomputed responses.
import BenchSupport
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct MockOptions {
    var host = "127.0.0.1"
    var port = 8089

    static let usage = "usage: ChronicleMock [--host 127.0.0.1] [--port 8089]"

    static func parse(_ arguments: [String]) -> Result<MockOptions, ArgumentError> {
        var options = MockOptions()
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            switch flag {
            case "--host":
                guard let value = rest.popFirst() else { return .failure(ArgumentError("--host needs a value")) }
                options.host = value
            case "--port":
                guard let value = rest.popFirst(), let port = Int(value), (0...65535).contains(port) else {
                    return .failure(ArgumentError("--port needs a number 0-65535"))
                }
                options.port = port
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                return .failure(ArgumentError("unknown argument \(flag)"))
            }
        }
        return .success(options)
    }
}

struct ArgumentError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

let options: MockOptions
switch MockOptions.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let parsed): options = parsed
case .failure(let error):
    Output.standardError("ChronicleMock: \(error.message)\n\(MockOptions.usage)\n")
    exit(2)
}

raiseFileDescriptorLimit()
let responses = MockResponses()
let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    // 1,000 clients connect at once in the open-streams scenario.
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    // Each SSE event must leave as soon as it is flushed, not wait for Nagle.
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(MockHTTPHandler(responses: responses))
        }
    }

do {
    let channel = try bootstrap.bind(host: options.host, port: options.port).wait()
    Output.standardOutput("ChronicleMock listening on \(channel.localAddress.map { "\($0)" } ?? "\(options.host):\(options.port)")\n")
    try channel.closeFuture.wait()
} catch {
    Output.standardError("ChronicleMock: \(error)\n")
    exit(1)
}
