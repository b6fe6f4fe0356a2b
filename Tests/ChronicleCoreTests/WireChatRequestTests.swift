@testable import ChronicleCore
import Foundation
import NIOCore
import Testing

/// The request path's one-pass scan of OpenAI-format requests, checked against the full decoder.
@Suite struct WireChatRequestTests {
    static let requestFixtures = ["openai_text.json", "openai_tools.json", "groq_text.json", "groq_tools.json",
                                  "anthropic_text.json", "anthropic_tools.json", "ollama_text.json"]

    static func scan(_ json: String) -> (request: WireChatRequest, options: RequestOptions)? {
        WireChatRequest.scan(ByteBuffer(string: json))
    }

    static func isValid(_ json: String) -> Bool {
        Array(json.utf8).withUnsafeBytes { bytes in
            var scanner = JSONScanner(bytes)
            return (try? scanner.document()) != nil
        }
    }

    /// The scanner accepts well-formed JSON and refuses what RFC 8259 refuses.
    @Test func scannerValidates() {
        let valid = [
            #"{}"#, #"[]"#, #" {"a" : [1, -2.5e3, 0, true, false, null, "x\n\u00e9\ud83d\ude00"]} "#, #""é""#, "0",
            #"{"a":{"b":{"c":[[]]}}}"#, "-0.0E+1", #""\/\\\"""#,
        ]
        for document in valid { #expect(Self.isValid(document), "\(document)") }
        let invalid = [
            "", " ", "{", #"{"a"}"#, #"{"a":1,}"#, "[1,]", "01", "1.", "-", ".5", "1e", #"{'a':1}"#, "tru", "nul",
            "\"a", "\"\u{01}\"", #""\x""#, #""\u12g4""#, "{} {}", "[1 2]", #"{"a" 1}"#, "NaN", "+1",
        ]
        for document in invalid { #expect(!Self.isValid(document), "\(document)") }
        // Bytes that are not UTF-8 inside a string.
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0x80, 0x22]] {
            let accepted = bytes.withUnsafeBytes { raw in
                var scanner = JSONScanner(raw)
                return (try? scanner.document()) != nil
            }
            #expect(!accepted, "\(bytes)")
        }
        // Nesting beyond the limit is left to the full decoder.
        #expect(!Self.isValid(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)))
    }

    /// Long strings are skimmed eight bytes at a time: a special byte at any offset is still seen.
    @Test func specialBytesAtEveryOffset() {
        for offset in 0..<24 {
            let plain = Array(repeating: UInt8(ascii: "a"), count: offset)
            let tail = Array(repeating: UInt8(ascii: "b"), count: 17)
            func accepts(_ special: [UInt8]) -> Bool {
                let document = [UInt8(ascii: "\"")] + plain + special + tail + [UInt8(ascii: "\"")]
                return document.withUnsafeBytes { raw in
                    var scanner = JSONScanner(raw)
                    return (try? scanner.document()) != nil
                }
            }
            #expect(accepts(Array("\\n".utf8)), "escape at \(offset)")
            #expect(accepts([0xC3, 0xA9]), "é at \(offset)")
            #expect(!accepts([0x01]), "control byte at \(offset)")
            #expect(!accepts([0x0A]), "line break at \(offset)")
            #expect(!accepts([0xFF]), "invalid UTF-8 at \(offset)")
            #expect(!accepts([UInt8(ascii: "\"")]), "early quote at \(offset)")
            #expect(!accepts([UInt8(ascii: "\\")] + [UInt8(ascii: "q")]), "bad escape at \(offset)")
        }
    }

    /// Escapes decode to the same text as Foundation's decoder gives.
    @Test func stringValuesResolveEscapes() throws {
        let json = #"{"model":"a\"b\\c\/d\u00e9\ud83d\ude00\n"}"#
        let scanned = try #require(Self.scan(#"{"messages":[],"# + json.dropFirst()))
        #expect(scanned.request.model == "a\"b\\c/dé😀\n")
    }

    /// Every recorded request the full decoder reads (the OpenAI-format ones) scans, and agrees with it on
    /// what the gateway reads; the others (Anthropic's shapes) are left to the decoder.
    @Test(arguments: requestFixtures) func fixturesAgreeWithDecoder(name: String) throws {
        let text = try Fixtures.text(name)
        guard let decoded = try? Fixtures.request(name) else {
            #expect(Self.scan(text) == nil)
            return
        }
        let scanned = try #require(Self.scan(text))
        #expect(scanned.request.model == decoded.model)
        #expect(scanned.request.isStreaming == decoded.isStreaming)
        #expect(scanned.request.messageCount == decoded.messages.count)
        #expect(try scanned.request.decoded() == decoded)
        // Forwarded with only the model replaced, it means the same as the typed request encoded.
        var expected = decoded
        expected.model = "upstream-model"
        let forwarded = scanned.request.upstreamBody(model: "upstream-model")
        #expect(try JSONCoding.decode(ChatRequest.self, from: forwarded.readableBytesView) == expected)
    }

    /// Chronicle's own members are read as options and never forwarded; the rest goes byte for byte.
    @Test func gatewayMembersBecomeOptions() throws {
        let body = #"{"model":"groq/llama", "messages":[{"role":"user","content":"hi"}], "metadata":{"application":"app","run_id":"0190b1c2-0000-7000-8000-000000000001","team":"a"},"provider":"groq","api_key_name":"team","retry":{"max_tries":2},"timeout":1500,"service_tier" : "flex"}"#
        let (request, options) = try #require(Self.scan(body))
        let decodedOptions = try JSONCoding.decode(RequestOptions.self, from: Array(body.utf8))
        #expect(options == decodedOptions)
        #expect(options.metadata.application == "app")
        #expect(options.provider == "groq")
        #expect(options.apiKeyName == "team")
        let forwarded = String(buffer: request.upstreamBody(model: "llama"))
        #expect(forwarded == #"{"model":"llama","messages":[{"role":"user","content":"hi"}],"service_tier" : "flex"}"#)
        #expect(request.recordedJSON == #"{"model":"groq/llama","messages":[{"role":"user","content":"hi"}],"service_tier" : "flex"}"#)
    }

    /// A body without a model gets one; removed fields are left out.
    @Test func modelAddedAndFieldsRemoved() throws {
        let (request, _) = try #require(Self.scan(#"{"messages":[],"logprobs":true,"n":2}"#))
        #expect(request.model == nil)
        let forwarded = String(buffer: request.upstreamBody(model: "m\"1", removing: ["logprobs"]))
        #expect(forwarded == #"{"model":"m\"1","messages":[],"n":2}"#)
    }

    /// Usage is asked for on streams when the provider wants it, keeping the client's other stream options.
    @Test func streamUsageRequested() throws {
        let plain = try #require(Self.scan(#"{"model":"m","messages":[],"stream":true}"#)).request
        #expect(!plain.includeUsage)
        #expect(String(buffer: plain.upstreamBody(model: "m", requestStreamUsage: true))
            == #"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#)
        let withOptions = try #require(Self.scan(#"{"model":"m","messages":[],"stream":true,"stream_options":{"x":1}}"#)).request
        let forwarded = withOptions.upstreamBody(model: "m", requestStreamUsage: true)
        let value = try JSONCoding.decode(JSONValue.self, from: forwarded.readableBytesView)
        #expect(value["stream_options"] == ["x": 1, "include_usage": true])
        let asked = try #require(Self.scan(#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#)).request
        #expect(asked.includeUsage)
        #expect(String(buffer: asked.upstreamBody(model: "m", requestStreamUsage: true)) == String(buffer: asked.body))
        // Not streamed: nothing added.
        let unary = try #require(Self.scan(#"{"model":"m","messages":[]}"#)).request
        #expect(String(buffer: unary.upstreamBody(model: "m", requestStreamUsage: true)) == #"{"model":"m","messages":[]}"#)
    }

    /// What the scan cannot vouch for is left to the full decoder, which has the last word.
    @Test func unusualBodiesFallBack() {
        let declined = [
            #"[]"#, #"{"model":"m"}"#, #"{"model":5,"messages":[]}"#, #"{"model":"a","model":"b","messages":[]}"#,
            #"{"mod\u0065l":"m","messages":[]}"#, #"{"messages":[],"max_tokens":1.5}"#, #"{"messages":[],"stop":5}"#,
            #"{"messages":[],"stop":["a",1]}"#, #"{"messages":[1]}"#, #"{"messages":[{"role":5}]}"#,
            #"{"messages":[{"content":[{"text":"no type"}]}]}"#, #"{"messages":[{"content":5}]}"#,
            #"{"messages":[],"tools":[{"type":"function"}]}"#, #"{"messages":[],"tools":[{"function":{"description":"x"}}]}"#,
            #"{"messages":[],"temperature":1e400}"#, #"{"messages":[],"stream":"yes"}"#, #"{"messages":[],"metadata":5}"#,
            #"{"messages":[],"timeout":-1}"#, #"{"messages":[] "#,
        ]
        for body in declined { #expect(Self.scan(body) == nil, "\(body)") }
    }

    /// Message names and a top-level system prompt are noted, for providers that must rewrite them.
    @Test func namesAndSystemAreNoted() throws {
        let named = try #require(Self.scan(#"{"messages":[{"role":"user","name":"ana","content":"x"}],"system":"be brief"}"#)).request
        #expect(named.hasMessageNames)
        #expect(named.hasSystem)
        let plain = try #require(Self.scan(#"{"messages":[{"role":"user","name":null,"content":"x"}],"system":null}"#)).request
        #expect(!plain.hasMessageNames)
        #expect(!plain.hasSystem)
    }

    /// Seeded mutations of the recorded requests: whenever the scan accepts a body, the full decoder accepts
    /// it too and reads the same model, stream flag, message count and options.
    @Test func scanNeverAcceptsWhatTheDecoderRefuses() throws {
        var generator = SplitMix64(seed: 0x5EED_CAFE)
        let alphabet = Array(#"{}[]":,0123456789.-+eE truefalsnl\u"abc"#.utf8)
        let bases = try Self.requestFixtures.map { Array(try Fixtures.text($0).utf8) }
            + [Array(#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"t"}]}],"metadata":{"application":"a"},"stream":true,"stop":"x","seed":1}"#.utf8)]
        var accepted = 0
        for iteration in 0..<4000 {
            var bytes = bases[iteration % bases.count]
            for _ in 0..<(1 + Int(generator.next() % 3)) {
                let position = Int(generator.next() % UInt64(max(1, bytes.count)))
                switch generator.next() % 3 {
                case 0: bytes[position] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[Int(generator.next() % UInt64(alphabet.count))], at: position)
                }
                if bytes.isEmpty { bytes = [UInt8(ascii: "{")] }
            }
            guard let (request, options) = WireChatRequest.scan(ByteBuffer(bytes: bytes)) else { continue }
            accepted += 1
            let text = String(decoding: bytes, as: UTF8.self)
            let decoded: ChatRequest
            let decodedOptions: RequestOptions
            do {
                decoded = try JSONCoding.decode(ChatRequest.self, from: bytes)
                decodedOptions = try JSONCoding.decode(RequestOptions.self, from: bytes)
            } catch {
                Issue.record("scan accepted what the decoder refuses (\(error)): \(text)")
                continue
            }
            #expect(request.model == decoded.model, "\(text)")
            #expect(request.isStreaming == decoded.isStreaming, "\(text)")
            #expect(request.messageCount == decoded.messages.count, "\(text)")
            #expect(options == decodedOptions, "\(text)")
        }
        #expect(accepted > 400)
    }
}

/// A small seeded generator, so that a failure repeats.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
