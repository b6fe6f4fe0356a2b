/// An arbitrary JSON value.
///
/// Used wherever the gateway must carry JSON it does not interpret (unknown request fields, tool schemas,
/// provider error bodies) so that it reaches its destination unchanged. Integers and floating-point numbers
/// are kept apart so that large integers such as seeds survive a round trip exactly.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue {
    /// The member `key` of an object, or `nil` for other values and missing keys.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .integer(let value): return Int(exactly: value)
        case .double(let value): return Int(exactly: value)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A coding key for any string, used to read and write the fields a type does not model.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { self.stringValue = string }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

extension KeyedDecodingContainer where Key == AnyCodingKey {
    /// Every member whose name is not in `known`, so that unknown fields are carried, not dropped.
    func decodeUnknownFields(excluding known: Set<String>) throws -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for key in self.allKeys where !known.contains(key.stringValue) {
            fields[key.stringValue] = try self.decode(JSONValue.self, forKey: key)
        }
        return fields
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        try self.decodeIfPresent(type, forKey: AnyCodingKey(key))
    }

    func decode<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
        try self.decode(type, forKey: AnyCodingKey(key))
    }

    /// A whole number in `range`, with an error naming the field otherwise. Decoding straight into an
    /// unsigned type would report a negative number as malformed JSON.
    func decodeIfPresent<T: FixedWidthInteger>(_ type: T.Type, _ key: String, in range: ClosedRange<Int64>) throws -> T? {
        guard let value = try self.decodeIfPresent(Int64.self, forKey: AnyCodingKey(key)) else { return nil }
        guard range.contains(value), let converted = T(exactly: value) else {
            throw DecodingError.dataCorruptedError(
                forKey: AnyCodingKey(key), in: self,
                debugDescription: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return converted
    }
}

extension KeyedEncodingContainer where Key == AnyCodingKey {
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, _ key: String) throws {
        try self.encodeIfPresent(value, forKey: AnyCodingKey(key))
    }

    mutating func encode<T: Encodable>(_ value: T, _ key: String) throws {
        try self.encode(value, forKey: AnyCodingKey(key))
    }

    /// Writes carried unknown fields; a modelled field of the same name, written earlier, wins.
    mutating func encodeUnknownFields(_ fields: [String: JSONValue], excluding known: Set<String>) throws {
        for (key, value) in fields where !known.contains(key) {
            try self.encode(value, forKey: AnyCodingKey(key))
        }
    }
}
