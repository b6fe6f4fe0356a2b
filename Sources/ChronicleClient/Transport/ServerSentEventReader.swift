/// Splits a server-sent event stream into events, fed with bytes as they arrive.
///
/// Only what chat streams use is kept: `event:` and `data:` fields (several `data:` lines joined with a
/// newline), any line ending, and events dispatched at a blank line.
struct ServerSentEventReader {
    struct Event: Equatable {
        var name: String?
        var data: [UInt8]
    }

    private var line: [UInt8] = []
    private var name: String?
    private var data: [UInt8] = []
    private var hasData = false
    private var lastWasCarriageReturn = false

    /// The events completed by `bytes`.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n") where lastWasCarriageReturn:
                lastWasCarriageReturn = false
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                lastWasCarriageReturn = byte == UInt8(ascii: "\r")
                if let event = endLine() { events.append(event) }
            default:
                lastWasCarriageReturn = false
                line.append(byte)
            }
        }
        return events
    }

    /// The event left when the stream ends without a final blank line.
    mutating func finish() -> Event? {
        if !line.isEmpty { _ = endLine() }
        return endLine()
    }

    private mutating func endLine() -> Event? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else {
            defer {
                name = nil
                data = []
                hasData = false
            }
            return hasData ? Event(name: name, data: data) : nil
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = String(decoding: line[..<colon], as: UTF8.self)
        var value = colon < line.endIndex ? line[(colon + 1)...] : []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        switch field {
        case "data":
            if hasData { data.append(UInt8(ascii: "\n")) }
            data.append(contentsOf: value)
            hasData = true
        case "event":
            name = String(decoding: value, as: UTF8.self)
        default:
            break
        }
        return nil
    }
}
