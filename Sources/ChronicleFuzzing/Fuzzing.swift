import ChronicleCore
import ChronicleServer
import Foundation
import NIOCore

/// A seeded, dependency-free mutation fuzzer for the decoders that see untrusted bytes: the request
/// body decoders (OpenAI chat, Anthropic Messages, OpenAI embeddings), the workflow-event decoder and the provider stream decoders (SSE, NDJSON, event-stream).
///
/// Each input is a seed mutated a few times (bit flips, byte edits, splices, truncation, JSON and SSE
/// tokens, deep nesting); stream inputs are also cut into random parts, since the decoders must be
/// indifferent to where the socket split the bytes. A crash fails the run by crashing; every rejection
/// must be the documented error type, and for requests a 4xx.
public enum Fuzzing {
    /// One fuzzed entry point.
    public struct Target: Sendable {
        public var name: String
        var seeds: [[UInt8]]
        var run: @Sendable (_ input: [UInt8], _ random: inout SplitMix64) -> Outcome
    }

    /// What one input did.
    public enum Outcome: Sendable {
        case accepted
        case rejected
        /// The outcome broke the contract (wrong error type or status, inconsistent decoding).
        case problem(String)
    }

    /// What one target's run found.
    public struct Report: Sendable, CustomStringConvertible {
        public var target: String
        public var inputs = 0
        public var accepted = 0
        public var rejected = 0
        public var problems: [String] = []
        public var slowest: Duration = .zero

        public var description: String {
            let slowest = String(format: "%.2f ms", slowest.fractionalMilliseconds)
            return "\(target): \(inputs) inputs, \(accepted) accepted, \(rejected) rejected, slowest \(slowest), "
                + "\(problems.count) problems"
        }
    }

    /// Runs `count` inputs against `target` from a fixed `seed`, so that any finding can be replayed.
    public static func run(_ target: Target, count: Int, seed: UInt64, slowLimit: Duration = .seconds(1)) -> Report {
        var random = SplitMix64(seed: seed)
        var report = Report(target: target.name)
        for index in 0..<count {
            var input = target.seeds[Int(random.next() % UInt64(target.seeds.count))]
            let rounds = 1 + Int(random.next() % 4)
            for _ in 0..<rounds { mutate(&input, seeds: target.seeds, random: &random) }
            let start = ContinuousClock.now
            let problem = target.run(input, &random)
            let elapsed = ContinuousClock.now - start
            report.inputs += 1
            if elapsed > report.slowest { report.slowest = elapsed }
            if elapsed > slowLimit {
                report.problems.append("input \(index) took \(elapsed): \(preview(input))")
            }
            switch problem {
            case .accepted: report.accepted += 1
            case .rejected: report.rejected += 1
            case .problem(let description):
                report.problems.append("input \(index): \(description): \(preview(input))")
            }
        }
        return report
    }

    static func preview(_ input: [UInt8]) -> String {
        let text = String(decoding: input.prefix(200), as: UTF8.self)
        return input.count > 200 ? text + "… (\(input.count) bytes)" : text
    }

    // MARK: Targets

    /// Every target, seeded from recorded provider traffic in `fixtures` (a directory of the repository's
    /// `Tests/Fixtures/providers`).
    public static func targets(fixtures: URL) -> [Target] {
        func file(_ name: String) -> [UInt8] {
            (try? Array(Data(contentsOf: fixtures.appendingPathComponent(name)))) ?? []
        }
        let streams = { (prefix: String) in
            ["text", "tools"].map { file("\(prefix)_\($0)_response_streaming.txt") }.filter { !$0.isEmpty }
                .flatMap { windows(of: $0, separator: sseSeparator(of: $0)) }
        }
        return [
            Target(name: "request-body", seeds: requestSeeds + ["openai_text.json", "openai_tools.json", "groq_tools.json"]
                .map(file).filter { !$0.isEmpty }) { input, _ in
                do {
                    // What the route runs: the one-pass scan, or the full decoder when the scan declines.
                    let (call, options) = try RequestDecoding.chatCall(ByteBuffer(bytes: input))
                    guard case .wire(let wire) = call else { return .accepted }
                    // The scan must never accept what the full decoder refuses, nor read it differently.
                    guard let full = try? RequestDecoding.chatBody(ByteBuffer(bytes: input)) else {
                        return .problem("the scan accepted a body the decoder refuses")
                    }
                    guard full.request.model == wire.model, full.request.isStreaming == wire.isStreaming,
                          full.request.messages.count == wire.messageCount, full.options == options
                    else { return .problem("the scan and the decoder disagree") }
                    return .accepted
                } catch let error as APIError {
                    let status = Int(error.status.code)
                    return (400..<500).contains(status) && !error.kind.isEmpty && !error.message.isEmpty ? .rejected
                        : .problem("rejected with status \(status) kind \(error.kind)")
                } catch {
                    return .problem("unexpected error \(error)")
                }
            },
            Target(name: "anthropic-request", seeds: anthropicRequestSeeds + ["anthropic_text.json", "anthropic_tools.json"]
                .map(file).filter { !$0.isEmpty }) { input, _ in
                // What the Messages route runs: the one-pass scan for passthrough, the full decoder otherwise.
                let wire = WireMessagesRequest.scan(ByteBuffer(bytes: input))
                let decoded = Result { () throws(AnthropicError) in try AnthropicIngress.decode(input) }
                switch (wire, decoded) {
                case (_, .failure(let error)):
                    guard wire == nil else { return .problem("the scan accepted a body the decoder refuses: \(error.message)") }
                    return error.type == "invalid_request_error" && error.status == 400 && !error.message.isEmpty ? .rejected
                        : .problem("rejected as \(error.type) \(error.status)")
                case (let wire?, .success(let request)):
                    guard wire.model == request.model, wire.isStreaming == (request.stream ?? false),
                          wire.userID == request.metadata?.userID, wire.messageCount == request.messages.count
                    else { return .problem("the scan and the decoder disagree") }
                    // The passthrough body is the client's, byte for byte, when the model stays the same.
                    guard Array(wire.upstreamBody(model: wire.model).readableBytesView) == input else {
                        return .problem("the upstream body differs from the client's with the model unchanged")
                    }
                    return translates(request)
                case (nil, .success(let request)):
                    // The route re-encodes such a body once, so that the gateway holds one form: that must
                    // never refuse a request the decoder accepts, nor read a different model.
                    guard let (call, _) = try? RequestDecoding.messagesCall(ByteBuffer(bytes: input)),
                          call.model == request.model
                    else { return .problem("the route refuses or misreads a body the decoder accepts") }
                    return translates(request)
                }
            },
            Target(name: "embeddings-request", seeds: embeddingsRequestSeeds + ["openai_embeddings_request.json"]
                .map(file).filter { !$0.isEmpty }) { input, _ in embeddingsRequest(input) },
            Target(name: "responses-request", seeds: responsesRequestSeeds + ["openai_responses_text.json", "openai_responses_tools.json"]
                .map(file).filter { !$0.isEmpty }) { input, _ in
                // What the Responses route runs: the one-pass scan for passthrough (or the full read and a
                // re-encoding when the scan declines), and the full decoder for translation.
                let call: CallRequest
                do {
                    call = try RequestDecoding.responsesCall(ByteBuffer(bytes: input)).request
                } catch let error as APIError {
                    let status = Int(error.status.code)
                    return (400..<500).contains(status) && !error.message.isEmpty ? .rejected
                        : .problem("rejected with status \(status) kind \(error.kind)")
                } catch {
                    return .problem("unexpected error \(error)")
                }
                guard case .responses(let responses) = call else { return .problem("not a Responses call") }
                let wire = responses.wire
                guard let json = try? JSONCoding.decode(JSONValue.self, from: wire.body.readableBytesView) else {
                    return .problem("the route accepted a body that is not JSON")
                }
                // The scan reads what the JSON says.
                let inputCount = json["input"]?.arrayValue?.count ?? (json["input"]?.stringValue != nil ? 1 : 0)
                guard json["model"]?.stringValue == wire.model, (json["stream"]?.boolValue ?? false) == wire.isStreaming,
                      inputCount == wire.inputCount
                else { return .problem("the scan and the decoder disagree") }
                // The passthrough body is the client's, byte for byte, when the model stays the same.
                if WireResponsesRequest.scan(ByteBuffer(bytes: input)) != nil,
                   Array(wire.upstreamBody(model: wire.model).readableBytesView) != input {
                    return .problem("the upstream body differs from the client's with the model unchanged")
                }
                do {
                    let request = try wire.decoded()
                    for upstream in [AnthropicIngress.Upstream.openAICompatible, .converting] {
                        for native in [true, false] {
                            let chat = ResponsesIngress.chatRequest(request, for: upstream, nativeResponseFormat: native)
                            guard chat.model == wire.model else { return .problem("the translation changed the model") }
                            // The chat request must encode, for the provider to send it.
                            _ = try JSONCoding.encodeBytes(chat)
                        }
                    }
                    return .accepted
                } catch let error as ResponsesError {
                    return error.status == 400 && error.type == "invalid_request_error" && !error.message.isEmpty ? .rejected
                        : .problem("refused as \(error.type) \(error.status)")
                } catch {
                    return .problem("the translation failed to encode: \(error)")
                }
            },
            Target(name: "relayed-answer", seeds: relayedAnswerSeeds(streams("openai") + [file("openai_tools_response_nonstreaming.json")])) { input, _ in
                // A relayed chunk's summary must agree with the full decoder on every member but the choices,
                // whose contents are relayed as sent and checked only when the call is stored.
                guard let summary = ChatChunk.summary(of: input) else { return .rejected }
                guard var object = (try? JSONCoding.decode(JSONValue.self, from: input))?.objectValue else {
                    return .problem("the summary accepted bytes that are not a JSON object")
                }
                let hasChoices = object["choices"]?.arrayValue?.isEmpty == false
                object["choices"] = []
                guard let members = try? JSONCoding.encodeBytes(JSONValue.object(object)),
                      let decoded = try? JSONCoding.decode(ChatChunk.self, from: members)
                else { return .problem("the summary accepted a chunk the decoder refuses") }
                guard summary.id == decoded.id, summary.model == decoded.model, summary.created == decoded.created,
                      summary.usage == decoded.usage, summary.isUsageOnly == (!hasChoices && decoded.usage != nil)
                else { return .problem("the summary and the decoder disagree") }
                return .accepted
            },
            Target(name: "event-payload", seeds: eventSeeds) { input, random in
                let batch = random.next() % 2 == 0
                let bytes = batch ? Array(#"{"events":["#.utf8) + input + Array("]}".utf8) : input
                do {
                    _ = try RequestDecoding.events(ByteBuffer(bytes: bytes), batch: batch)
                    return .accepted
                } catch let error as APIError {
                    let status = Int(error.status.code)
                    return (400..<500).contains(status) ? .rejected : .problem("rejected with status \(status)")
                } catch {
                    return .problem("unexpected error \(error)")
                }
            },
            streamTarget("sse-openai", .openAI, seeds: streams("openai") + streams("groq")),
            streamTarget("sse-anthropic", .anthropic, seeds: streams("anthropic")),
            streamTarget("ndjson-ollama", .ollama, seeds: [file("ollama_text_response_streaming.txt")].filter { !$0.isEmpty }
                .flatMap { windows(of: $0, separator: Array("\n".utf8)) }),
            streamTarget("sse-gemini", .gemini, seeds: geminiSeeds),
            streamTarget("eventstream-bedrock", .bedrock, seeds: [bedrockSeed]),
        ]
    }

    /// What the embeddings route runs: the one-pass reader accepts only JSON, reads a body with its model
    /// replaced the same way, forwards the client's bytes unchanged when the model stays, and every
    /// translation takes what it accepted or refuses it with a 400.
    static func embeddingsRequest(_ input: [UInt8]) -> Outcome {
        let request: EmbeddingsRequest
        let options: RequestOptions
        do {
            let (call, decodedOptions) = try RequestDecoding.embeddingsCall(ByteBuffer(bytes: input))
            guard case .embeddings(let embeddings) = call else { return .problem("not an embeddings call") }
            request = embeddings
            options = decodedOptions
        } catch {
            let status = Int(error.status.code)
            return status == 400 && !error.kind.isEmpty && !error.message.isEmpty ? .rejected
                : .problem("rejected with status \(status) kind \(error.kind)")
        }
        guard (try? JSONCoding.decode(JSONValue.self, from: input)) != nil else {
            return .problem("the reader accepted a body that is not JSON")
        }
        guard !request.model.isEmpty, request.input.count > 0, options.metadata.userID == request.user else {
            return .problem("accepted an empty model or input, or lost the user")
        }
        guard Array(request.upstreamBody(model: request.model).readableBytesView) == input else {
            return .problem("the upstream body differs from the client's with the model unchanged")
        }
        let renamedModel = "provider/m\"\u{e9}"
        guard let renamed = try? EmbeddingsRequest.decode(request.upstreamBody(model: renamedModel)),
              renamed.model == renamedModel, renamed.input == request.input, renamed.dimensions == request.dimensions,
              renamed.encodingFormat == request.encodingFormat, renamed.user == request.user
        else { return .problem("the body with its model replaced reads differently") }
        let conversions: [() throws -> Void] = [
            { _ = try EmbeddingsConversion.Gemini.request(request, model: "m", provider: "p") },
            { _ = try EmbeddingsConversion.Ollama.request(request, model: "m", provider: "p") },
            { _ = try EmbeddingsConversion.Bedrock.requests(request, model: "amazon.titan-embed-text-v2:0", provider: "p") },
            { _ = try EmbeddingsConversion.Bedrock.requests(request, model: "cohere.embed-english-v3", provider: "p") },
        ]
        for convert in conversions {
            do {
                try convert()
            } catch let error as ProviderError {
                guard error.httpStatus == 400, !error.message.isEmpty else {
                    return .problem("a translation failed with \(error.httpStatus): \(error.message)")
                }
            } catch {
                return .problem("a translation failed with \(error)")
            }
        }
        return .accepted
    }

    static let embeddingsRequestSeeds: [[UInt8]] = [
        #"{"model":"text-embedding-3-small","input":"The food was delicious"}"#,
        #"{"input":["a","b\u00e9\n"],"model":"gemini/text-embedding-004","dimensions":256,"encoding_format":"base64","user":"u-1"}"#,
        #"{"model":"m","input":[1,2,3],"encoding_format":"float","x_future":{"k":[1,null,true]}}"#,
        #"{"model":"m","input":[[1,2],[3]],"input_type":"search_query","normalize":false}"#,
    ].map { Array($0.utf8) }

    /// A decoded Anthropic request must convert for every kind of upstream, or be refused by name.
    static func translates(_ request: AnthropicMessagesRequest) -> Outcome {
        for upstream in [AnthropicIngress.Upstream.openAICompatible, .converting] {
            do {
                let chat = try AnthropicIngress.chatRequest(request, for: upstream)
                // The Anthropic provider's conversion must take whatever the ingress produced.
                if upstream == .converting { _ = try? AnthropicTestAccess.convert(chat) }
            } catch {
                guard error.type == "invalid_request_error", !error.message.isEmpty else {
                    return .problem("conversion failed as \(error.type)")
                }
            }
        }
        return .accepted
    }

    static let responsesRequestSeeds: [[UInt8]] = [
        #"{"model":"gpt-4.1","input":"Hello"}"#,
        #"{"model":"m","stream":true,"instructions":"i","max_output_tokens":64,"temperature":0.5,"top_p":0.9,"user":"u","parallel_tool_calls":false,"reasoning":{"effort":"low"},"text":{"format":{"type":"json_schema","name":"p","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}},"input":[{"role":"developer","content":"d"},{"type":"message","role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"https://e.com/a.png","detail":"low"}]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"r"}]},{"role":"assistant","content":[{"type":"output_text","text":"x","annotations":[]}]}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":true}],"tool_choice":{"type":"function","name":"f"}}"#,
        #"{"model":"m","input":"x","store":true,"previous_response_id":"resp_1","tools":[{"type":"web_search"}],"include":["reasoning.encrypted_content"],"text":{"format":{"type":"json_object"}}}"#,
        #"{"model":"m","input":[{"type":"item_reference","id":"msg_1"},{"type":"reasoning","id":"rs_1","summary":[]}],"background":false,"conversation":null}"#,
    ].map { Array($0.utf8) }

    static let anthropicRequestSeeds: [[UInt8]] = [
        #"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]}"#,
        #"{"model":"c","max_tokens":64,"stream":true,"metadata":{"user_id":"u-1"},"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"thinking":{"type":"enabled","budget_tokens":2048},"temperature":0.5,"top_p":0.9,"top_k":4,"stop_sequences":["END"],"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},{"type":"image","source":{"type":"url","url":"https://e.com/a.png"}},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"},"citations":{"enabled":true}}]}]}"#,
        #"{"model":"c","max_tokens":8,"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"redacted_thinking","data":"r"},{"type":"text","text":"x"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","is_error":true,"content":[{"type":"text","text":"e"},{"type":"image","source":{"type":"url","url":"u"}}]},{"type":"tool_result","tool_use_id":"toolu_2","content":"ok"}]}]}"#,
        #"{"model":"c","max_tokens":1,"tool_choice":{"type":"any"},"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}],"future":{"x":[1,null]}}"#,
    ].map { Array($0.utf8) }

    /// The JSON of each `data:` line of recorded streams, and whole recorded responses, as seeds.
    static func relayedAnswerSeeds(_ sources: [[UInt8]]) -> [[UInt8]] {
        sources.flatMap { source -> [[UInt8]] in
            let lines = source.split(separator: UInt8(ascii: "\n"))
            let data = lines.compactMap { line -> [UInt8]? in
                guard line.starts(with: Array("data: {".utf8)) else { return nil }
                return Array(line.dropFirst(6))
            }
            return data.isEmpty ? [source] : data
        }
    }

    /// A recorded stream cut into short seeds: its first `head` events, then `width` consecutive later events,
    /// then its last event, so that every seed still opens and ends like a stream (decoders reject a stream
    /// cut short) and together they cover all of it. Whole recordings run to 90 KB, and a debug build (what
    /// CI fuzzes) decodes well under a megabyte a second: short seeds buy tens of thousands of inputs per
    /// target instead of hundreds.
    static func windows(of stream: [UInt8], separator: [UInt8], head: Int = 2, width: Int = 4) -> [[UInt8]] {
        var events: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index + separator.count <= stream.count {
            if stream[index..<index + separator.count].elementsEqual(separator) {
                index += separator.count
                events.append(stream[start..<index])
                start = index
            } else {
                index += 1
            }
        }
        if start < stream.count { events.append(stream[start...]) }
        guard events.count > head + width + 1 else { return [stream] }
        let opening = events.prefix(head).flatMap { $0 }
        let closing = events.count - 1
        return stride(from: head, to: closing, by: width).map { first in
            opening + events[first..<min(closing, first + width)].flatMap { $0 } + events[closing]
        }
    }

    /// The blank line that ends an event in a recorded SSE stream, as the recording writes it.
    static func sseSeparator(of stream: [UInt8]) -> [UInt8] {
        let crlf = Array("\r\n\r\n".utf8)
        let hasCRLF = stream.count >= crlf.count && (0...(stream.count - crlf.count)).contains { offset in
            stream[offset..<offset + crlf.count].elementsEqual(crlf)
        }
        return hasCRLF ? crlf : Array("\n\n".utf8)
    }

    static func streamTarget(_ name: String, _ format: RecordedStream.Format, seeds: [[UInt8]]) -> Target {
        Target(name: name, seeds: seeds.isEmpty ? [Array("data: {}\n\n".utf8)] : seeds) { input, random in
            // Arbitrary socket boundaries: the decoder must give the same answer wherever the bytes split.
            var parts: [[UInt8]] = []
            var offset = 0
            while offset < input.count {
                let length = 1 + Int(random.next() % UInt64(max(1, min(input.count - offset, 512))))
                parts.append(Array(input[offset..<min(input.count, offset + length)]))
                offset += length
            }
            let split = Result { () throws(ProviderError) in try RecordedStream.decode(parts, format: format) }
            let whole = Result { () throws(ProviderError) in try RecordedStream.decode([input], format: format) }
            switch (split, whole) {
            case (.success(let a), .success(let b)):
                return a.count == b.count ? .accepted : .problem("\(a.count) events when split, \(b.count) whole")
            case (.failure, .failure):
                return .rejected
            case (.success, .failure), (.failure, .success):
                return .problem("accepted or rejected depending on where the bytes split")
            }
        }
    }

    static let requestSeeds: [[UInt8]] = [
        #"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        #"{"model":"p/m","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"max_tokens":10,"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto"}"#,
        #"{"models":[{"model":"a","provider":"p"}],"random_choice":true,"timeout":1000,"retry":{"max_tries":3,"initial_backoff_ms":10},"metadata":{"application":"x","run_id":"01906a5e-0000-7000-8000-000000000001","step_index":2,"extra":1},"messages":[]}"#,
        #"{"model":"m","stop":["a","b"],"n":1,"seed":42,"logit_bias":{"1":2},"response_format":{"type":"json_object"},"user":"u","messages":[{"role":"user","content":null,"name":"n"}]}"#,
    ].map { Array($0.utf8) }

    static let eventSeeds: [[UInt8]] = [
        #"{"type":"run:start","id":"01906a5e-0000-7000-8000-000000000001","name":"r","input":{"q":1},"tags":["a"],"info":{"k":"v"},"time":"2024-06-01T00:00:01Z"}"#,
        #"{"type":"step:start","run_id":"01906a5e-0000-7000-8000-000000000001","step_id":"01906a5e-0000-7000-8000-000000000002","data":{"name":"s","type":"llm","input":{},"parent_step":null,"tags":[],"info":{}},"time":"2024-06-01T00:00:02.5Z"}"#,
        #"{"type":"step:end","run_id":"01906a5e-0000-7000-8000-000000000001","step_id":"01906a5e-0000-7000-8000-000000000002","data":{"output":{"a":1},"info":{"x":null}}}"#,
        #"{"type":"step:error","run_id":"01906a5e-0000-7000-8000-000000000001","step_id":"01906a5e-0000-7000-8000-000000000002","data":{"error":{"message":"m"}}}"#,
        #"{"type":"run:update","id":"01906a5e-0000-7000-8000-000000000001","status":"finished","output":[1,2],"info":{"a":{"b":null}}}"#,
        #"{"type":"custom_event","run_id":"01906a5e-0000-7000-8000-000000000001","data":"plain","error":{"e":1}}"#,
    ].map { Array($0.utf8) }

    static let geminiSeeds: [[UInt8]] = [
        "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]}}],\"modelVersion\":\"g\"}\r\n\r\n"
            + "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4}}\r\n\r\n",
    ].map { Array($0.utf8) }

    /// One valid event-stream frame (`contentBlockDelta` with text), CRCs included.
    static let bedrockSeed: [UInt8] = EventStreamDecoder.encode(
        headers: [(":event-type", "contentBlockDelta"), (":content-type", "application/json"), (":message-type", "event")],
        payload: Array(#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#.utf8))

    // MARK: Mutations

    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", "\"", "\\", ":", ",", "null", "true", "-0", "1e999", "-1e-999", "18446744073709551616",
        "\"\\u0000\"", "\"\\ud800\"", "\u{FEFF}", "\r\n", "\n\n", "\r\r", "data: ", "data: [DONE]\n\n", "event: error\n",
        "event: message_stop\n", ": comment\n", "id: 1\n", "retry: 10\n", "\"role\"", "\"content\"", "\"tool_calls\"",
        "\"type\"", "\"messages\"", "\"model\"", "\"stream\":true", "\"index\":-1", "\"index\":99999999999",
        "\"arguments\":", "\"delta\":{}", "\"choices\":[]", "\"usage\":{}", "\u{0}", "\u{7F}", "é", "😀",
    ].map { Array($0.utf8) }

    static func mutate(_ input: inout [UInt8], seeds: [[UInt8]], random: inout SplitMix64) {
        func index(_ limit: Int) -> Int { limit <= 0 ? 0 : Int(random.next() % UInt64(limit)) }
        switch random.next() % 10 {
        case 0 where !input.isEmpty:
            input[index(input.count)] ^= UInt8(1 << (random.next() % 8))
        case 1 where !input.isEmpty:
            input[index(input.count)] = UInt8(truncatingIfNeeded: random.next())
        case 2:
            let position = index(input.count + 1)
            input.insert(contentsOf: (0..<(1 + index(8))).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: position)
        case 3 where !input.isEmpty:
            let start = index(input.count)
            input.removeSubrange(start..<min(input.count, start + 1 + index(32)))
        case 4 where !input.isEmpty:
            let start = index(input.count)
            let slice = input[start..<min(input.count, start + 1 + index(64))]
            input.insert(contentsOf: slice, at: index(input.count + 1))
        case 5:
            let other = seeds[index(seeds.count)]
            guard !other.isEmpty else { return }
            let start = index(other.count)
            input.insert(contentsOf: other[start..<min(other.count, start + 1 + index(256))], at: index(input.count + 1))
        case 6 where !input.isEmpty:
            input.removeSubrange(index(input.count)...)
        case 7:
            // Deep nesting: parsers must refuse it, not overflow the stack.
            let depth = 1 + index(5000)
            input.insert(contentsOf: Array(repeating: UInt8(ascii: random.next() % 2 == 0 ? "[" : "{"), count: depth),
                         at: index(input.count + 1))
        default:
            input.insert(contentsOf: tokens[index(tokens.count)], at: index(input.count + 1))
        }
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64), so runs are reproducible.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
