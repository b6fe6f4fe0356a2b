import NIOCore
import NIOHTTP1

/// One connection of the mock upstream. Requests arrive one at a time (the server pipeline's
/// pipelining assistance holds the next request back until this one's `.end` is written).
final class MockHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Route { case openAI, anthropic, healthz, notFound }

    private let responses: MockResponses
    private var route = Route.notFound
    private var keepAlive = true
    private var chunks = 20
    private var delay = TimeAmount.zero
    private var scanner = StreamFlagScanner()
    /// The next event of a delayed stream; cancelled if the client goes away.
    private var pendingEvent: Scheduled<Void>?

    init(responses: MockResponses) {
        self.responses = responses
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            scanner.reset()
            let path = head.uri.split(separator: "?", maxSplits: 1).first ?? ""
            switch (head.method, path) {
            case (.POST, "/v1/chat/completions"): route = .openAI
            case (.POST, "/v1/messages"): route = .anthropic
            case (.GET, "/healthz"), (.GET, "/"): route = .healthz
            default: route = .notFound
            }
            chunks = head.headers.first(name: "x-mock-chunks").flatMap { Int($0) }.map { min(max($0, 0), 1_000_000) } ?? 20
            delay = .microseconds(head.headers.first(name: "x-mock-delay-us").flatMap { Int64($0) }.map { max($0, 0) } ?? 0)
        case .body(let body):
            // Bodies are only scanned, never kept, so 1 MB prompts cost no memory.
            if route == .openAI || route == .anthropic { scanner.scan(body) }
        case .end:
            respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        switch route {
        case .openAI, .anthropic:
            if scanner.found {
                startStream(context: context, anthropic: route == .anthropic)
            } else if route == .openAI {
                sendFixed(context: context, status: .ok, headers: responses.openAIJSONHeaders, body: responses.openAIJSON)
            } else {
                sendFixed(context: context, status: .ok, headers: responses.anthropicJSONHeaders, body: responses.anthropicJSON)
            }
        case .healthz:
            sendFixed(context: context, status: .ok, headers: responses.healthzHeaders, body: responses.healthz)
        case .notFound:
            sendFixed(context: context, status: .notFound, headers: responses.notFoundHeaders, body: responses.notFound)
        }
    }

    private func sendFixed(context: ChannelHandlerContext, status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        var headers = headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        finish(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        if keepAlive {
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    private func startStream(context: ChannelHandlerContext, anthropic: Bool) {
        var headers = responses.sseHeaders
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        sendEvents(context: context, anthropic: anthropic, chunks: chunks, from: 0)
    }

    /// Writes and flushes each event on its own (one HTTP chunk each), as a real provider does. Without a
    /// delay the whole stream goes out at once; with one, each later event is a timer on the event loop.
    private func sendEvents(context: ChannelHandlerContext, anthropic: Bool, chunks: Int, from start: Int) {
        let count = responses.eventCount(anthropic: anthropic, chunks: chunks)
        var index = start
        while index < count {
            let event = responses.event(anthropic: anthropic, chunks: chunks, index: index)
            context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(event))), promise: nil)
            index += 1
            if delay > .zero && index < count {
                let next = index
                pendingEvent = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                    pendingEvent = nil
                    guard context.channel.isActive else { return }
                    sendEvents(context: context, anthropic: anthropic, chunks: chunks, from: next)
                }
                return
            }
        }
        finish(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pendingEvent?.cancel()
        pendingEvent = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets from clients that abort (the load generator does at the end of a run) are expected.
        context.close(promise: nil)
    }
}
