import Foundation

/// Where the log database is: a SQLite file or a PostgreSQL server.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// Reads a path, a `sqlite://` URL, or a `postgres://` / `postgresql://` URL.
    public init(_ value: String) throws {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw StorageError("The database location is empty") }
        if trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") {
            self = .postgres(url: trimmed)
        } else if trimmed.hasPrefix("sqlite://") {
            let path = String(trimmed.dropFirst("sqlite://".count))
            self = .sqlite(path: Self.stripQuery(path))
        } else if trimmed.hasPrefix("sqlite:") {
            self = .sqlite(path: Self.stripQuery(String(trimmed.dropFirst("sqlite:".count))))
        } else if trimmed.contains("://") {
            throw StorageError("Unsupported database URL \"\(Self.redacted(trimmed))\": use a path, sqlite:// or postgres://")
        } else {
            self = .sqlite(path: trimmed)
        }
    }

    private static func stripQuery(_ path: String) -> String {
        path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
    }

    /// The location without any password, for logs.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url): return Self.redacted(url)
        }
    }

    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "<database url>"
    }
}
