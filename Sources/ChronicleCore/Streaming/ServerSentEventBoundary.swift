import NIOCore

/// Holds back the bytes of a relayed server-sent event stream that come after its last complete event.
///
/// A stream relayed as the bytes that came off the network is cut wherever the network cut it, often in
/// the middle of an event. If the upstream then fails, the error event the gateway adds must not be glued
/// onto half an event: the client would read one broken event and lose the error. So only bytes up to the
/// end of the last complete event (its blank line) go out; the rest waits for the read that completes it,
/// and is dropped if the stream fails first. Line ends may be LF, CR or CRLF, and may be split across reads.
struct ServerSentEventBoundary: Sendable {
    /// Thrown when more than `maxHeldBytes` arrive without ending an event.
    struct EventTooLarge: Error, Sendable {}

    private var held: ByteBuffer?
    private var lineIsEmpty = true
    private var lastWasCR = false
    private var lastCRWasBlankLine = false
    private let maxHeldBytes: Int

    init(maxHeldBytes: Int = 16 * 1024 * 1024) {
        self.maxHeldBytes = maxHeldBytes
    }

    /// The bytes held from before and the new `bytes`, up to the end of the last event they complete; `nil`
    /// when they complete none (they are then all held).
    mutating func complete(_ bytes: ByteBufferView) throws(EventTooLarge) -> ByteBuffer? {
        guard let boundary = lastEventEnd(in: bytes) else {
            if held == nil {
                held = ByteBuffer(bytes)
            } else {
                held?.writeBytes(bytes)
            }
            if (held?.readableBytes ?? 0) > maxHeldBytes { throw EventTooLarge() }
            return nil
        }
        let cut = bytes.index(bytes.startIndex, offsetBy: boundary)
        guard var complete = held else {
            // The common case: nothing held, and the read ends on an event's end.
            if cut == bytes.endIndex { return ByteBuffer(bytes) }
            held = ByteBuffer(bytes[cut...])
            return ByteBuffer(bytes[..<cut])
        }
        complete.writeBytes(bytes[..<cut])
        held = cut == bytes.endIndex ? nil : ByteBuffer(bytes[cut...])
        return complete
    }

    /// The bytes held when the stream ends normally: an event the upstream left without its blank line.
    mutating func remainder() -> ByteBuffer? {
        defer { held = nil }
        return held
    }

    /// The offset just past the last blank line that ends in `bytes`, carrying the line state across reads.
    private mutating func lastEventEnd(in bytes: ByteBufferView) -> Int? {
        var end: Int?
        var offset = 0
        for byte in bytes {
            offset += 1
            switch byte {
            case UInt8(ascii: "\n"):
                if lastWasCR {
                    // The LF of a CRLF: the CR already ended the line; a blank line's end moves past the LF.
                    lastWasCR = false
                    if lastCRWasBlankLine { end = offset }
                    continue
                }
                if lineIsEmpty { end = offset }
                lineIsEmpty = true
            case UInt8(ascii: "\r"):
                lastCRWasBlankLine = lineIsEmpty
                if lineIsEmpty { end = offset }
                lineIsEmpty = true
                lastWasCR = true
            default:
                lineIsEmpty = false
                lastWasCR = false
            }
        }
        return end
    }
}
