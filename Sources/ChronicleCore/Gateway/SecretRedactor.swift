import Foundation

/// Removes known secrets from text that leaves the gateway: error messages and provider error bodies,
/// which end up in responses, logs, spans and the database. Upstreams sometimes echo the key they were
/// sent ("Incorrect API key provided: sk-…"), so this is the last line of defence, not the first.
public struct SecretRedactor: Sendable {
    public static let placeholder = "[REDACTED]"
    /// Shorter strings are not treated as secrets: replacing them would mangle ordinary text.
    static let minimumLength = 8

    private var secrets: [String]

    public init(secrets: some Sequence<String> = []) {
        self.secrets = []
        add(secrets)
    }

    /// The values of environment variables that look like credentials (`*_KEY`, `*_TOKEN`, `*_SECRET`,
    /// `*PASSWORD*`), which is where provider keys come from.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> SecretRedactor
    {
        let markers = ["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"]
        let values = environment.compactMap { name, value -> String? in
            let upper = name.uppercased()
            return markers.contains(where: { upper.contains($0) }) ? value : nil
        }
        return SecretRedactor(secrets: values)
    }

    public mutating func add(_ newSecrets: some Sequence<String>) {
        for secret in newSecrets {
            let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.count >= Self.minimumLength, !secrets.contains(trimmed) { secrets.append(trimmed) }
        }
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort { $0.count > $1.count }
    }

    public var isEmpty: Bool { secrets.isEmpty }

    public func redact(_ text: String, also extra: String? = nil) -> String {
        var result = text
        if let extra, extra.count >= Self.minimumLength, result.contains(extra) {
            result = result.replacingOccurrences(of: extra, with: Self.placeholder)
        }
        for secret in secrets where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.placeholder)
        }
        return result
    }

    public func redact(_ value: JSONValue, also extra: String? = nil) -> JSONValue {
        switch value {
        case .string(let text): return .string(redact(text, also: extra))
        case .array(let items): return .array(items.map { redact($0, also: extra) })
        case .object(let members): return .object(members.mapValues { redact($0, also: extra) })
        default: return value
        }
    }

    /// The error with its message and body cleaned.
    public func redact(_ error: ProviderError, also extra: String? = nil) -> ProviderError {
        var copy = error
        copy.message = redact(error.message, also: extra)
        copy.body = error.body.map { redact($0, also: extra) }
        return copy
    }
}
