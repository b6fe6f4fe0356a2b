import ChronicleCore
import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import NIOCore
import Testing

@Suite("OpenAI embeddings API over real sockets")
struct EmbeddingsServerTests {
    static func row(_ record: CallLogRecord) throws -> EventRow {
        guard case .event(let row) = StoredRecord(.call(record)) else { throw CancellationError() }
        return row
    }

    static func floats(_ answer: JSONValue) -> [[Float]] {
        (answer["data"]?.arrayValue ?? []).map { item in
            if let text = item["embedding"]?.stringValue { return EmbeddingsAnswer.floats(base64: text) ?? [] }
            return (item["embedding"]?.arrayValue ?? []).map { Float($0.doubleValue ?? .nan) }
        }
    }

    /// A body with members the gateway does not model, escapes and odd spacing: all must reach the upstream.
    static let clientBody = #"{ "input" : ["The food was delicious and the waiter...", "Why is the sky blue?\u00e9"], "model":"oai/text-embedding-3-small", "dimensions": 4, "x_future": [1, 2.50] }"#

    /// Passthrough: the upstream gets the client's bytes with only `model` replaced, at the embeddings URL
    /// beside its chat URL; the client gets the upstream's body byte for byte with the call's id; the call
    /// is recorded with the input, usage, API and header metadata, and the vectors' count and dimension
    /// instead of them.
    @Test(arguments: ["/v1/embeddings", "/embeddings"])
    func passthrough(path: String) async throws {
        let answer = try Fixtures.text("openai_embeddings_response.json")
        let upstream = try await MockUpstream.start(.json(answer))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(providers: [
            CustomProviderConfig(name: "oai", url: upstream.url(), apiKey: "sk-oai-up", prefix: "oai/"),
        ]))
        let response = try await server.send(path, body: Self.clientBody, headers: [
            ("x-chronicle-application", "rag"), ("x-chronicle-extra-meta", #"{"batch":7}"#),
        ])
        #expect(response.status == 200)
        #expect(response.body == answer)
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/v1/embeddings")
        #expect(String(decoding: sent.body, as: UTF8.self)
            == Self.clientBody.replacingOccurrences(of: "oai/text-embedding-3-small", with: "text-embedding-3-small"))
        #expect(sent.headers["authorization"] == "Bearer sk-oai-up")

        let record = try #require(try await server.records(1).first)
        #expect(response.headers.first(name: "x-chronicle-call-id") == record.id.uuidString.lowercased())
        #expect(response.headers.first(name: "x-chronicle-overhead-ms") != nil)
        #expect(record.provider == "oai")
        #expect(record.usage?.promptTokens == 14)
        let row = try Self.row(record)
        #expect(row.chatRequest == Self.clientBody)
        #expect(try JSONCoding.decode(JSONValue.self, from: Array(row.meta.utf8)) == ["api": "openai_embeddings", "batch": 7])
        #expect(row.application == "rag")
        #expect(row.inputTokens == 14)
        #expect(row.outputTokens == nil)
        let stored = try JSONCoding.decode(JSONValue.self, from: Array(row.chatResponse.utf8))
        #expect(stored["data"] == ["count": 2, "dimensions": 4, "encoding_format": "float", "vectors": "not stored"])
        await server.stop()
        await upstream.stop()
    }

    /// Gemini: several inputs go to `batchEmbedContents` with the key header and `outputDimensionality`;
    /// the answer is OpenAI's list, in float or in base64 that decodes to the same float32 values.
    @Test(arguments: [EmbeddingsEncodingFormat.float, .base64])
    func gemini(format: EmbeddingsEncodingFormat) async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("gemini_batch_embed_contents_response.json")))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(providers: [
            CustomProviderConfig(name: "gem", url: upstream.url("/v1beta"), apiKey: "g-key", format: .gemini, prefix: "gem/"),
        ]))
        let body = #"{"model":"gem/text-embedding-004","input":["a","b","c"],"dimensions":3,"encoding_format":"\#(format.rawValue)"}"#
        let response = try await server.json("/v1/embeddings", body: body)
        #expect(response.status == 200)
        let sent = try #require(upstream.requests.first)
        #expect(sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents")
        #expect(sent.headers["x-goog-api-key"] == "g-key")
        #expect(sent.json?["requests"]?.arrayValue?.map { $0["outputDimensionality"] } == [3, 3, 3])
        #expect(response.json["object"] == "list")
        #expect(response.json["model"] == "text-embedding-004")
        #expect(response.json["data"]?.arrayValue?.map { $0["index"] } == [0, 1, 2])
        #expect(response.json["data"]?.arrayValue?.first?["object"] == "embedding")
        #expect(Self.floats(response.json)[1] == [-0.007975515, -0.02144362, 0.004316693])
        #expect((response.json["data"]?.arrayValue?.first?["embedding"]?.stringValue != nil) == (format == .base64))
        let record = try #require(try await server.records(1).first)
        let stored = try JSONCoding.decode(JSONValue.self, from: Array(try Self.row(record).chatResponse.utf8))
        #expect(stored["data"]?["count"] == 3)
        #expect(stored["data"]?["encoding_format"] == .string(format.rawValue))
        await server.stop()
        await upstream.stop()
    }

    /// Ollama: `/api/embed` beside the chat endpoint; tokens from `prompt_eval_count`.
    @Test func ollama() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("ollama_embed_response.json")))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(providers: [
            CustomProviderConfig(name: "oll", url: upstream.url("/api/chat"), format: .ollama, prefix: "oll/"),
        ]))
        let response = try await server.json("/v1/embeddings",
                                             body: #"{"model":"oll/all-minilm","input":["Why is the sky blue?","Why is the grass green?"]}"#)
        #expect(response.status == 200)
        #expect(upstream.requests.first?.path == "/api/embed")
        #expect(upstream.requests.first?.json == (try JSONCoding.decode(JSONValue.self, from: Array(try Fixtures.text("ollama_embed_request.json").utf8))))
        #expect(response.json["usage"] == ["prompt_tokens": 8, "total_tokens": 8])
        #expect(Self.floats(response.json).map(\.count) == [5, 5])
        await server.stop()
        await upstream.stop()
    }

    /// What cannot be done is a clear 400: Anthropic has no embeddings (named, and recorded), Gemini takes
    /// no token ids, and a bad body names the member; nothing bad reaches an upstream.
    @Test func refusals() async throws {
        let upstream = try await MockUpstream.start(.json("{}"))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(providers: [
            CustomProviderConfig(name: "ant", url: upstream.url("/v1/messages"), apiKey: "k", format: .anthropic, prefix: "ant/"),
            CustomProviderConfig(name: "gem", url: upstream.url("/v1beta"), apiKey: "g", format: .gemini, prefix: "gem/"),
        ]))
        let anthropic = try await server.json("/v1/embeddings", body: #"{"model":"ant/claude-3-haiku","input":"x"}"#)
        #expect(anthropic.status == 400)
        #expect(anthropic.json["error"]?["message"]?.stringValue?.contains("Provider 'ant' has no embeddings API") == true)
        #expect(anthropic.json["error"]?["message"]?.stringValue?.contains("ant/claude-3-haiku") == true)
        #expect(anthropic.headers.first(name: "x-chronicle-call-id") != nil)

        let tokens = try await server.json("/v1/embeddings", body: #"{"model":"gem/text-embedding-004","input":[[1,2],[3]]}"#)
        #expect(tokens.status == 400)
        #expect(tokens.json["error"]?["message"]?.stringValue?.contains("takes text only") == true)

        let bad = try await server.json("/v1/embeddings", body: #"{"model":"gem/x","input":"x","encoding_format":"int8"}"#)
        #expect(bad.status == 400)
        #expect(bad.json["error"]?["details"]?["body"]?["param"] == "encoding_format")
        #expect(bad.headers.first(name: "x-chronicle-call-id") == nil, "a refused body makes no call")
        let notJSON = try await server.json("/v1/embeddings", body: "{")
        #expect(notJSON.status == 400)
        #expect(notJSON.json["error"]?["kind"] == "invalid_json")
        #expect(try await server.send("/v1/embeddings", method: .GET).status == 405)

        #expect(upstream.requests.isEmpty)
        let records = try await server.records(2)
        #expect(records.count == 2)
        #expect(records.map(\.httpStatus) == [400, 400])
        await server.stop()
        await upstream.stop()
    }

    /// Fallback as on chat: an alias whose first choice fails goes on to the next; both attempts are recorded.
    @Test func fallsBack() async throws {
        let failing = try await MockUpstream.start(.json(#"{"error":{"message":"overloaded"}}"#, status: 503))
        let working = try await MockUpstream.start(.json(try Fixtures.text("ollama_embed_response.json")))
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [
                CustomProviderConfig(name: "down", url: failing.url(), apiKey: "k"),
                CustomProviderConfig(name: "oll", url: working.url("/api/chat"), format: .ollama),
            ],
            aliases: [AliasConfig(name: "embed", models: [AliasModel(model: "text-embedding-3-small", provider: "down"),
                                                         AliasModel(model: "all-minilm", provider: "oll")])],
            retry: RetryOptions(maxTries: 2)))
        let response = try await server.json("/v1/embeddings", body: #"{"model":"embed","input":["a","b"]}"#)
        #expect(response.status == 200)
        #expect(failing.requests.first?.path == "/v1/embeddings")
        #expect(working.requests.first?.json?["model"] == "all-minilm")
        let record = try #require(try await server.records(1).first)
        #expect(record.provider == "oll")
        #expect(record.numRetries == 1)
        #expect(record.attempts.map(\.provider) == ["down", "oll"])
        await server.stop()
        await failing.stop()
        await working.stop()
    }

    /// Gateway keys and per-key token limits hold as on chat: no key, no call; the tokens an embeddings
    /// call used are charged to its key; the record names the key; vectors are stored when switched on.
    @Test func keysLimitsAndVectorSwitch() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_embeddings_response.json")))
        var security = SecuritySettings()
        security.gatewayKeys = [GatewayKeyConfig(name: "rag", key: "rag-key-0123456789", tokensPerMinute: 10)]
        var configuration = GatewayConfiguration(providers: [
            CustomProviderConfig(name: "oai", url: upstream.url(), apiKey: "sk-oai-up", prefix: "oai/"),
        ])
        configuration.logEmbeddingVectors = true
        let server = try await RunningServer.start(configuration: configuration, security: security)
        let body = #"{"model":"oai/text-embedding-3-small","input":"hello"}"#
        #expect(try await server.send("/v1/embeddings", body: body).status == 401)
        let auth = [("authorization", "Bearer rag-key-0123456789")]
        #expect(try await server.send("/v1/embeddings", body: body, headers: auth).status == 200)
        let record = try #require(try await server.records(1).first)
        #expect(record.options.internalMetadata.gatewayKey == "rag")
        #expect(try Self.row(record).chatResponse == (try Fixtures.text("openai_embeddings_response.json")))
        // The call used 14 tokens of 10 a minute: the key is in debt until they are paid back.
        #expect(try await server.send("/v1/embeddings", body: body, headers: auth).status == 429)
        #expect(upstream.requests.count == 1)
        await server.stop()
        await upstream.stop()
    }

    /// `log_embedding_vectors` in chronicle.toml turns vector storage on; a later file can turn it off.
    @Test func vectorSwitchInConfiguration() throws {
        var configuration = try ConfigFile.parse("log_embedding_vectors = true").gateway
        #expect(configuration.logEmbeddingVectors == true)
        #expect(try ConfigFile.parse("port = 1").gateway.logEmbeddingVectors == nil)
        configuration.merge(try ConfigFile.parse("log_embedding_vectors = false").gateway)
        #expect(configuration.logEmbeddingVectors == false)
    }

    /// Spans and metrics as on chat: an `embeddings` span with the model, input count and usage; the
    /// request and input-token counters by provider and model.
    @Test func spansAndMetrics() async throws {
        let collector = try await MockUpstream.start(.json("{}"))
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_embeddings_response.json")))
        let tracing = try CollectorTracing.start(exportingTo: collector)
        let metrics = ServerMetrics()
        let server = try await RunningServer.start(configuration: GatewayConfiguration(providers: [
            CustomProviderConfig(name: "oai", url: upstream.url(), apiKey: "sk-oai-up", prefix: "oai/"),
        ]), tracer: tracing.tracer, metrics: metrics)
        #expect(try await server.send("/v1/embeddings", body: Self.clientBody).status == 200)
        _ = try await server.records(1)
        let samples = PrometheusText.parse(try await server.send("/metrics", method: .GET).body)
        #expect(samples.value("chronicle_requests_total",
                              ["provider": "oai", "model": "oai/text-embedding-3-small", "status": "200"]) == 1)
        #expect(samples.value("chronicle_tokens_total", ["provider": "oai", "direction": "input"]) == 14)
        await server.stop()
        try await tracing.flush()
        let call = try #require(ExportedSpan.all(in: collector.requests).first { $0.name == "llm.send_request" })
        #expect(call.attributes["gen_ai.operation.name"] == "embeddings")
        #expect(call.attributes["gen_ai.request.model"] == "oai/text-embedding-3-small")
        #expect(call.attributes["llm.embeddings.input_count"] == "2")
        #expect(call.attributes["gen_ai.usage.input_tokens"] == "14")
        #expect(call.attributes["gen_ai.system"] == "oai")
        await upstream.stop()
        await collector.stop()
    }
}
