import Foundation

/// Appends little-endian values to a byte array: the primitives of the journal's record encoding.
struct BinaryWriter {
    var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func put(_ value: UInt8) { bytes.append(value) }

    mutating func put(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func put(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func put(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func put(_ value: Int64) { put(UInt64(bitPattern: value)) }

    mutating func put(_ value: Int) { put(Int64(value)) }

    mutating func put(_ value: Double) { put(value.bitPattern) }

    mutating func put(_ value: Date) { put(value.timeIntervalSinceReferenceDate) }

    mutating func put(_ value: UUID) {
        withUnsafeBytes(of: value.uuid) { bytes.append(contentsOf: $0) }
    }

    mutating func put(_ value: Duration) {
        let (seconds, attoseconds) = value.components
        put(seconds)
        put(attoseconds)
    }

    /// A length-prefixed run of bytes, copied as they are.
    mutating func put(bytes value: some Collection<UInt8>) {
        put(UInt32(truncatingIfNeeded: value.count))
        bytes.append(contentsOf: value)
    }

    mutating func put(_ value: String) {
        var value = value
        value.withUTF8 { put(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// A presence byte, then the value if there is one.
    mutating func putOptional<T>(_ value: T?, _ write: (inout BinaryWriter, T) -> Void) {
        guard let value else { return put(UInt8(0)) }
        put(UInt8(1))
        write(&self, value)
    }

    mutating func put(_ value: String?) { putOptional(value) { $0.put($1) } }
    mutating func put(_ value: UUID?) { putOptional(value) { $0.put($1) } }
    mutating func put(_ value: Int64?) { putOptional(value) { $0.put($1) } }
    mutating func put(_ value: Int?) { putOptional(value) { $0.put($1) } }
    mutating func put(_ value: Duration?) { putOptional(value) { $0.put($1) } }

    /// Reserves a length to be filled in by ``patchLength(at:)`` once what follows it is written.
    mutating func reserveLength() -> Int {
        defer { put(UInt32(0)) }
        return bytes.count
    }

    /// Writes the count of bytes appended since `position` (a reserved length) into it.
    mutating func patchLength(at position: Int) {
        let length = UInt32(truncatingIfNeeded: bytes.count - position - 4)
        withUnsafeBytes(of: length.littleEndian) { raw in
            for index in 0..<4 { bytes[position + index] = raw[index] }
        }
    }
}

/// Reads what ``BinaryWriter`` wrote; every read checks the bounds, so bytes that are not a record make it
/// throw, never crash or read past the end.
struct BinaryReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        offset = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    struct Truncated: Error, CustomStringConvertible {
        var description: String { "a journal record ends early or holds an unknown value" }
    }

    var isAtEnd: Bool { offset >= end }

    mutating func take(_ count: Int) throws -> Range<Int> {
        guard count >= 0, end - offset >= count else { throw Truncated() }
        defer { offset += count }
        return offset..<offset + count
    }

    mutating func uint8() throws -> UInt8 { bytes[try take(1).lowerBound] }

    mutating func bool() throws -> Bool {
        switch try uint8() {
        case 0: return false
        case 1: return true
        default: throw Truncated()
        }
    }

    mutating func uint32() throws -> UInt32 {
        let range = try take(4)
        var value: UInt32 = 0
        for index in range.reversed() { value = value << 8 | UInt32(bytes[index]) }
        return value
    }

    mutating func uint64() throws -> UInt64 {
        let range = try take(8)
        var value: UInt64 = 0
        for index in range.reversed() { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    mutating func int64() throws -> Int64 { Int64(bitPattern: try uint64()) }

    mutating func int() throws -> Int {
        guard let value = Int(exactly: try int64()) else { throw Truncated() }
        return value
    }

    mutating func double() throws -> Double { Double(bitPattern: try uint64()) }

    mutating func date() throws -> Date { Date(timeIntervalSinceReferenceDate: try double()) }

    mutating func uuid() throws -> UUID {
        let range = try take(16)
        let b = bytes
        let i = range.lowerBound
        return UUID(uuid: (b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7],
                           b[i + 8], b[i + 9], b[i + 10], b[i + 11], b[i + 12], b[i + 13], b[i + 14], b[i + 15]))
    }

    mutating func duration() throws -> Duration {
        let seconds = try int64()
        let attoseconds = try int64()
        return Duration(secondsComponent: seconds, attosecondsComponent: attoseconds)
    }

    /// The range of a length-prefixed run of bytes.
    mutating func byteRange() throws -> Range<Int> {
        try take(Int(try uint32()))
    }

    mutating func byteArray() throws -> [UInt8] { Array(bytes[try byteRange()]) }

    mutating func string() throws -> String { String(decoding: bytes[try byteRange()], as: UTF8.self) }

    mutating func optional<T>(_ read: (inout BinaryReader) throws -> T) throws -> T? {
        try bool() ? try read(&self) : nil
    }

    mutating func optionalString() throws -> String? { try optional { try $0.string() } }
    mutating func optionalUUID() throws -> UUID? { try optional { try $0.uuid() } }
    mutating func optionalInt() throws -> Int? { try optional { try $0.int() } }
    mutating func optionalDuration() throws -> Duration? { try optional { try $0.duration() } }
}
