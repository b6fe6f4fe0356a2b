import ChronicleCore
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `GET /v1/calls/tail`: new calls as server-sent events, each event a JSON array of the calls the database
/// committed together (the members `GET /v1/calls` lists). A comment line every `heartbeat` keeps proxies
/// and the idle timeout from closing a quiet stream, and notices a client that left.
struct LiveTailRoutes<Context: GatewayKeyRequestContext>: Sendable {
    let feed: LiveCallFeed
    var heartbeat: Duration = .seconds(15)

    func register(on router: Router<Context>) {
        router.get("/v1/calls/tail") { _, context -> Response in
            let (stream, cancel) = feed.subscribe()
            let watch = context.clientChannel.flatMap { ClientDisconnect.watch(for: $0) }
            let action = watch?.onDisconnect { cancel() }
            let heartbeat = self.heartbeat
            let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                defer {
                    cancel()
                    if let watch, let action { watch.removeAction(action) }
                }
                try await writer.write(ByteBuffer(string: ": live tail of calls\n\n"))
                let ticks = AsyncStream<[JSONValue]> { continuation in
                    let task = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: heartbeat)
                            continuation.yield([])
                        }
                        continuation.finish()
                    }
                    continuation.onTermination = { _ in task.cancel() }
                }
                // Calls and heartbeats merged in one loop, so that writes never overlap. A server shutting down
                // ends the stream, so that it does not wait for a client that never leaves.
                try await withGracefulShutdownHandler {
                    for await batch in merge(stream, ticks) {
                        if batch.isEmpty {
                            try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                        } else {
                            var buffer = ByteBuffer(string: "data: ")
                            buffer.writeBytes(try JSONCoding.encodeBytes(JSONValue.array(batch)))
                            buffer.writeString("\n\n")
                            try await writer.write(buffer)
                        }
                    }
                } onGracefulShutdown: {
                    cancel()
                }
                try await writer.finish(nil)
            })
        }
    }
}

/// Both streams' elements as they come, until the first one ends. Bounded like a subscriber's own buffer, so
/// that a slow client still loses the oldest batches rather than holding them all here.
private func merge(_ first: AsyncStream<[JSONValue]>, _ second: AsyncStream<[JSONValue]>) -> AsyncStream<[JSONValue]> {
    AsyncStream(bufferingPolicy: .bufferingNewest(LiveCallFeed.bufferedBatches)) { continuation in
        let one = Task {
            for await element in first { continuation.yield(element) }
            continuation.finish()
        }
        let two = Task {
            for await element in second { continuation.yield(element) }
        }
        continuation.onTermination = { _ in
            one.cancel()
            two.cancel()
        }
    }
}
