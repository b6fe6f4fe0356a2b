#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The limits on fetching an image URL for a provider that needs the bytes (Bedrock, Ollama).
///
/// The gateway fetches on the client's behalf, from inside the network it runs in, so a URL must not reach
/// what the client itself could not: loopback, private, link-local and cloud-metadata addresses are refused
/// unless allow-listed.
public struct ImageFetchPolicy: Sendable, Hashable {
    /// The largest image accepted, in bytes (default 20 MB).
    public var maxBytes: Int
    /// How long the whole fetch, redirects included, may take (default 10 s).
    public var timeout: Duration
    /// How many redirects are followed (default 3).
    public var maxRedirects: Int
    /// Host names, IP addresses or CIDR ranges (`10.0.0.0/8`) that may be fetched although restricted.
    public var allowList: [String]

    public init(maxBytes: Int = 20 * 1024 * 1024, timeout: Duration = .seconds(10), maxRedirects: Int = 3,
                allowList: [String] = []) {
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.maxRedirects = maxRedirects
        self.allowList = allowList
    }

    /// Whether `host` is allow-listed by name.
    func allowsHost(_ host: String) -> Bool {
        allowList.contains { $0.lowercased() == host.lowercased() }
    }

    /// Whether `address` may be connected to: not restricted, or allow-listed.
    func allows(_ address: IPAddress) -> Bool {
        !address.isRestricted || allowList.contains { IPRange($0)?.contains(address) == true }
    }
}

/// An IPv4 or IPv6 address as bytes.
struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6).
    let bytes: [UInt8]

    init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses a textual address (`127.0.0.1`, `::1`, `[::1]`).
    init?(_ text: String) {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var raw = in6_addr()
        withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes) }
        guard inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) address stands for.
    var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        let nat64 = bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...]
        return mapped || nat64 ? IPAddress(bytes: Array(bytes[12...])) : nil
    }

    /// Loopback, private, shared (carrier NAT), link-local (where cloud metadata lives), unspecified,
    /// multicast and reserved addresses: none is a public web server.
    var isRestricted: Bool {
        if let v4 = embeddedIPv4 { return v4.isRestricted }
        return Self.restrictedRanges.contains { $0.contains(self) }
    }

    static let restrictedRanges: [IPRange] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
    ].compactMap(IPRange.init)
}

/// An address range in CIDR notation; a bare address is a range of one.
struct IPRange: Sendable, Hashable {
    let base: IPAddress
    let prefixLength: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let base = IPAddress(first) else { return nil }
        let bits = base.bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = bits
        }
        self.base = base
    }

    func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == base.bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address.bytes, base.bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }
}
