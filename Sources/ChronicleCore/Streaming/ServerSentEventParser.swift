/// One server-sent event.
public struct ServerSentEvent: Sendable, Hashable {
    /// The `event:` field, or `nil` for the default `message` type.
    public var event: String?
    /// The `data:` lines joined with newlines, as raw UTF-8.
    public var data: [UInt8]

    public init(event: String? = nil, data: [UInt8]) {
        self.event = event
        self.data = data
    }

    public var dataString: String { String(decoding: data, as: UTF8.self) }
}

/// An incremental parser for `text/event-stream` (WHATWG HTML, "Server-sent events"), fed with bytes as they arrive.
///
/// Handles LF, CRLF and CR line ends split across reads, multi-line data, comments, and a final event
/// without its trailing blank line. Memory is bounded by `maxEventSize`.
public struct ServerSentEventParser: Sendable {
    /// Thrown when one event grows past the size limit.
    public struct EventTooLarge: Error, Sendable {}

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var lastWasCR = false
    private let maxEventSize: Int

    public init(maxEventSize: Int = 16 * 1024 * 1024) {
        self.maxEventSize = maxEventSize
    }

    /// Consumes `bytes` and returns the events they complete.
    public mutating func parse(_ bytes: some Sequence<UInt8>) throws -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"):
                if lastWasCR {
                    lastWasCR = false
                    continue
                }
                endLine(into: &events)
            case UInt8(ascii: "\r"):
                lastWasCR = true
                endLine(into: &events)
                continue
            default:
                line.append(byte)
                if line.count + data.count > maxEventSize { throw EventTooLarge() }
            }
            lastWasCR = false
        }
        return events
    }

    /// Ends the stream: returns an event left without its blank line, if any.
    public mutating func finish() -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        if !line.isEmpty { endLine(into: &events) }
        endLine(into: &events)
        return events
    }

    private mutating func endLine(into events: inout [ServerSentEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            if hasData {
                events.append(ServerSentEvent(event: eventName, data: data))
            }
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventName = nil
            return
        }
        if line[0] == UInt8(ascii: ":") { return }  // comment
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let field = line[..<(colon ?? line.endIndex)]
        var valueStart = colon.map { line.index(after: $0) } ?? line.endIndex
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = line[valueStart...]
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(UInt8(ascii: "\n")) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventName = String(decoding: value, as: UTF8.self)
        }
        // `id` and `retry` do not matter to a relay that never reconnects.
    }
}
