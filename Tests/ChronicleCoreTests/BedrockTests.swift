import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

@Suite("AWS Bedrock")
struct BedrockTests {
    let exampleCredentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    let exampleDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    /// AWS's published signing-key derivation example (IAM, us-east-1, 20150830).
    @Test func signingKeyExample() {
        let signer = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "iam")
        let key = signer.signingKey(day: "20150830").withUnsafeBytes { Array($0) }
        #expect(key.map { String(format: "%02x", $0) }.joined() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
    }

    /// The SigV4 test suite's get-vanilla case.
    @Test func getVanilla() {
        let signer = SigV4Signer(credentials: exampleCredentials, region: "us-east-1", service: "service")
        let headers = signer.sign(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com")], body: Data(), date: exampleDate)
        #expect(headers.first { $0.0 == "x-amz-date" }?.1 == "20150830T123600Z")
        #expect(headers.first { $0.0 == "authorization" }?.1 == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    /// Frames decode across any read boundaries; a corrupted CRC is a clear error.
    @Test func eventStreamFrames() throws {
        let frames = EventStreamDecoder.encode(headers: [(":event-type", "contentBlockDelta"), (":message-type", "event")],
                                               payload: Array(#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#.utf8))
            + EventStreamDecoder.encode(headers: [(":event-type", "messageStop"), (":message-type", "event")],
                                        payload: Array(#"{"stopReason":"end_turn"}"#.utf8))
        for size in [1, 5, 13, frames.count] {
            var decoder = EventStreamDecoder()
            var messages: [EventStreamMessage] = []
            var index = 0
            while index < frames.count {
                messages += try decoder.decode(frames[index..<min(index + size, frames.count)])
                index += size
            }
            #expect(messages.map { $0.headers[":event-type"] } == ["contentBlockDelta", "messageStop"])
        }
        var corrupted = frames
        corrupted[20] ^= 0xFF
        var decoder = EventStreamDecoder()
        #expect(throws: EventStreamDecoder.InvalidFrame.self) { _ = try decoder.decode(corrupted) }
        var prelude = frames
        prelude[2] ^= 0x01
        var decoder2 = EventStreamDecoder()
        #expect(throws: EventStreamDecoder.InvalidFrame.self) { _ = try decoder2.decode(prelude) }
    }

    func gateway(_ upstream: MockUpstream, kind: UpstreamHTTPClientKind = .nio) throws -> Gateway {
        let provider = BedrockProvider(
            endpoint: "http://127.0.0.1:\(upstream.port)", credentials: exampleCredentials, region: "us-east-1",
            transport: UpstreamHTTPClient(httpClient: HTTPClient.shared, kind: kind))
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withProvider(provider).withoutDefaultProviders().build()
    }

    /// Converse: the signed native request goes out; the answer comes back with tools and usage.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func converse(_ kind: UpstreamHTTPClientKind) async throws {
        let reply = #"{"output":{"message":{"role":"assistant","content":[{"text":"Let me check."},{"toolUse":{"toolUseId":"t1","name":"get_weather","input":{"city":"Paris"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":12,"outputTokens":8,"totalTokens":20},"metrics":{"latencyMs":100}}"#
        let upstream = try await MockUpstream.start(.json(reply))
        defer { Task { await upstream.stop() } }
        var body = request("aws-bedrock/anthropic.claude-3-haiku-20240307-v1:0")
        body.messages.insert(ChatMessage(role: "system", content: .text("Be brief.")), at: 0)
        body.tools = [Tool(function: FunctionDefinition(name: "get_weather"))]
        let result = try await gateway(upstream, kind: kind).send(body).collect()
        let message = try #require(result.response.choices.first?.message)
        #expect(message.text == "Let me check.")
        #expect(message.toolCalls?.first?.function.arguments == #"{"city":"Paris"}"#)
        #expect(result.response.choices.first?.finishReason == .toolCalls)
        #expect(result.response.usage?.totalTokens == 20)
        #expect(result.response.model == "anthropic.claude-3-haiku-20240307-v1:0")
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
        #expect(sent.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") == true)
        #expect(sent.headers["x-amz-date"] != nil)
        #expect(sent.json?["system"] == [["text": "Be brief."]])
        #expect(sent.json?["messages"] == [["role": "user", "content": [["text": "hi"]]]])
        #expect(sent.json?["toolConfig"]?["tools"] == [["toolSpec": ["name": "get_weather", "inputSchema": ["json": ["type": "object", "properties": [:]]]]]])
    }

    /// ConverseStream: event-stream frames become chunks with finish_reason, created, model and usage.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func converseStream(_ kind: UpstreamHTTPClientKind) async throws {
        func frame(_ type: String, _ payload: String) -> [UInt8] {
            EventStreamDecoder.encode(headers: [(":event-type", type), (":message-type", "event"), (":content-type", "application/json")],
                                      payload: Array(payload.utf8))
        }
        let frames = [
            frame("messageStart", #"{"role":"assistant"}"#),
            frame("contentBlockDelta", #"{"delta":{"text":"Hello"},"contentBlockIndex":0}"#),
            frame("contentBlockDelta", #"{"delta":{"text":" there"},"contentBlockIndex":0}"#),
            frame("contentBlockStart", #"{"start":{"toolUse":{"toolUseId":"t9","name":"lookup"}},"contentBlockIndex":1}"#),
            frame("contentBlockDelta", #"{"delta":{"toolUse":{"input":"{\"q\":"}},"contentBlockIndex":1}"#),
            frame("contentBlockDelta", #"{"delta":{"toolUse":{"input":"\"x\"}"}},"contentBlockIndex":1}"#),
            frame("messageStop", #"{"stopReason":"tool_use"}"#),
            frame("metadata", #"{"usage":{"inputTokens":5,"outputTokens":7,"totalTokens":12},"metrics":{"latencyMs":9}}"#),
        ]
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "application/vnd.amazon.eventstream")],
                                                          body: .parts(frames, delay: .zero)))
        defer { Task { await upstream.stop() } }
        var body = request("aws-bedrock/amazon.nova-lite-v1:0")
        body.stream = true
        let result = try await gateway(upstream, kind: kind).send(body).collect()
        #expect(result.response.choices.first?.message.text == "Hello there")
        #expect(result.response.choices.first?.message.toolCalls?.first?.function.arguments == #"{"q":"x"}"#)
        #expect(result.response.choices.first?.finishReason == .toolCalls)
        #expect(result.response.usage?.totalTokens == 12)
        #expect(result.response.model == "amazon.nova-lite-v1:0")
        #expect(result.response.created > 0)
        #expect(upstream.requests.first?.path == "/model/amazon.nova-lite-v1%3A0/converse-stream")
    }

    /// Bedrock errors retry and fall back like any provider's: a 429 then success.
    @Test func errorsRetry() async throws {
        let upstream = try await MockUpstream.start(
            .json(#"{"message":"Too many requests"}"#, status: 429),
            .json(#"{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2}}"#))
        defer { Task { await upstream.stop() } }
        let provider = BedrockProvider(endpoint: "http://127.0.0.1:\(upstream.port)", credentials: exampleCredentials,
                                       region: "us-east-1", transport: UpstreamHTTPClient(httpClient: HTTPClient.shared,
                                                                                           clock: ManualClock(autoAdvance: true)))
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withProvider(provider).withoutDefaultProviders()
            .withClock(ManualClock(autoAdvance: true)).build()
        let result = try await gateway.send(request("aws-bedrock/m")).collect()
        #expect(result.requestInfo.wasRateLimited)
        #expect(result.response.choices.first?.message.text == "ok")
    }

    /// Credentials and region come from the environment or the shared files' profile.
    @Test func credentialFiles() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("aws-home-\(UUID())")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        try "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n[work]\naws_access_key_id=A2\naws_secret_access_key=S2\naws_session_token=T2\n"
            .write(to: home.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        try "[default]\nregion = eu-west-1\n[profile work]\nregion = us-west-2\n"
            .write(to: home.appendingPathComponent(".aws/config"), atomically: true, encoding: .utf8)
        #expect(AWSEnvironment.credentials(environment: [:], home: home.path) == AWSCredentials(accessKeyID: "A1", secretAccessKey: "S1"))
        #expect(AWSEnvironment.credentials(environment: ["AWS_PROFILE": "work"], home: home.path)?.sessionToken == "T2")
        #expect(AWSEnvironment.region(environment: [:], home: home.path) == "eu-west-1")
        #expect(AWSEnvironment.region(environment: ["AWS_PROFILE": "work"], home: home.path) == "us-west-2")
        #expect(AWSEnvironment.credentials(environment: ["AWS_ACCESS_KEY_ID": "E", "AWS_SECRET_ACCESS_KEY": "F"], home: home.path)?.accessKeyID == "E")
    }
}

@Suite("Request conversion: Bedrock and Ollama")
struct MoreConversionTests {
    let conversation = ChatRequest(model: "m", messages: [
        ChatMessage(role: "system", content: .text("Be brief.")),
        ChatMessage(role: "user", content: .parts([.text("Look:"), .imageURL("data:image/jpeg;base64,/9j/")])),
        ChatMessage(role: "assistant", toolCalls: [ToolCall(id: "t1", function: FunctionCall(name: "lookup", arguments: #"{"q":"x"}"#))]),
        ChatMessage(role: "tool", content: .text("found"), toolCallID: "t1"),
        ChatMessage(role: "system", content: .text("Reply in French.")),
        ChatMessage(role: "user", content: .text("Merci")),
    ], maxTokens: 50, stop: ["END"], tools: [Tool(function: FunctionDefinition(name: "lookup", parameters: ["type": "object"]))])

    /// Bedrock: every system message in `system`, tool use and results as blocks, images as bytes, tool choices.
    @Test func bedrock() throws {
        var request = conversation
        let choices: [(JSONValue?, JSONValue?)] = [
            ("auto", ["auto": [:]]), ("required", ["any": [:]]),
            (["type": "function", "function": ["name": "lookup"]], ["tool": ["name": "lookup"]]), (nil, nil),
        ]
        for (choice, expected) in choices {
            request.toolChoice = choice
            #expect(try ConversionTestAccess.bedrock(request)["toolConfig"]?["toolChoice"] == expected)
        }
        request.toolChoice = "none"
        #expect(try ConversionTestAccess.bedrock(request)["toolConfig"] == nil)
        request.toolChoice = nil
        let body = try ConversionTestAccess.bedrock(request)
        #expect(body["system"] == [["text": "Be brief."], ["text": "Reply in French."]])
        #expect(body["inferenceConfig"] == ["maxTokens": 50, "stopSequences": ["END"]])
        #expect(body["messages"] == [
            ["role": "user", "content": [["text": "Look:"], ["image": ["format": "jpeg", "source": ["bytes": "/9j/"]]]]],
            ["role": "assistant", "content": [["toolUse": ["toolUseId": "t1", "name": "lookup", "input": ["q": "x"]]]]],
            ["role": "user", "content": [["toolResult": ["toolUseId": "t1", "content": [["text": "found"]]]], ["text": "Merci"]]],
        ])
    }

    /// Ollama: options, images, object tool arguments, tool results.
    @Test func ollama() throws {
        let body = try ConversionTestAccess.ollama(conversation)
        #expect(body["options"] == ["num_predict": 50, "stop": ["END"]])
        #expect(body["messages"] == [
            ["role": "system", "content": "Be brief."],
            ["role": "user", "content": "Look:", "images": ["/9j/"]],
            ["role": "assistant", "content": "", "tool_calls": [["function": ["name": "lookup", "arguments": ["q": "x"]]]]],
            ["role": "tool", "content": "found"],
            ["role": "system", "content": "Reply in French."],
            ["role": "user", "content": "Merci"],
        ])
        #expect(body["tools"] == [["type": "function", "function": ["name": "lookup", "parameters": ["type": "object"]]]])
    }
}
