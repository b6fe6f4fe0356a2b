/// Where an upstream URL points, parsed once and cached per event loop: the pool key (scheme, host,
/// port), the request target and the `host` header.
struct UpstreamEndpoint: Sendable {
    struct Key: Hashable, Sendable {
        var tls: Bool
        var host: String
        var port: Int
    }

    let key: Key
    /// The path and query sent in the request line (`/` when the URL has none).
    let target: String
    /// The `host` header: the host, with the port unless it is the scheme's default.
    let hostHeader: String

    /// Parses an absolute `http://` or `https://` URL; `nil` for anything else (other schemes, user-info,
    /// an empty host, a bad port).
    init?(url: String) {
        let tls: Bool
        let rest: Substring
        if let range = url.range(of: "://") {
            switch url[..<range.lowerBound].lowercased() {
            case "http": tls = false
            case "https": tls = true
            default: return nil
            }
            rest = url[range.upperBound...]
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        // Credentials in the URL are not sent by this transport; refuse rather than drop them silently.
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var target = String(rest[authorityEnd...])
        if let fragment = target.firstIndex(of: "#") { target = String(target[..<fragment]) }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else { return nil }
        let defaultPort = tls ? 443 : 80
        var port = defaultPort
        if let portText, !portText.isEmpty {
            guard let parsed = Int(portText), (1...65535).contains(parsed) else { return nil }
            port = parsed
        }
        if host.hasSuffix(".") { host = host.dropLast() }
        let hostString = host.lowercased()
        key = Key(tls: tls, host: hostString, port: port)
        self.target = target
        let shownHost = hostString.contains(":") ? "[\(hostString)]" : hostString
        hostHeader = port == defaultPort ? shownHost : "\(shownHost):\(port)"
    }

    /// Whether the host is an IP address literal (never sent as a TLS server name).
    var hostIsIPAddress: Bool {
        if key.host.contains(":") { return true }
        let parts = key.host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in UInt8(part) != nil }
    }
}
