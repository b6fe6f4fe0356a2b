import ChronicleCore
import ChronicleTesting
import Foundation

/// The recorded provider traffic in `Tests/Fixtures/providers`.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/providers")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    static func json(_ name: String) throws -> JSONValue {
        try JSONCoding.decode(JSONValue.self, from: Array(text(name).utf8))
    }

    static func request(_ name: String) throws -> ChatRequest {
        try JSONCoding.decode(ChatRequest.self, from: Array(text(name).utf8))
    }
}

func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try JSONCoding.decode(type, from: Array(json.utf8))
}

func encodeToJSON(_ value: some Encodable) throws -> JSONValue {
    try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(value))
}
