// ChronicleLoad: an HTTP/1.1 load generator on SwiftNIO keep-alive connections.
// One shard per event loop owns its connections, so the hot path takes no locks.
import BenchSupport
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func fail(_ message: String, code: Int32 = 1) -> Never {
    Output.standardError("ChronicleLoad: \(message)\n")
    exit(code)
}

var options: LoadOptions
switch LoadOptions.parse(Array(CommandLine.arguments.dropFirst())) {
case .success(let parsed): options = parsed
case .failure(let error): fail("\(error.message)\n\(LoadOptions.usage)", code: 2)
}
if options.mode == .open, !options.concurrencyGiven { options.concurrency = 1000 }

let body: [UInt8]
if let path = options.bodyFile {
    guard let bytes = readFile(path) else { fail("cannot read --body-file \(path)") }
    body = bytes
} else {
    body = RequestTemplate.defaultBody(model: options.model, stream: options.stream || options.mode == .openStreams)
}
raiseFileDescriptorLimit()

let template = RequestTemplate(options: options, body: body)
let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
let connectionsTotal = options.openStreams ?? options.concurrency
// Open streams and closed loop split connections over loops; a shard with none does nothing.
let shardCount = options.mode == .open ? loops.count : min(loops.count, connectionsTotal)
let startNanos = nowNanos() + 5_000_000  // every shard starts on the same schedule
let runClock: RunClock
if options.mode == .openStreams {
    runClock = RunClock(start: startNanos, measureStart: startNanos, end: UInt64.max)
} else {
    let measureStart = startNanos + UInt64(options.warmup * 1e9)
    runClock = RunClock(start: startNanos, measureStart: measureStart, end: measureStart + UInt64(options.duration * 1e9))
}

var shards: [NIOLoopBound<Shard>] = []
for index in 0..<shardCount {
    let loop = loops[index]
    let share = connectionsTotal / shardCount + (index < connectionsTotal % shardCount ? 1 : 0)
    let rate = (options.rate ?? 0) / Double(shardCount)
    let opts = options
    let shard = try await loop.submit {
        NIOLoopBound(Shard(loop: loop, options: opts, template: template, clock: runClock,
                           connections: share, rate: rate), eventLoop: loop)
    }.get()
    shards.append(shard)
}

var results: [EventLoopFuture<ShardResult>] = []
for shard in shards {
    results.append(shard.eventLoop.flatSubmit { shard.value.start() })
}

var openSeconds: Double?
if options.mode == .openStreams {
    for shard in shards {
        try await shard.eventLoop.flatSubmit { shard.value.ready }.get()
    }
    openSeconds = Double(nowNanos() &- startNanos) / 1e9
    if let path = options.readyFile, !writeFile(path, contents: "ready\n") { fail("cannot write --ready-file \(path)") }
    if !options.json { print("all streams resolved after \(fmt(openSeconds ?? 0)) s; holding \(fmt(options.hold)) s") }
    try await Task.sleep(nanoseconds: UInt64(options.hold * 1e9))
    for shard in shards {
        shard.eventLoop.execute { shard.value.stop() }
    }
}

var total = ShardResult()
for future in results {
    total.merge(try await future.get())
}
total.requestBodyBytes = body.count
print(report(options: options, result: total,
             measuredSeconds: options.mode == .openStreams ? options.hold : options.duration,
             openSeconds: openSeconds))
