import NIOCore

/// One message of the `application/vnd.amazon.eventstream` framing.
public struct EventStreamMessage: Sendable, Hashable {
    public var headers: [String: String]
    public var payload: [UInt8]
}

/// Decodes `application/vnd.amazon.eventstream` frames as bytes arrive, checking both CRCs:
/// total length (4) · headers length (4) · prelude CRC (4) · headers · payload · message CRC (4).
public struct EventStreamDecoder: Sendable {
    public struct InvalidFrame: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    private var buffer: [UInt8] = []
    private let maxMessageSize: Int

    public init(maxMessageSize: Int = 16 * 1024 * 1024) {
        self.maxMessageSize = maxMessageSize
    }

    /// Consumes bytes; returns the messages they complete.
    public mutating func decode(_ bytes: some Collection<UInt8>) throws -> [EventStreamMessage] {
        buffer.append(contentsOf: bytes)
        var messages: [EventStreamMessage] = []
        var offset = 0
        while buffer.count - offset >= 12 {
            let total = Int(Self.uint32(buffer, offset))
            let headersLength = Int(Self.uint32(buffer, offset + 4))
            guard total >= 16 + headersLength, total <= maxMessageSize else {
                throw InvalidFrame(description: "event-stream frame has an impossible length \(total)")
            }
            guard CRC32.checksum(buffer[offset..<(offset + 8)]) == Self.uint32(buffer, offset + 8) else {
                throw InvalidFrame(description: "event-stream prelude CRC mismatch")
            }
            guard buffer.count - offset >= total else { break }
            let frame = buffer[offset..<(offset + total)]
            guard CRC32.checksum(frame.dropLast(4)) == Self.uint32(buffer, offset + total - 4) else {
                throw InvalidFrame(description: "event-stream message CRC mismatch")
            }
            let headersStart = offset + 12
            let headers = try Self.headers(Array(buffer[headersStart..<(headersStart + headersLength)]))
            let payload = Array(buffer[(headersStart + headersLength)..<(offset + total - 4)])
            messages.append(EventStreamMessage(headers: headers, payload: payload))
            offset += total
        }
        buffer.removeFirst(offset)
        return messages
    }

    /// Whether bytes of an incomplete frame remain.
    public var hasPartialFrame: Bool { !buffer.isEmpty }

    static func uint32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// Header values: only string (7) headers matter here; other types are skipped by their sizes.
    static func headers(_ bytes: [UInt8]) throws -> [String: String] {
        var headers: [String: String] = [:]
        var index = 0
        func need(_ count: Int) throws {
            guard index + count <= bytes.count else { throw InvalidFrame(description: "truncated event-stream header") }
        }
        while index < bytes.count {
            try need(1)
            let nameLength = Int(bytes[index])
            index += 1
            try need(nameLength + 1)
            let name = String(decoding: bytes[index..<(index + nameLength)], as: UTF8.self)
            index += nameLength
            let type = bytes[index]
            index += 1
            switch type {
            case 0, 1: break  // true, false
            case 2: try need(1); index += 1
            case 3: try need(2); index += 2
            case 4: try need(4); index += 4
            case 5, 8: try need(8); index += 8
            case 9: try need(16); index += 16
            case 6, 7:
                try need(2)
                let length = Int(bytes[index]) << 8 | Int(bytes[index + 1])
                index += 2
                try need(length)
                if type == 7 { headers[name] = String(decoding: bytes[index..<(index + length)], as: UTF8.self) }
                index += length
            default:
                throw InvalidFrame(description: "unknown event-stream header type \(type)")
            }
        }
        return headers
    }

    /// Builds a frame (for tests and mocks).
    public static func encode(headers: [(String, String)], payload: [UInt8]) -> [UInt8] {
        var headerBytes: [UInt8] = []
        for (name, value) in headers {
            headerBytes.append(UInt8(name.utf8.count))
            headerBytes += Array(name.utf8)
            headerBytes.append(7)
            let valueBytes = Array(value.utf8)
            headerBytes += [UInt8(valueBytes.count >> 8), UInt8(valueBytes.count & 0xFF)]
            headerBytes += valueBytes
        }
        let total = 16 + headerBytes.count + payload.count
        func bigEndian(_ value: UInt32) -> [UInt8] {
            [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        }
        var frame = bigEndian(UInt32(total)) + bigEndian(UInt32(headerBytes.count))
        frame += bigEndian(CRC32.checksum(frame))
        frame += headerBytes + payload
        frame += bigEndian(CRC32.checksum(frame))
        return frame
    }
}

/// CRC-32 (IEEE 802.3, the polynomial zlib uses), as the event-stream framing specifies.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
