/// Deciding whether an upstream's JSON can be relayed to the client as it came, instead of being decoded
/// and encoded again: the gateway still decodes it (for the record and for usage), but skips the encoding.
enum WireJSON {
    private static let requiredKeys = [#""id""#, #""object""#, #""created""#, #""model""#].map { Array($0.utf8) }
    private static let metaKey = Array(#""meta""#.utf8)

    /// Whether `bytes`, a response or chunk object that decoded cleanly, has the members clients' SDKs
    /// require and no `meta` member of its own (the gateway adds its own `meta`; re-encoding drops an
    /// upstream's). A match inside a string value only makes the check more cautious.
    static func isForwardable(_ bytes: some Collection<UInt8>) -> Bool {
        requiredKeys.allSatisfy { contains(bytes, $0) } && !contains(bytes, metaKey)
    }

    private static func contains(_ bytes: some Collection<UInt8>, _ pattern: [UInt8]) -> Bool {
        guard let first = pattern.first else { return true }
        var index = bytes.startIndex
        while let start = bytes[index...].firstIndex(of: first) {
            if bytes[start...].starts(with: pattern) { return true }
            index = bytes.index(after: start)
        }
        return false
    }
}

/// A stored property that takes no part in its owner's synthesized equality and hash: the upstream's
/// bytes kept beside the value decoded from them.
@propertyWrapper
public struct NotCompared<Value: Sendable>: Sendable, Hashable {
    public var wrappedValue: Value

    public init(wrappedValue: Value) {
        self.wrappedValue = wrappedValue
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { true }
    public func hash(into hasher: inout Hasher) {}
}
