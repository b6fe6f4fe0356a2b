import ChronicleCore
import Foundation

/// What a chat request may ask of the gateway beyond a model: URL overrides, its own provider keys,
/// and how many messages it may carry.
struct RequestPolicy: Sendable {
    var overrideURL = OverrideURLPolicy(allowList: [])
    var allowClientProviderKeys = true
    var maxMessages = 10_000

    init(settings: SecuritySettings) {
        overrideURL = OverrideURLPolicy(allowList: settings.overrideURLAllowList)
        allowClientProviderKeys = settings.allowClientProviderKeys
        maxMessages = settings.limits.maxMessages
    }

    init() {}

    func check(_ options: inout RequestOptions, messageCount: Int) throws(APIError) {
        if messageCount > maxMessages {
            throw APIError(status: 413, kind: "too_many_messages",
                           message: "The request has \(messageCount) messages, over the limit of \(maxMessages)")
        }
        if let url = options.overrideURL, !overrideURL.allows(url) {
            throw APIError(
                status: 403, kind: "override_url_not_allowed",
                message: overrideURL.isEmpty
                    ? "override_url is disabled on this gateway"
                    : "override_url is not in this gateway's allow-list")
        }
        if !allowClientProviderKeys, options.apiKey != nil || options.models.contains(where: { $0.apiKey != nil }) {
            throw APIError(status: 403, kind: "client_provider_keys_disabled",
                           message: "This gateway does not accept provider keys from clients")
        }
    }
}

/// The URL prefixes an `override_url` may point at. A URL matches an entry when scheme, host and port are
/// the same and its path continues the entry's path at a segment boundary; URLs with credentials or
/// dot segments never match.
struct OverrideURLPolicy: Sendable {
    struct Entry: Sendable {
        var scheme: String
        var host: String
        var port: Int
        var path: String
    }

    let entries: [Entry]

    init(allowList: [String]) {
        entries = allowList.compactMap(Self.parse)
    }

    var isEmpty: Bool { entries.isEmpty }

    static func parse(_ text: String) -> Entry? {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host?.lowercased(), !host.isEmpty,
              components.user == nil, components.password == nil
        else { return nil }
        let path = components.percentEncodedPath
        let lowered = path.lowercased()
        if lowered.contains("%2e") || lowered.contains("%2f") { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.contains(where: { $0 == "." || $0 == ".." }) { return nil }
        return Entry(scheme: scheme, host: host, port: components.port ?? (scheme == "https" ? 443 : 80), path: path)
    }

    func allows(_ url: String) -> Bool {
        guard let candidate = Self.parse(url) else { return false }
        return entries.contains { entry in
            guard entry.scheme == candidate.scheme, entry.host == candidate.host, entry.port == candidate.port else {
                return false
            }
            let prefix = entry.path.hasSuffix("/") ? String(entry.path.dropLast()) : entry.path
            return candidate.path == prefix || candidate.path.hasPrefix(prefix + "/") || prefix.isEmpty
        }
    }
}
