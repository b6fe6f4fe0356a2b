import NIOCore
import NIOHTTP1
import NIOPosix

/// Times shared by every shard of a run, in `nowNanos()` units.
struct RunClock: Sendable {
    let start: UInt64
    let measureStart: UInt64
    let end: UInt64
}

/// What one shard measured; merged by `main`.
struct ShardResult: Sendable {
    var latencies: [UInt64] = []  // ns, start (scheduled start in open loop) to last byte
    var ttfts: [UInt64] = []  // ns, start to first body byte
    var completed = 0
    var statusErrors = 0
    var connectionErrors = 0
    var statusCounts: [UInt: Int] = [:]
    var bodyBytes = 0
    var scheduled = 0
    var dropped = 0
    var streamsOpened = 0
    var streamsFailed = 0
    var streamsCompleted = 0
    var streamsFailedAfterOpen = 0
    var requestBodyBytes = 0

    mutating func merge(_ other: ShardResult) {
        latencies += other.latencies
        ttfts += other.ttfts
        completed += other.completed
        statusErrors += other.statusErrors
        connectionErrors += other.connectionErrors
        statusCounts.merge(other.statusCounts, uniquingKeysWith: +)
        bodyBytes += other.bodyBytes
        scheduled += other.scheduled
        dropped += other.dropped
        streamsOpened += other.streamsOpened
        streamsFailed += other.streamsFailed
        streamsCompleted += other.streamsCompleted
        streamsFailedAfterOpen += other.streamsFailedAfterOpen
    }
}

/// All the connections of one event loop and their bookkeeping. Everything here runs on `loop`, so no
/// locks: `main` reaches a shard only through `NIOLoopBound` and event-loop tasks.
final class Shard: ConnectionOwner {
    let loop: any EventLoop
    private let options: LoadOptions
    private let template: RequestTemplate
    private let clock: RunClock
    /// Closed loop: connections kept busy. Open loop: the pool's cap. Open streams: streams to open.
    private let connectionTarget: Int
    /// Open loop: this shard's share of the rate.
    private let rate: Double

    private var result = ShardResult()
    private var connections: [Int: LoadConnection] = [:]
    private var connecting = 0
    private var nextID = 0
    private var stopping = false
    private var idle: [LoadConnection] = []
    private var pending: [UInt64] = []  // open loop: scheduled starts waiting for a connection
    private var pendingHead = 0
    private var nextIndex = 0
    private var streamResolved = 0
    private var openedStreams: Set<Int> = []
    private let finishedPromise: EventLoopPromise<ShardResult>
    private var finished = false
    private var isReady = false
    private let readyPromise: EventLoopPromise<Void>

    /// Open streams: succeeds once every stream has either sent a first byte or failed.
    var ready: EventLoopFuture<Void> { readyPromise.futureResult }

    init(loop: any EventLoop, options: LoadOptions, template: RequestTemplate, clock: RunClock,
         connections: Int, rate: Double) {
        self.loop = loop
        self.options = options
        self.template = template
        self.clock = clock
        self.connectionTarget = connections
        self.rate = rate
        self.finishedPromise = loop.makePromise()
        self.readyPromise = loop.makePromise()
    }

    /// Starts the shard's work; the future completes when it has stopped and closed its connections.
    func start() -> EventLoopFuture<ShardResult> {
        switch options.mode {
        case .closed:
            for _ in 0..<connectionTarget { connect() }
            loop.assumeIsolated().scheduleTask(deadline: NIODeadline.uptimeNanoseconds(clock.end)) { self.stop() }
        case .open:
            tick()
        case .openStreams:
            if connectionTarget == 0 { markReady() }
            for _ in 0..<connectionTarget { connect() }
            loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(options.openTimeout * 1e9))) {
                self.markReady()
            }
        }
        return finishedPromise.futureResult
    }

    // MARK: connections

    private func connect() {
        guard !stopping else { return }
        connecting += 1
        let id = nextID
        nextID += 1
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                }
            }
            .connect(host: options.host, port: options.port)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting -= 1
                switch result {
                case .success(let channel):
                    let connection = LoadConnection(id: id, owner: self, template: self.template)
                    do {
                        try channel.pipeline.syncOperations.addHandler(connection)
                    } catch {
                        channel.close(promise: nil)
                        self.connectFailed()
                        return
                    }
                    self.connections[id] = connection
                    if self.stopping {
                        connection.close()
                    } else {
                        self.connectionReady(connection)
                    }
                case .failure:
                    self.connectFailed()
                }
            }
    }

    private func connectFailed() {
        result.connectionErrors += 1
        switch options.mode {
        case .closed:
            // Back off a little so a refused port does not spin the loop.
            loop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { self.connect() }
        case .open:
            dispatch()
        case .openStreams:
            result.streamsFailed += 1
            streamResolved += 1
            checkReady()
        }
        maybeFinish()
    }

    private func connectionReady(_ connection: LoadConnection) {
        switch options.mode {
        case .closed, .openStreams:
            connection.send(start: nowNanos())
        case .open:
            idle.append(connection)
            dispatch()
        }
    }

    func connectionFirstByte(_ connection: LoadConnection, exchange: Exchange) {
        guard options.mode == .openStreams, (200..<300).contains(exchange.status) else { return }
        result.streamsOpened += 1
        result.ttfts.append(exchange.firstByte &- exchange.start)
        openedStreams.insert(connection.id)
        streamResolved += 1
        checkReady()
    }

    func connectionFinished(_ connection: LoadConnection, exchange: Exchange, reusable: Bool) {
        let ok = (200..<300).contains(exchange.status)
        result.statusCounts[exchange.status, default: 0] += 1
        if !ok { result.statusErrors += 1 }
        switch options.mode {
        case .closed:
            if ok, exchange.end >= clock.measureStart, exchange.end <= clock.end {
                record(exchange)
            }
            if reusable, !stopping { connection.send(start: nowNanos()) }
        case .open:
            if ok, exchange.start >= clock.measureStart { record(exchange) }
            if reusable, !stopping || pendingHead < pending.count { idle.append(connection) }
            dispatch()
        case .openStreams:
            if !openedStreams.contains(connection.id) {
                // A stream that ended (or failed) before its first body byte.
                if ok { result.streamsOpened += 1 } else { result.streamsFailed += 1 }
                openedStreams.insert(connection.id)
                streamResolved += 1
                checkReady()
            }
            // Only TTFT matters here (recorded at the first byte); a stream that ends early is still fine.
            if ok { result.streamsCompleted += 1 }
            connection.close()
        }
        maybeFinish()
    }

    func connectionClosed(_ connection: LoadConnection, duringExchange: Bool) {
        connections[connection.id] = nil
        idle.removeAll { $0 === connection }
        if duringExchange {
            result.connectionErrors += 1
            if options.mode == .openStreams {
                if openedStreams.contains(connection.id) {
                    // Opened, then cut before its end: the gateway dropped a held stream.
                    result.streamsFailedAfterOpen += 1
                } else {
                    result.streamsFailed += 1
                    streamResolved += 1
                    checkReady()
                }
            }
        }
        if !stopping {
            switch options.mode {
            case .closed: connect()  // keep C connections busy after a server-side close
            case .open: dispatch()
            case .openStreams: break
            }
        }
        maybeFinish()
    }

    private func record(_ exchange: Exchange) {
        result.completed += 1
        result.latencies.append(exchange.end &- exchange.start)
        result.ttfts.append(exchange.firstByte &- exchange.start)
        result.bodyBytes += exchange.bodyBytes
    }

    // MARK: open loop

    /// Queues every request whose scheduled time has come, then sleeps until the next one is due.
    private func tick() {
        let interval = 1e9 / rate
        let now = nowNanos()
        while true {
            let due = clock.start &+ UInt64(Double(nextIndex) * interval)
            guard due < clock.end else {
                loop.assumeIsolated().scheduleTask(deadline: NIODeadline.uptimeNanoseconds(clock.end)) { self.stop() }
                dispatch()
                return
            }
            guard due <= now else {
                dispatch()
                loop.assumeIsolated().scheduleTask(deadline: NIODeadline.uptimeNanoseconds(due)) { self.tick() }
                return
            }
            pending.append(due)
            result.scheduled += 1
            nextIndex += 1
        }
    }

    /// Hands queued requests to idle connections, opening connections up to the cap.
    private func dispatch() {
        while pendingHead < pending.count, let connection = idle.popLast() {
            connection.send(start: pending[pendingHead])
            pendingHead += 1
        }
        if pendingHead > 4096, pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
        guard !stopping else { return }
        let waiting = pending.count - pendingHead
        var open = connections.count + connecting
        var wanted = waiting - connecting
        while wanted > 0, open < connectionTarget {
            connect()
            open += 1
            wanted -= 1
        }
    }

    // MARK: stopping

    private func checkReady() {
        if streamResolved >= connectionTarget { markReady() }
    }

    private func markReady() {
        guard !isReady else { return }
        isReady = true
        readyPromise.succeed(())
    }

    /// Closed loop: abort what is in flight at the end. Open loop: let started requests finish (up to 5 s),
    /// drop the ones still queued. Open streams: called by main after the hold.
    func stop() {
        guard !stopping else { return }
        stopping = true
        switch options.mode {
        case .closed, .openStreams:
            markReady()
            for connection in connections.values { connection.close() }
        case .open:
            result.dropped = pending.count - pendingHead
            pending.removeAll()
            pendingHead = 0
            for connection in idle { connection.close() }
            idle.removeAll()
            loop.assumeIsolated().scheduleTask(in: .seconds(5)) {
                for connection in self.connections.values { connection.close() }
            }
        }
        maybeFinish()
    }

    private func maybeFinish() {
        guard stopping, connecting == 0 else { return }
        if options.mode == .open {
            for connection in connections.values where !connection.isBusy { connection.close() }
        }
        guard connections.isEmpty, !finished else { return }
        finished = true
        finishedPromise.succeed(result)
    }
}
