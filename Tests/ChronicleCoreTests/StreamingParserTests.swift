import ChronicleCore
import ChronicleTesting
import Testing

@Suite("Server-sent event parser")
struct StreamingParserTests {
    /// Every recorded stream parses the same whatever the read boundaries.
    @Test(arguments: ["openai_text_response_streaming.txt", "groq_tools_response_streaming.txt",
                      "anthropic_text_and_tools_response_streaming.txt"])
    func splitAnywhere(fixture: String) throws {
        let bytes = Array(try Fixtures.text(fixture).utf8)
        var whole = ServerSentEventParser()
        let expected = try whole.parse(bytes) + whole.finish()
        #expect(!expected.isEmpty)
        for size in [1, 2, 7, 64, 1000] {
            var parser = ServerSentEventParser()
            var events: [ServerSentEvent] = []
            var index = 0
            while index < bytes.count {
                let end = min(index + size, bytes.count)
                events += try parser.parse(bytes[index..<end])
                index = end
            }
            events += parser.finish()
            #expect(events == expected, "read size \(size)")
        }
    }

    /// CRLF and CR line ends, comments, multi-line data, named events, and a last event without a blank line.
    @Test func lineEndsAndFields() throws {
        var parser = ServerSentEventParser()
        let text = ": comment\r\ndata: a\r\ndata: b\r\n\r\nevent: error\rdata:{\"x\":1}\r\rdata: tail"
        let events = try parser.parse(Array(text.utf8)) + parser.finish()
        #expect(events == [
            ServerSentEvent(data: Array("a\nb".utf8)),
            ServerSentEvent(event: "error", data: Array("{\"x\":1}".utf8)),
            ServerSentEvent(data: Array("tail".utf8)),
        ])
    }

    /// An event larger than the limit is refused rather than buffered without bound.
    @Test func boundedEventSize() {
        var parser = ServerSentEventParser(maxEventSize: 16)
        #expect(throws: ServerSentEventParser.EventTooLarge.self) {
            _ = try parser.parse(Array("data: \(String(repeating: "x", count: 64))".utf8))
        }
    }
}
