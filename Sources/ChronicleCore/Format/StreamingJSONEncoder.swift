import Foundation

/// A JSON encoder that writes straight into one byte array as `encode(to:)` calls arrive, instead of
/// building Foundation's intermediate value tree first: the gateway encodes on every call (the upstream
/// request, responses, stream events, log records), and this takes a fraction of the time.
///
/// Output matches ``JSONCoding``'s Foundation encoder in meaning (`withoutEscapingSlashes`, dates as
/// reference-date seconds); numbers may be spelled differently (`3.0` for `3`). Members are written in the
/// order `encode(to:)` gives them. What a one-pass writer cannot do (nested containers and super encoders
/// opened out of order, `Data`, `URL` or `Decimal` values that Foundation special-cases, a second
/// container of another kind on one encoder) makes it throw ``Unsupported``, and ``JSONCoding`` falls
/// back to Foundation.
struct StreamingJSONEncoder {
    struct Unsupported: Error {}

    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let output = JSONOutput()
        output.bytes.reserveCapacity(512)
        try output.encodeValue(value)
        if output.unsupported { throw Unsupported() }
        return output.bytes
    }
}

/// The byte array every container of one encoding writes to.
private final class JSONOutput {
    var bytes: [UInt8] = []
    /// Set by any operation the one-pass writer cannot honour; the result is then discarded.
    var unsupported = false
    private static let hexDigits = Array("0123456789abcdef".utf8)

    func encodeValue<T: Encodable>(_ value: T) throws {
        // Type comparisons, not dynamic casts: this runs for every value. Each bit cast is to `T` itself.
        if T.self == String.self {
            writeString(unsafeBitCast(value, to: String.self))
        } else if T.self == Bool.self {
            write(unsafeBitCast(value, to: Bool.self) ? "true" : "false")
        } else if T.self == Int.self {
            writeInteger(unsafeBitCast(value, to: Int.self))
        } else if T.self == Int64.self {
            writeInteger(unsafeBitCast(value, to: Int64.self))
        } else if T.self == Double.self {
            try writeDouble(unsafeBitCast(value, to: Double.self))
        } else if T.self == Data.self || T.self == URL.self || T.self == Decimal.self {
            // Foundation encodes these specially (base64, absolute string, decimal text).
            unsupported = true
        } else {
            let encoder = ValueEncoder(output: self)
            try value.encode(to: encoder)
            encoder.finish()
        }
    }

    func write(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    func writeInteger<I: BinaryInteger>(_ value: I) {
        bytes.append(contentsOf: String(value).utf8)
    }

    func writeDouble(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(value) is not valid in JSON"))
        }
        // Swift's shortest round-trip spelling is valid JSON for finite values ("1.5", "1e-05", "3.0").
        bytes.append(contentsOf: value.description.utf8)
    }

    func writeFloat(_ value: Float) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(value) is not valid in JSON"))
        }
        bytes.append(contentsOf: value.description.utf8)
    }

    func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < index { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index])) }
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): write("\\\"")
                case UInt8(ascii: "\\"): write("\\\\")
                case UInt8(ascii: "\n"): write("\\n")
                case UInt8(ascii: "\r"): write("\\r")
                case UInt8(ascii: "\t"): write("\\t")
                case 0x08: write("\\b")
                case 0x0C: write("\\f")
                default:
                    write("\\u00")
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0x0F)])
                }
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// The encoder one value's `encode(to:)` sees: it opens at most one container, of one kind.
private final class ValueEncoder: Encoder {
    enum State { case empty, object(members: Int), array(elements: Int), single(written: Bool) }

    let output: JSONOutput
    var state = State.empty
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(output: JSONOutput) {
        self.output = output
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        switch state {
        case .empty:
            output.bytes.append(UInt8(ascii: "{"))
            state = .object(members: 0)
        case .object:
            // Asking again continues the same object (how `meta` is added beside a value's own members).
            break
        case .array, .single:
            output.unsupported = true
        }
        return KeyedEncodingContainer(KeyedContainer<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        switch state {
        case .empty:
            output.bytes.append(UInt8(ascii: "["))
            state = .array(elements: 0)
        case .array:
            break
        case .object, .single:
            output.unsupported = true
        }
        return UnkeyedContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        if case .empty = state {
            state = .single(written: false)
        } else {
            output.unsupported = true
        }
        return SingleValueContainer(encoder: self)
    }

    /// Writes the separator before the next member and its key.
    func beginMember(_ key: some CodingKey) {
        guard case .object(let members) = state else {
            output.unsupported = true
            return
        }
        if members > 0 { output.bytes.append(UInt8(ascii: ",")) }
        state = .object(members: members + 1)
        output.writeString(key.stringValue)
        output.bytes.append(UInt8(ascii: ":"))
    }

    func beginElement() {
        guard case .array(let elements) = state else {
            output.unsupported = true
            return
        }
        if elements > 0 { output.bytes.append(UInt8(ascii: ",")) }
        state = .array(elements: elements + 1)
    }

    /// Closes the container; a value that opened none encodes as `{}`, as with Foundation.
    func finish() {
        switch state {
        case .empty: output.write("{}")
        case .object: output.bytes.append(UInt8(ascii: "}"))
        case .array: output.bytes.append(UInt8(ascii: "]"))
        case .single(let written): if !written { output.unsupported = true }
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { [] }
    var output: JSONOutput { encoder.output }

    mutating func encodeNil(forKey key: Key) throws {
        encoder.beginMember(key)
        output.write("null")
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        encoder.beginMember(key)
        output.write(value ? "true" : "false")
    }

    mutating func encode(_ value: String, forKey key: Key) throws {
        encoder.beginMember(key)
        output.writeString(value)
    }

    mutating func encode(_ value: Double, forKey key: Key) throws {
        encoder.beginMember(key)
        try output.writeDouble(value)
    }

    mutating func encode(_ value: Float, forKey key: Key) throws {
        encoder.beginMember(key)
        try output.writeFloat(value)
    }

    mutating func encode(_ value: Int, forKey key: Key) throws {
        encoder.beginMember(key)
        output.writeInteger(value)
    }

    mutating func encode(_ value: Int8, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { encoder.beginMember(key); output.writeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        encoder.beginMember(key)
        try output.encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        output.unsupported = true
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(encoder: encoder))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        output.unsupported = true
        return UnkeyedContainer(encoder: encoder)
    }

    mutating func superEncoder() -> any Encoder {
        output.unsupported = true
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        output.unsupported = true
        return encoder
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { [] }
    var count: Int {
        if case .array(let elements) = encoder.state { return elements }
        return 0
    }

    var output: JSONOutput { encoder.output }

    mutating func encodeNil() throws {
        encoder.beginElement()
        output.write("null")
    }

    mutating func encode(_ value: Bool) throws { encoder.beginElement(); output.write(value ? "true" : "false") }
    mutating func encode(_ value: String) throws { encoder.beginElement(); output.writeString(value) }
    mutating func encode(_ value: Double) throws { encoder.beginElement(); try output.writeDouble(value) }
    mutating func encode(_ value: Float) throws { encoder.beginElement(); try output.writeFloat(value) }
    mutating func encode(_ value: Int) throws { encoder.beginElement(); output.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { encoder.beginElement(); output.writeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.beginElement()
        try output.encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        output.unsupported = true
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(encoder: encoder))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        output.unsupported = true
        return self
    }

    mutating func superEncoder() -> any Encoder {
        output.unsupported = true
        return encoder
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { [] }
    var output: JSONOutput { encoder.output }

    /// A single-value container holds exactly one value.
    private func begin() {
        guard case .single(written: false) = encoder.state else {
            output.unsupported = true
            return
        }
        encoder.state = .single(written: true)
    }

    mutating func encodeNil() throws { begin(); output.write("null") }
    mutating func encode(_ value: Bool) throws { begin(); output.write(value ? "true" : "false") }
    mutating func encode(_ value: String) throws { begin(); output.writeString(value) }
    mutating func encode(_ value: Double) throws { begin(); try output.writeDouble(value) }
    mutating func encode(_ value: Float) throws { begin(); try output.writeFloat(value) }
    mutating func encode(_ value: Int) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: Int8) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: Int16) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: Int32) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: UInt8) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: UInt16) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: UInt32) throws { begin(); output.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { begin(); output.writeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        begin()
        try output.encodeValue(value)
    }
}
