@testable import ChronicleCore
import NIOCore
import Testing

@Suite struct ServerSentEventBoundaryTests {
    static let streams: [String] = [
        "event: a\ndata: {\"x\":1}\n\nevent: b\ndata: {\"y\":2}\n\n: comment\n\nevent: c\ndata: 3\n\n",
        "event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n",
        "event: a\rdata: 1\r\revent: b\rdata: 2\r\r",
    ]

    /// Whatever the cuts, every part ends at an event's end, and the parts together are the stream itself.
    @Test(arguments: streams)
    func partsEndBetweenEventsAtEveryCut(stream: String) throws {
        let bytes = Array(stream.utf8)
        for cut in 1..<bytes.count {
            for secondCut in cut..<bytes.count {
                var boundary = ServerSentEventBoundary()
                var relayed: [UInt8] = []
                for piece in [bytes[..<cut], bytes[cut..<secondCut], bytes[secondCut...]] {
                    let buffer = ByteBuffer(bytes: Array(piece))
                    if let part = try boundary.complete(buffer.readableBytesView) {
                        relayed += Array(part.readableBytesView)
                        // An event written next stands on its own: a parser reads it whole, after the
                        // complete events relayed so far.
                        var parser = ServerSentEventParser()
                        let parsed = try parser.parse(relayed + Array("event: next\ndata: end\n\n".utf8))
                        #expect(parsed.last == ServerSentEvent(event: "next", data: Array("end".utf8)),
                                "cut \(cut)/\(secondCut): \(String(decoding: relayed, as: UTF8.self).debugDescription)")
                    }
                }
                #expect(relayed == bytes, "cut \(cut)/\(secondCut)")
                #expect(boundary.remainder() == nil)
            }
        }
    }

    /// Bytes after the last complete event are held until the stream ends: relayed then if it ends normally
    /// (an event left without its blank line), never if it fails.
    @Test func heldBytesComeOutOnlyAtTheEnd() throws {
        var boundary = ServerSentEventBoundary()
        let first = ByteBuffer(string: "event: a\ndata: 1\n\nevent: b\ndata: {\"half")
        #expect(try boundary.complete(first.readableBytesView).map { String(buffer: $0) } == "event: a\ndata: 1\n\n")
        #expect(try boundary.complete(ByteBuffer(string: "\":1}").readableBytesView) == nil)
        #expect(boundary.remainder().map { String(buffer: $0) } == "event: b\ndata: {\"half\":1}")
    }

    /// A stream that never ends an event cannot make the gateway hold unbounded memory.
    @Test func heldBytesAreBounded() throws {
        var boundary = ServerSentEventBoundary(maxHeldBytes: 8)
        #expect(try boundary.complete(ByteBuffer(string: "data: 12").readableBytesView) == nil)
        #expect(throws: ServerSentEventBoundary.EventTooLarge.self) {
            try boundary.complete(ByteBuffer(string: "3").readableBytesView)
        }
    }
}
