import ChronicleCore
import Foundation
import Logging

/// The server's loggers: level from `CHRONICLE_LOG` (or `log_level` in the configuration), format from
/// `CHRONICLE_LOG_FORMAT` (`text`, the default, or `json`: one object per line for log pipelines).
public enum ServerLogging {
    public static func makeLogger(label: String, environment: [String: String], configLevel: String?) -> Logger {
        let json = environment["CHRONICLE_LOG_FORMAT"]?.lowercased() == "json"
        var logger = json
            ? Logger(label: label, factory: { JSONLogHandler(label: $0) })
            : Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
        let level = (environment["CHRONICLE_LOG"] ?? configLevel).flatMap { Logger.Level(rawValue: $0.lowercased()) }
        logger.logLevel = level ?? .info
        return logger
    }
}

/// Writes one JSON object per line to standard error: `time`, `level`, `label`, `message` and the metadata.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: JSONValue] = [
            "time": .string(RFC3339.format(Date())),
            "level": .string(event.level.rawValue),
            "label": .string(label),
            "message": .string(event.message.description),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for (key, value) in merged { object[key] = Self.json(value) }
        guard var line = try? JSONCoding.encode(JSONValue.object(object)) else { return }
        line.append(UInt8(ascii: "\n"))
        // One write(2) per line, so that lines from concurrent tasks never interleave.
        line.withUnsafeBytes { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }

    static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let value): return .string(value.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let members): return .object(members.mapValues(json))
        }
    }
}
