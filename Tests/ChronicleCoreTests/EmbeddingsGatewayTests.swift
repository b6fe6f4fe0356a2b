import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import NIOCore
import Testing

@Suite("Embeddings through the gateway")
struct EmbeddingsGatewayTests {
    let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

    func bedrockGateway(_ upstream: MockUpstream, log: InMemoryLog) throws -> Gateway {
        let provider = BedrockProvider(
            endpoint: "http://127.0.0.1:\(upstream.port)", credentials: credentials, region: "us-east-1",
            transport: UpstreamHTTPClient(httpClient: HTTPClient.shared))
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withProvider(provider).withoutDefaultProviders()
            .withLogSink(log).build()
    }

    static func request(_ json: String) throws -> EmbeddingsRequest {
        try EmbeddingsRequest.decode(ByteBuffer(string: json))
    }

    /// Titan v2 takes one text per `InvokeModel`: two inputs make two signed calls, in order, and the
    /// answer holds both vectors with the tokens summed, in base64 when asked.
    @Test func bedrockTitanOneCallPerText() async throws {
        let reply = try Fixtures.text("bedrock_titan_v2_embeddings_response.json")
        let upstream = try await MockUpstream.start(.json(reply))
        defer { Task { await upstream.stop() } }
        let log = InMemoryLog()
        let gateway = try bedrockGateway(upstream, log: log)
        let answer = try await gateway.embed(Self.request(
            #"{"model":"aws-bedrock/amazon.titan-embed-text-v2:0","input":["a","b"],"dimensions":256,"encoding_format":"base64"}"#))
        #expect(upstream.requests.map(\.path) == ["/model/amazon.titan-embed-text-v2%3A0/invoke", "/model/amazon.titan-embed-text-v2%3A0/invoke"])
        #expect(upstream.requests.map { $0.json?["inputText"] } == ["a", "b"])
        #expect(upstream.requests.first?.json?["dimensions"] == 256)
        #expect(upstream.requests.first?.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") == true)
        #expect(answer.summary == EmbeddingsSummary(model: "amazon.titan-embed-text-v2:0", count: 2, dimensions: 4,
                                                    encodingFormat: .base64, promptTokens: 18, totalTokens: 18))
        let body = try JSONCoding.decode(JSONValue.self, from: answer.body.readableBytesView)
        let second = try #require(body["data"]?.arrayValue?.last)
        #expect(second["index"] == 1)
        #expect(EmbeddingsAnswer.floats(base64: second["embedding"]?.stringValue ?? "")
            == [-0.07386426, 0.031126864, 0.03498537, -0.0457293])
        let record = try #require(log.records.first)
        #expect(record.usage?.promptTokens == 18)
        #expect(record.request.clientAPI == "openai_embeddings")
        try await gateway.shutdown()
    }

    /// Cohere takes every text in one call; Bedrock's token-count header gives the usage.
    @Test func bedrockCohereOneCall() async throws {
        let reply = try Fixtures.text("bedrock_cohere_embeddings_response.json")
        let upstream = try await MockUpstream.start(.json(reply, headers: [("x-amzn-bedrock-input-token-count", "7")]))
        defer { Task { await upstream.stop() } }
        let gateway = try bedrockGateway(upstream, log: InMemoryLog())
        let answer = try await gateway.embed(Self.request(
            #"{"model":"bedrock/cohere.embed-english-v3","input":["Hello world","This is a test"],"input_type":"search_query"}"#))
        #expect(upstream.requests.count == 1)
        #expect(upstream.requests.first?.json == ["texts": ["Hello world", "This is a test"], "input_type": "search_query"])
        #expect(answer.summary.count == 2)
        #expect(answer.summary.dimensions == 3)
        #expect(answer.summary.promptTokens == 7)
        try await gateway.shutdown()
    }

    /// OpenAI's embedding models route to the built-in `openai` provider by their own names, and an
    /// `override_url` naming a chat endpoint gets the embeddings endpoint beside it.
    @Test func openAIEmbeddingModelsRouteToOpenAI() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_embeddings_response.json")))
        defer { Task { await upstream.stop() } }
        let log = InMemoryLog()
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withLogSink(log).build()
        let answer = try await gateway.embed(Self.request(#"{"model":"text-embedding-3-small","input":"x"}"#),
                                             options: RequestOptions(overrideURL: upstream.url()))
        #expect(upstream.requests.first?.path == "/v1/embeddings")
        #expect(upstream.requests.first?.json?["model"] == "text-embedding-3-small")
        #expect(answer.summary.count == 2)
        #expect(log.records.first?.provider == "openai")
        try await gateway.shutdown()
    }

    /// Azure passes through to the deployment's embeddings URL, with the key in `api-key`.
    @Test func azureDeploymentEmbeddings() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_embeddings_response.json")))
        defer { Task { await upstream.stop() } }
        let config = GatewayConfiguration(providers: [CustomProviderConfig(
            name: "corp-azure", url: "http://127.0.0.1:\(upstream.port)/", apiKey: "azure-key",
            format: .azure(apiVersion: "2024-06-01"), prefix: "corp/")])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withoutDefaultProviders().build()
        let body = #"{"model":"corp/embed-prod","input":["a","b"],"encoding_format":"base64"}"#
        let answer = try await gateway.embed(Self.request(body))
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/openai/deployments/embed-prod/embeddings")
        #expect(sent.headers["api-key"] == "azure-key")
        #expect(String(decoding: sent.body, as: UTF8.self) == body.replacingOccurrences(of: "corp/embed-prod", with: "embed-prod"))
        #expect(String(buffer: answer.body) == (try Fixtures.text("openai_embeddings_response.json")))
        try await gateway.shutdown()
    }

    /// The per-attempt timeout holds as on chat, passthrough or translated: an upstream that never answers
    /// fails the call with a timeout.
    @Test func timeoutHolds() async throws {
        let upstream = try await MockUpstream.start(MockUpstream.Reply(body: .hang))
        let config = GatewayConfiguration(providers: [
            CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/"),
            CustomProviderConfig(name: "g", url: upstream.url("/v1beta"), apiKey: "k", format: .gemini, prefix: "g/"),
        ])
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withRetryFree().withoutDefaultProviders().build()
        for model in ["p/m", "g/m"] {
            let error = await #expect(throws: GatewayError.self) {
                _ = try await gateway.embed(Self.request(#"{"model":"\#(model)","input":"x"}"#),
                                            options: RequestOptions(timeout: .milliseconds(1)))
            }
            guard case .provider(let failure, _, _, _)? = error else {
                Issue.record("expected a provider timeout, got \(String(describing: error))")
                continue
            }
            #expect(failure.kind == .timeout)
        }
        await upstream.stop()
    }

    /// A provider without an embeddings API (Anthropic) is refused with a 400 naming it and the model, and
    /// the call is recorded with that error.
    @Test func providerWithoutEmbeddingsIsRefused() async throws {
        let log = InMemoryLog()
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared)
            .withProvider(AnthropicProvider(key: .literal("k"), transport: UpstreamHTTPClient(httpClient: HTTPClient.shared)))
            .withoutDefaultProviders().withLogSink(log).build()
        do {
            _ = try await gateway.embed(Self.request(#"{"model":"claude-3-haiku-20240307","input":"x"}"#))
            Issue.record("an Anthropic model embedded")
        } catch let error as GatewayError {
            #expect(error.httpStatus == 400)
            #expect(error.message.contains("Provider 'anthropic' has no embeddings API"))
            #expect(error.message.contains("claude-3-haiku-20240307"))
        }
        #expect(log.records.first?.httpStatus == 400)
        try await gateway.shutdown()
    }
}
