@testable import ChronicleCore
import Foundation
import Testing

@Suite("Streaming JSON encoder")
struct StreamingJSONEncoderTests {
    /// What the streaming encoder writes means exactly what Foundation's encoder writes.
    func expectSameMeaning<T: Encodable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let streamed = try StreamingJSONEncoder.encode(value)
        let foundation = try JSONCoding.encoder.encode(value)
        let streamedValue = try JSONDecoder().decode(JSONValue.self, from: Data(streamed))
        let foundationValue = try JSONDecoder().decode(JSONValue.self, from: foundation)
        #expect(streamedValue == foundationValue, sourceLocation: sourceLocation)
    }

    /// Every recorded request, response and streamed chunk, through the gateway's own types.
    @Test func fixturesMatchFoundation() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.directory.path).sorted()
        var checked = 0
        for file in files {
            let text = try Fixtures.text(file)
            if file.hasSuffix("_streaming.txt") {
                var parser = ServerSentEventParser()
                for event in try parser.parse(Array(text.utf8)) + parser.finish() {
                    guard let value = try? JSONCoding.decode(JSONValue.self, from: event.data) else { continue }
                    try expectSameMeaning(value)
                    if let chunk = try? JSONCoding.decode(ChatChunk.self, from: event.data) { try expectSameMeaning(chunk) }
                    checked += 1
                }
            } else if file.hasSuffix(".json") {
                let bytes = Array(text.utf8)
                try expectSameMeaning(try JSONCoding.decode(JSONValue.self, from: bytes))
                if file.contains("response") {
                    if let response = try? JSONCoding.decode(ChatResponse.self, from: bytes) { try expectSameMeaning(response) }
                } else if let request = try? JSONCoding.decode(ChatRequest.self, from: bytes) {
                    // (Anthropic-format request bodies are not chat requests.)
                    try expectSameMeaning(request)
                }
                checked += 1
            }
        }
        #expect(checked > 20)
    }

    /// Strings are escaped as JSON requires, whatever they hold.
    @Test func escaping() throws {
        let strings = ["plain", "quote \" backslash \\ slash /", "line\nreturn\rtab\t", "\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}",
                       "emoji 👩‍💻 and 中文 and é", "", "\u{2028}\u{2029}"]
        for string in strings {
            let encoded = try StreamingJSONEncoder.encode(["k": string])
            let decoded = try JSONDecoder().decode([String: String].self, from: Data(encoded))
            #expect(decoded["k"] == string)
            try expectSameMeaning(["k": string])
        }
        #expect(String(decoding: try StreamingJSONEncoder.encode("a/b"), as: UTF8.self) == #""a/b""#)
    }

    /// Numbers of every kind, nulls, empty containers and nesting.
    @Test func valuesAndContainers() throws {
        let value: JSONValue = [
            "int": 42, "negative": -7, "big": .integer(Int64.max), "double": 0.1, "small": 1e-7, "whole": 3.0,
            "null": .null, "true": true, "false": false, "empty_object": [:], "empty_array": [],
            "nested": ["a": [1, [2, ["b": [:]]]]],
        ]
        try expectSameMeaning(value)
        struct Numbers: Encodable {
            var int8: Int8 = -8, uint64: UInt64 = .max, float: Float = 0.5, optional: Int? = nil, present: Int? = 1
            var array: [Double] = [1.5, -2.25]
        }
        try expectSameMeaning(Numbers())
        #expect(throws: EncodingError.self) { try StreamingJSONEncoder.encode(["x": Double.nan]) }
    }

    /// A value's own members and then `meta` beside them, from a second request for the same container.
    @Test func membersAddedByAWrapper() throws {
        let response = ChatResponse(id: "r", created: 1, model: "m",
                                    choices: [ChatChoice(message: ChatMessage(role: "assistant", content: .text("hi")))])
        struct Wrapper: Encodable {
            let value: ChatResponse
            func encode(to encoder: any Encoder) throws {
                try value.encode(to: encoder)
                var container = encoder.container(keyedBy: AnyCodingKey.self)
                try container.encode("added", "meta")
            }
        }
        try expectSameMeaning(Wrapper(value: response))
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(try StreamingJSONEncoder.encode(Wrapper(value: response))))
        #expect(decoded["meta"] == "added")
        #expect(decoded["id"] == "r")
    }

    /// What one pass cannot write is refused, and ``JSONCoding`` falls back to Foundation for it.
    @Test func unsupportedFallsBack() throws {
        struct Nested: Encodable {
            func encode(to encoder: any Encoder) throws {
                var outer = encoder.container(keyedBy: AnyCodingKey.self)
                var inner = outer.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey("inner"))
                try inner.encode(1, forKey: AnyCodingKey("x"))
            }
        }
        struct Blob: Encodable { var data = Data([1, 2, 3]) }
        #expect(throws: StreamingJSONEncoder.Unsupported.self) { try StreamingJSONEncoder.encode(Nested()) }
        #expect(throws: StreamingJSONEncoder.Unsupported.self) { try StreamingJSONEncoder.encode(Blob()) }
        let nested = try JSONDecoder().decode(JSONValue.self, from: try JSONCoding.encode(Nested()))
        #expect(nested == ["inner": ["x": 1]])
        let blob = try JSONDecoder().decode(JSONValue.self, from: try JSONCoding.encode(Blob()))
        #expect(blob == ["data": "AQID"])
    }
}
