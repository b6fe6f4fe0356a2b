/// A one-pass JSON validator and tokenizer over raw bytes, for the request path: it checks that a document
/// is well-formed JSON (RFC 8259, UTF-8) and hands out byte ranges instead of building values, so that
/// the gateway can read the few members it acts on and forward everything else untouched.
///
/// It allocates nothing of its own: callers walk objects and arrays with ``object(depth:member:)`` and
/// ``array(depth:element:)``, in the same single pass that validates them, and decode only the strings
/// they need.
struct JSONScanner {
    /// Why a document was not accepted.
    struct Malformed: Error, Equatable {
        /// Byte offset of the problem.
        var offset: Int
    }

    /// The kind of a value, from its first byte.
    enum Kind: Equatable {
        case object, array, string, number, bool, null
    }

    /// One scanned value: its kind and where it lies in the document.
    struct Value: Equatable {
        var kind: Kind
        var range: Range<Int>
        /// For numbers: an integer literal (no fraction, no exponent).
        var isInteger: Bool = false
        /// For strings: the string contains escape sequences.
        var hasEscapes: Bool = false
    }

    /// The deepest nesting accepted; deeper documents are left to the full decoder.
    static let maxDepth = 512

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: Whole values

    /// Scans the single value that makes up the document, with nothing but white space around it.
    mutating func document() throws(Malformed) -> Value {
        skipWhitespace()
        let value = try self.value(depth: 0)
        skipWhitespace()
        guard position == bytes.count else { throw Malformed(offset: position) }
        return value
    }

    /// Scans one value starting at the current position (after white space) and returns it.
    mutating func value(depth: Int) throws(Malformed) -> Value {
        guard depth < Self.maxDepth, position < bytes.count else { throw Malformed(offset: position) }
        let start = position
        switch bytes[position] {
        case UInt8(ascii: "{"):
            return try object(depth: depth) { (scanner: inout JSONScanner, _) throws(Malformed) in
                _ = try scanner.value(depth: depth + 1)
            }
        case UInt8(ascii: "["):
            return try array(depth: depth) { (scanner: inout JSONScanner, _) throws(Malformed) in
                _ = try scanner.value(depth: depth + 1)
            }
        case UInt8(ascii: "\""):
            return try string()
        case UInt8(ascii: "t"):
            try literal("true")
            return Value(kind: .bool, range: start..<position)
        case UInt8(ascii: "f"):
            try literal("false")
            return Value(kind: .bool, range: start..<position)
        case UInt8(ascii: "n"):
            try literal("null")
            return Value(kind: .null, range: start..<position)
        default:
            return try number()
        }
    }

    // MARK: Walking containers

    /// Scans the object at the current position in one pass, calling `member` for each member with the
    /// scanner placed on the member's value (white space skipped). `member` must scan that value, with
    /// ``value(depth:)`` or a nested walk at `depth + 1`; it may throw to stop the scan.
    mutating func object(depth: Int, member: (inout JSONScanner, _ key: Value) throws(Malformed) -> Void)
        throws(Malformed) -> Value
    {
        guard depth < Self.maxDepth, peek(UInt8(ascii: "{")) else { throw Malformed(offset: position) }
        let start = position
        position += 1
        skipWhitespace()
        if peek(UInt8(ascii: "}")) {
            position += 1
            return Value(kind: .object, range: start..<position)
        }
        while true {
            skipWhitespace()
            guard peek(UInt8(ascii: "\"")) else { throw Malformed(offset: position) }
            let key = try string()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            try member(&self, key)
            skipWhitespace()
            if peek(UInt8(ascii: ",")) { position += 1; continue }
            try expect(UInt8(ascii: "}"))
            return Value(kind: .object, range: start..<position)
        }
    }

    /// Scans the array at the current position in one pass, calling `element` for each element (with its
    /// index) with the scanner placed on it; `element` must scan it, as for ``object(depth:member:)``.
    mutating func array(depth: Int, element: (inout JSONScanner, _ index: Int) throws(Malformed) -> Void)
        throws(Malformed) -> Value
    {
        guard depth < Self.maxDepth, peek(UInt8(ascii: "[")) else { throw Malformed(offset: position) }
        let start = position
        position += 1
        skipWhitespace()
        if peek(UInt8(ascii: "]")) {
            position += 1
            return Value(kind: .array, range: start..<position)
        }
        var index = 0
        while true {
            skipWhitespace()
            try element(&self, index)
            index += 1
            skipWhitespace()
            if peek(UInt8(ascii: ",")) { position += 1; continue }
            try expect(UInt8(ascii: "]"))
            return Value(kind: .array, range: start..<position)
        }
    }

    /// The kind of the value at the current position, from its first byte, without scanning it.
    func upcomingKind() -> Kind? {
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    // MARK: Reading scanned values

    /// Whether the string value at `key` (quotes included, no escapes) spells `name`.
    func stringEquals(_ key: Value, _ name: StaticString) -> Bool {
        guard !key.hasEscapes, key.range.count == name.utf8CodeUnitCount + 2 else { return false }
        let start = key.range.lowerBound + 1
        return name.withUTF8Buffer { name in
            for offset in 0..<name.count where bytes[start + offset] != name[offset] { return false }
            return true
        }
    }

    /// The text of a scanned string value, escapes resolved.
    func stringValue(_ value: Value) -> String {
        let inner = (value.range.lowerBound + 1)..<(value.range.upperBound - 1)
        guard value.hasEscapes else { return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[inner]), as: UTF8.self) }
        var result: [UInt8] = []
        result.reserveCapacity(inner.count)
        var index = inner.lowerBound
        while index < inner.upperBound {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                result.append(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = hex4(at: index)
                index += 4
                // A high surrogate followed by an escaped low surrogate is one scalar.
                if (0xD800..<0xDC00).contains(scalar), index + 6 <= inner.upperBound,
                   bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    let low = hex4(at: index + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                result.append(contentsOf: String(unicode).utf8)
            default: result.append(escape)  // \" \\ \/
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The integer value of an integer literal, or `nil` when it does not fit in 64 bits.
    func integerValue(_ value: Value) -> Int64? {
        guard value.kind == .number, value.isInteger else { return nil }
        var index = value.range.lowerBound
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        var result: Int64 = 0
        while index < value.range.upperBound {
            let digit = Int64(bytes[index] &- UInt8(ascii: "0"))
            let (shifted, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            if overflow1 || overflow2 { return nil }
            result = added
            index += 1
        }
        return result
    }

    /// Whether the value is the literal `true`.
    func isTrue(_ value: Value) -> Bool {
        value.kind == .bool && bytes[value.range.lowerBound] == UInt8(ascii: "t")
    }

    // MARK: Lexing

    private func hex4(at index: Int) -> UInt32 {
        var result: UInt32 = 0
        for offset in 0..<4 {
            result = result << 4 | UInt32(Self.hexValue(bytes[index + offset]) ?? 0)
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    func peek(_ byte: UInt8) -> Bool {
        position < bytes.count && bytes[position] == byte
    }

    private mutating func expect(_ byte: UInt8) throws(Malformed) {
        guard peek(byte) else { throw Malformed(offset: position) }
        position += 1
    }

    private mutating func literal(_ word: StaticString) throws(Malformed) {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw Malformed(offset: position) }
        let matches = word.withUTF8Buffer { word in
            (0..<count).allSatisfy { bytes[position + $0] == word[$0] }
        }
        guard matches else { throw Malformed(offset: position) }
        position += count
    }

    /// A string: control characters refused, escapes checked, UTF-8 validated.
    private mutating func string() throws(Malformed) -> Value {
        let start = position
        position += 1  // the opening quote
        var hasEscapes = false
        while position < bytes.count {
            skipPlainASCII()
            guard position < bytes.count else { break }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return Value(kind: .string, range: start..<position, hasEscapes: hasEscapes)
            case UInt8(ascii: "\\"):
                hasEscapes = true
                guard position + 1 < bytes.count else { throw Malformed(offset: position) }
                switch bytes[position + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                case UInt8(ascii: "u"):
                    guard position + 6 <= bytes.count,
                          (2..<6).allSatisfy({ Self.hexValue(bytes[position + $0]) != nil })
                    else { throw Malformed(offset: position) }
                    position += 6
                default:
                    throw Malformed(offset: position)
                }
            case 0..<0x20:
                throw Malformed(offset: position)
            case 0x20..<0x80:
                position += 1
            default:
                try multiByteScalar()
            }
        }
        throw Malformed(offset: start)
    }

    /// Skips string bytes that need no attention (printable ASCII other than `"` and `\\`) eight at a
    /// time: prompts are long runs of plain text, and a byte-by-byte loop dominated the scan of large ones.
    private mutating func skipPlainASCII() {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while position + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            // A byte below 0x20, or with its high bit set, or equal to `"` or `\`, stops the skip.
            let control = (word &- ones &* 0x20) & ~word
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let special = control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | word
            if special & highs != 0 { return }
            position += 8
        }
    }

    /// One UTF-8 encoded scalar of two to four bytes (no overlongs, no surrogates, at most U+10FFFF).
    private mutating func multiByteScalar() throws(Malformed) {
        let lead = bytes[position]
        let count: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; upper = 0x9F
        case 0xF0: count = 4; lower = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; upper = 0x8F
        default: throw Malformed(offset: position)
        }
        guard position + count <= bytes.count else { throw Malformed(offset: position) }
        let second = bytes[position + 1]
        guard second >= lower, second <= upper else { throw Malformed(offset: position) }
        for offset in 2..<max(2, count) where bytes[position + offset] & 0xC0 != 0x80 {
            throw Malformed(offset: position)
        }
        position += count
    }

    private mutating func number() throws(Malformed) -> Value {
        let start = position
        var isInteger = true
        if peek(UInt8(ascii: "-")) { position += 1 }
        guard position < bytes.count else { throw Malformed(offset: position) }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else if isDigit(bytes[position]) {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        } else {
            throw Malformed(offset: position)
        }
        if peek(UInt8(ascii: ".")) {
            isInteger = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw Malformed(offset: position) }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            isInteger = false
            position += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw Malformed(offset: position) }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        return Value(kind: .number, range: start..<position, isInteger: isInteger)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}

extension JSONScanner {
    /// The scanned value at `value` as a ``JSONValue``, read the way the full decoder reads one: a number
    /// that is exactly a 64-bit integer is an integer, any other number a double.
    func jsonValue(_ value: Value) -> JSONValue? {
        var walker = JSONScanner(bytes)
        walker.position = value.range.lowerBound
        return try? walker.readJSONValue(depth: 0)
    }

    private mutating func readJSONValue(depth: Int) throws(Malformed) -> JSONValue {
        switch upcomingKind() {
        case .object?:
            var object: [String: JSONValue] = [:]
            _ = try self.object(depth: depth) { (scanner: inout JSONScanner, key) throws(Malformed) in
                object[scanner.stringValue(key)] = try scanner.readJSONValue(depth: depth + 1)
            }
            return .object(object)
        case .array?:
            var array: [JSONValue] = []
            _ = try self.array(depth: depth) { (scanner: inout JSONScanner, _) throws(Malformed) in
                array.append(try scanner.readJSONValue(depth: depth + 1))
            }
            return .array(array)
        default:
            let value = try self.value(depth: depth)
            switch value.kind {
            case .string: return .string(stringValue(value))
            case .bool: return .bool(isTrue(value))
            case .null: return .null
            case .number:
                if let integer = integerValue(value) { return .integer(integer) }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value.range]), as: UTF8.self)
                guard let double = Double(text), double.isFinite else { throw Malformed(offset: value.range.lowerBound) }
                if double == double.rounded(), let integer = Int64(exactly: double) { return .integer(integer) }
                return .double(double)
            case .object, .array: throw Malformed(offset: value.range.lowerBound)
            }
        }
    }
}
