import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@Suite("Ollama provider and Groq recovery")
struct OllamaAndGroqTests {
    func gateway(_ upstream: MockUpstream, format: ProviderFormat, name: String, prefix: String,
                 kind: UpstreamHTTPClientKind = .nio) throws -> Gateway {
        var config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: name, url: upstream.url(name == "ollama" ? "/api/chat" : "/v1/chat/completions"), format: format,
            prefix: prefix)])
        config.upstreamHTTPClient = kind
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withClock(ManualClock(autoAdvance: true)).build()
    }

    /// Non-streamed Ollama text: content, usage from eval counts, durations in the response metadata.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func nonStreaming(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("ollama_text_response_nonstreaming.json")))
        defer { Task { await upstream.stop() } }
        var body = try Fixtures.request("ollama_text.json")
        body.model = "ollama/llama3"
        let result = try await gateway(upstream, format: .ollama, name: "ollama", prefix: "ollama/", kind: kind).send(body).collect()
        let native = try Fixtures.json("ollama_text_response_nonstreaming.json")
        #expect(result.response.choices.first?.message.text == native["message"]?["content"]?.stringValue)
        #expect(result.response.choices.first?.finishReason == .stop)
        #expect(result.response.usage?.completionTokens == native["eval_count"]?.intValue)
        #expect(result.responseInfo?.meta?["eval_duration"] == native["eval_duration"])
        let sent = try #require(upstream.requests.first?.json)
        #expect(sent["model"] == "llama3")
        #expect(sent["stream"] == false)
        #expect(sent["options"]?["num_predict"] == 1024)
    }

    /// The NDJSON stream folds into the recorded text; the done line ends it with usage and durations.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func streaming(_ kind: UpstreamHTTPClientKind) async throws {
        let text = try Fixtures.text("ollama_text_response_streaming.txt")
        let lines = text.split(separator: "\n").map { Array(($0 + "\n").utf8) }
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "application/x-ndjson")], body: .parts(lines, delay: .zero)))
        defer { Task { await upstream.stop() } }
        var body = try Fixtures.request("ollama_text.json")
        body.model = "ollama/llama3"
        body.stream = true
        let result = try await gateway(upstream, format: .ollama, name: "ollama", prefix: "ollama/", kind: kind).send(body).collect()
        var expected = ""
        for line in lines {
            expected += try JSONCoding.decode(JSONValue.self, from: line)["message"]?["content"]?.stringValue ?? ""
        }
        #expect(result.response.choices.first?.message.text == expected)
        #expect(result.chunkCount == lines.count)
        #expect(result.response.usage?.completionTokens == 278)
        #expect(result.response.choices.first?.finishReason == .stop)
        #expect(result.responseInfo?.meta?["total_duration"] == 4_745_623_542)
    }

    /// Tool calls come back with object arguments and go out as objects in history.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func toolCalls(_ kind: UpstreamHTTPClientKind) async throws {
        let reply = #"{"model":"llama3.1","created_at":"2024-07-01T00:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done_reason":"stop","done":true,"prompt_eval_count":10,"eval_count":5}"#
        let upstream = try await MockUpstream.start(.json(reply))
        defer { Task { await upstream.stop() } }
        let request = ChatRequest(model: "ollama/llama3.1", messages: [
            ChatMessage(role: "user", content: .text("weather?")),
            ChatMessage(role: "assistant", toolCalls: [ToolCall(id: "c1", function: FunctionCall(name: "get_weather", arguments: #"{"city":"Oslo"}"#))]),
            ChatMessage(role: "tool", content: .text("cold"), toolCallID: "c1"),
        ], tools: [Tool(function: FunctionDefinition(name: "get_weather", parameters: ["type": "object"]))])
        let result = try await gateway(upstream, format: .ollama, name: "ollama", prefix: "ollama/", kind: kind).send(request).collect()
        let call = try #require(result.response.choices.first?.message.toolCalls?.first)
        #expect(call.function.name == "get_weather")
        #expect(call.function.arguments == #"{"city":"Paris"}"#)
        #expect(result.response.choices.first?.finishReason == .toolCalls)
        let sent = try #require(upstream.requests.first?.json)
        #expect(sent["messages"]?.arrayValue?[1]["tool_calls"] == [["function": ["name": "get_weather", "arguments": ["city": "Oslo"]]]])
        #expect(sent["tools"]?.arrayValue?.first?["function"]?["name"] == "get_weather")
    }

    /// With tools, Ollama is asked for one complete answer even when the client streams; the client's stream
    /// is answered from it.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func toolsAreNotStreamed(_ kind: UpstreamHTTPClientKind) async throws {
        let reply = #"{"model":"llama3.1","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done_reason":"stop","done":true,"eval_count":5}"#
        let upstream = try await MockUpstream.start(.json(reply))
        defer { Task { await upstream.stop() } }
        var body = ChatRequest(model: "ollama/llama3.1", messages: [ChatMessage(role: "user", content: .text("weather?"))],
                               tools: [Tool(function: FunctionDefinition(name: "get_weather"))])
        body.stream = true
        let stream = try await gateway(upstream, format: .ollama, name: "ollama", prefix: "ollama/", kind: kind).send(body)
        var collector = ResponseCollector()
        for try await event in stream {
            switch event {
            case .chunk(let chunk): collector.add(chunk)
            case .single(let response): collector.add(ChatChunk(response: response))
            default: break
            }
        }
        #expect(upstream.requests.first?.json?["stream"] == false)
        let message = try #require(collector.collected.choices.first?.message)
        #expect(message.toolCalls?.first?.function.arguments == #"{"city":"Paris"}"#)
        #expect(collector.collected.choices.first?.finishReason == .toolCalls)
    }

    /// One unreadable NDJSON line is skipped with a warning; the rest of the answer arrives.
    @Test func badStreamLineIsSkipped() async throws {
        let lines = [
            #"{"model":"llama3","message":{"role":"assistant","content":"Hel"},"done":false}"#,
            #"{"model":"llama3","message":{"role":"assis"#,
            #"{"model":"llama3","message":{"role":"assistant","content":"lo"},"done":false}"#,
            #"{"model":"llama3","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"eval_count":2}"#,
        ].map { Array(($0 + "\n").utf8) }
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "application/x-ndjson")],
                                                          body: .parts(lines, delay: .zero)))
        defer { Task { await upstream.stop() } }
        let logs = CapturedLogs()
        let provider = OllamaProvider(url: upstream.url("/api/chat"), logger: logs.logger,
                                      transport: UpstreamHTTPClient(httpClient: HTTPClient.shared))
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withProvider(provider)
            .withoutDefaultProviders().build()
        var body = request("ollama/llama3")
        body.stream = true
        let result = try await gateway.send(body).collect()
        #expect(result.response.choices.first?.message.text == "Hello")
        #expect(result.response.choices.first?.finishReason == .stop)
        #expect(logs.lines.count == 1)
        #expect(logs.lines.first?.hasPrefix("warning skipped an unreadable line") == true)
    }

    /// A stream with nothing readable is a parsing error.
    @Test(arguments: UpstreamHTTPClientKind.allCases)
    func onlyBadStreamLinesFail(_ kind: UpstreamHTTPClientKind) async throws {
        let upstream = try await MockUpstream.start(Reply(headers: [("content-type", "application/x-ndjson")],
                                                          body: .bytes(Array("not json\n".utf8))))
        defer { Task { await upstream.stop() } }
        var body = request("ollama/llama3")
        body.stream = true
        let gateway = try gateway(upstream, format: .ollama, name: "ollama", prefix: "ollama/", kind: kind)
        let error = await #expect(throws: ProviderError.self) {
            _ = try await gateway.send(body, options: RequestOptions(retry: RetryOptions(maxTries: 1))).collect()
        }
        #expect(error?.kind == .parsingResponse)
    }

    /// Groq's tool_use_failed error is turned into the tool call the model meant.
    @Test func groqToolUseFailedRecovery() async throws {
        let error = #"{"error":{"message":"Failed to call a function.","type":"invalid_request_error","code":"tool_use_failed","failed_generation":"<tool_call>{\"tool_calls\":[{\"id\":\"x\",\"type\":\"function\",\"function\":{\"name\":\"get_characteristics\"},\"parameters\":{\"name\":\"Daniel\",\"hair_color\":\"brown\"}}]}</tool_call>"}}"#
        let upstream = try await MockUpstream.start(.json(error, status: 400))
        defer { Task { await upstream.stop() } }
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withClock(ManualClock(autoAdvance: true)).build()
        var body = try Fixtures.request("groq_tools.json")
        body.model = "groq/llama3-8b-8192"
        let result = try await gateway.send(body, options: RequestOptions(overrideURL: upstream.url(), apiKey: "k")).collect()
        let call = try #require(result.response.choices.first?.message.toolCalls?.first)
        #expect(call.function.name == "get_characteristics")
        #expect(try JSONCoding.decode(JSONValue.self, from: Array((call.function.arguments ?? "").utf8)) == ["name": "Daniel", "hair_color": "brown"])
        #expect(result.response.choices.first?.finishReason == .toolCalls)
        #expect(result.response.model == "llama3-8b-8192")
    }

    /// OLLAMA_HOST values become chat URLs.
    @Test func ollamaHost() {
        #expect(BuiltInProvidersTestAccess.ollamaChatURL("10.0.0.5:11434") == "http://10.0.0.5:11434/api/chat")
        #expect(BuiltInProvidersTestAccess.ollamaChatURL("https://gpu:11434/") == "https://gpu:11434/api/chat")
    }
}

@Suite("Azure OpenAI")
struct AzureTests {
    /// The model is the deployment; the key goes in `api-key`; the api-version is in the query.
    @Test func deploymentURL() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        defer { Task { await upstream.stop() } }
        let config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "corp-azure", url: "http://127.0.0.1:\(upstream.port)/", apiKey: "azure-key",
            format: .azure(apiVersion: "2024-06-01"), prefix: "corp/")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config).build()
        let result = try await gateway.send(request("corp/gpt4o-prod")).collect()
        #expect(result.response.choices.first?.message.text?.hasPrefix("Lassie") == true)
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/openai/deployments/gpt4o-prod/chat/completions")
        #expect(sent.headers["api-key"] == "azure-key")
        #expect(sent.headers["authorization"] == nil)
    }

    /// The built-in `azure/` provider names the missing endpoint variable.
    @Test func builtInNeedsEndpoint() async throws {
        guard getenv("AZURE_OPENAI_ENDPOINT") == nil else { return }
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).build()
        var caught: GatewayError?
        do {
            // `collect()` makes the do-block's error untyped (a typed-throws catch here crashes Swift 6.3's SIL verifier).
            _ = try await gateway.send(request("azure/prod"), options: RequestOptions(apiKey: "k")).collect()
        } catch let error as GatewayError {
            caught = error
        }
        let failure = try #require(caught)
        #expect(failure.kind == "auth_missing")
        #expect(failure.message.contains("AZURE_OPENAI_ENDPOINT"))
    }
}

/// Log lines written through ``logger``, as `"<level> <message>"`.
final class CapturedLogs: Sendable {
    private let box = NIOLockedValueBox<[String]>([])

    var lines: [String] { box.withLockedValue { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(box: self.box) }
    }

    struct Handler: LogHandler {
        let box: NIOLockedValueBox<[String]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            box.withLockedValue { $0.append("\(event.level) \(event.message)") }
        }
    }
}
