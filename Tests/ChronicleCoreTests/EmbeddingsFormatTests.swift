import ChronicleCore
import Foundation
import NIOCore
import Testing

@Suite("OpenAI embeddings format and its translations")
struct EmbeddingsFormatTests {
    static func request(_ json: String) throws -> EmbeddingsRequest {
        try EmbeddingsRequest.decode(ByteBuffer(string: json))
    }

    static func refusal(_ json: String) -> EmbeddingsRequestError? {
        do {
            _ = try EmbeddingsRequest.decode(ByteBuffer(string: json))
            return nil
        } catch {
            return error
        }
    }

    // MARK: The request

    /// The documented request reads: a list of texts, dimensions, format and user.
    @Test func decodesDocumentedRequest() throws {
        let request = try EmbeddingsRequest.decode(ByteBuffer(string: try Fixtures.text("openai_embeddings_request.json")))
        #expect(request.model == "text-embedding-3-small")
        #expect(request.input == .texts(["The food was delicious and the waiter...", "Why is the sky blue?"]))
        #expect(request.dimensions == 4)
        #expect(request.encodingFormat == .float)
        #expect(request.user == "user-123")
    }

    /// `input` as a string, a list of strings, token ids and lists of token ids; base64 asked for.
    @Test func decodesEveryInputShape() throws {
        #expect(try Self.request(#"{"model":"m","input":"hello"}"#).input == .text("hello"))
        #expect(try Self.request(#"{"model":"m","input":["a","b"]}"#).input == .texts(["a", "b"]))
        #expect(try Self.request(#"{"model":"m","input":[1,2,3]}"#).input == .tokens([1, 2, 3]))
        #expect(try Self.request(#"{"model":"m","input":[[1,2],[3]]}"#).input == .tokenLists([[1, 2], [3]]))
        #expect(try Self.request(#"{"model":"m","input":"x","encoding_format":"base64"}"#).encodingFormat == .base64)
        #expect(try Self.request(#"{"model":"m","input":"x"}"#).encodingFormat == .float)
        #expect(try Self.request(#"{"model":"m","input":"x","input_type":"search_query","normalize":false}"#).inputType == "search_query")
    }

    /// Each bad request is refused naming the member at fault.
    @Test func refusesBadRequestsByName() {
        let cases: [(String, String?, String)] = [
            (#"{"input":"x"}"#, "model", "`model` is required"),
            (#"{"model":"","input":"x"}"#, "model", "must not be empty"),
            (#"{"model":3,"input":"x"}"#, "model", "must be a string"),
            (#"{"model":"m"}"#, "input", "`input` is required"),
            (#"{"model":"m","input":""}"#, "input", "empty string"),
            (#"{"model":"m","input":[]}"#, "input", "empty list"),
            (#"{"model":"m","input":{"a":1}}"#, "input", "must be a string, a list"),
            (#"{"model":"m","input":["a",1]}"#, "input[1]", "same kind"),
            (#"{"model":"m","input":["a",""]}"#, "input[1]", "empty string"),
            (#"{"model":"m","input":[1,-2]}"#, "input[1]", "token id"),
            (#"{"model":"m","input":[1.5]}"#, "input[0]", "token id"),
            (#"{"model":"m","input":[[1],[]]}"#, "input[1]", "empty list"),
            (#"{"model":"m","input":"x","dimensions":0}"#, "dimensions", "positive integer"),
            (#"{"model":"m","input":"x","dimensions":"8"}"#, "dimensions", "positive integer"),
            (#"{"model":"m","input":"x","encoding_format":"int8"}"#, "encoding_format", #""float" or "base64""#),
            (#"{"model":"m","input":"x","user":1}"#, "user", "must be a string"),
            (#"{"model":"m","model":"n","input":"x"}"#, "model", "more than once"),
        ]
        for (body, param, wording) in cases {
            let error = Self.refusal(body)
            #expect(error?.param == param, "\(body)")
            #expect(error?.message.contains(wording) == true, "\(body): \(error?.message ?? "accepted")")
            #expect(error?.isMalformedJSON == false, "\(body)")
        }
        for body in [#"{"model":"m","input":"x""#, "not json", #"{"model":"m","input":"x"} trailing"#] {
            #expect(Self.refusal(body)?.isMalformedJSON == true, "\(body)")
        }
        #expect(Self.refusal(#"["model"]"#)?.message == "The body must be a JSON object")
    }

    /// The upstream body is the client's bytes, with only the model's value replaced.
    @Test func upstreamBodyReplacesOnlyTheModel() throws {
        let body = #"{ "input" : ["a\u00e9"], "model":"openai/text-embedding-3-small", "x_future":[1, 2.50], "dimensions": 8 }"#
        let request = try Self.request(body)
        #expect(String(buffer: request.upstreamBody(model: "text-embedding-3-small"))
            == body.replacingOccurrences(of: "openai/text-embedding-3-small", with: "text-embedding-3-small"))
        #expect(request.input == .texts(["aé"]))
    }

    // MARK: The answer

    /// The gateway's answer is OpenAI's documented shape, and base64 holds each vector's little-endian
    /// float32 bytes, as OpenAI writes them.
    @Test func writesOpenAIAnswerInBothFormats() throws {
        let vectors = EmbeddingVectors(vectors: [[0.0023064255, -0.009327292, -0.0028842222, 0.015124727],
                                                 [-0.0098027075, 0.06042469, 0.025257962, -0.006364387]],
                                       promptTokens: 14)
        let float = EmbeddingsAnswer(vectors, model: "text-embedding-3-small", format: .float)
        var expected = try Fixtures.json("openai_embeddings_response.json")
        var writtenFloats = try JSONCoding.decode(JSONValue.self, from: float.body.readableBytesView)
        // The numbers are float32 values: compared as such, the rest of the envelope as JSON.
        #expect(Self.vectors(writtenFloats) == vectors.vectors)
        #expect(Self.vectors(expected) == vectors.vectors)
        Self.dropVectors(&writtenFloats)
        Self.dropVectors(&expected)
        #expect(writtenFloats == expected)
        #expect(float.summary == EmbeddingsSummary(model: "text-embedding-3-small", count: 2, dimensions: 4,
                                                   encodingFormat: .float, promptTokens: 14, totalTokens: 14))

        let base64 = EmbeddingsAnswer(vectors, model: "text-embedding-3-small", format: .base64)
        let expectedBase64 = try Fixtures.json("openai_embeddings_response_base64.json")
        let written = try JSONCoding.decode(JSONValue.self, from: base64.body.readableBytesView)
        #expect(written == expectedBase64)
        let first = try #require(written["data"]?.arrayValue?.first?["embedding"]?.stringValue)
        #expect(EmbeddingsAnswer.floats(base64: first) == vectors.vectors[0])
        #expect(base64.summary.encodingFormat == .base64)
    }

    static func vectors(_ answer: JSONValue) -> [[Float]] {
        (answer["data"]?.arrayValue ?? []).map { item in
            (item["embedding"]?.arrayValue ?? []).map { Float($0.doubleValue ?? .nan) }
        }
    }

    static func dropVectors(_ answer: inout JSONValue) {
        guard var object = answer.objectValue, let data = object["data"]?.arrayValue else { return }
        object["data"] = .array(data.map { item in
            var fields = item.objectValue ?? [:]
            fields["embedding"] = nil
            return .object(fields)
        })
        answer = .object(object)
    }

    /// The summary of a relayed OpenAI answer is read from its bytes: count, dimension (a base64 vector's
    /// from its length), model and usage.
    @Test(arguments: [("openai_embeddings_response.json", EmbeddingsEncodingFormat.float),
                      ("openai_embeddings_response_base64.json", .base64)])
    func summarizesOpenAIAnswer(file: String, format: EmbeddingsEncodingFormat) throws {
        let bytes = ByteBuffer(string: try Fixtures.text(file))
        let summary = try #require(EmbeddingsAnswer.summary(ofOpenAIAnswer: bytes, format: .float))
        #expect(summary == EmbeddingsSummary(model: "text-embedding-3-small", count: 2, dimensions: 4,
                                             encodingFormat: format, promptTokens: 14, totalTokens: 14))
        #expect(EmbeddingsAnswer.summary(ofOpenAIAnswer: ByteBuffer(string: #"{"error":{"message":"no"}}"#), format: .float) == nil)
        #expect(EmbeddingsAnswer.summary(ofOpenAIAnswer: ByteBuffer(string: #"{"data":[]"#), format: .float) == nil)
    }

    /// What is stored instead of the vectors: the envelope with their count and dimension.
    @Test func recordedSummaryHasNoVectors() {
        let summary = EmbeddingsSummary(model: "m", count: 3, dimensions: 1536, encodingFormat: .base64,
                                        promptTokens: 9, totalTokens: 9)
        #expect(summary.recordedJSON == [
            "object": "list", "model": "m",
            "data": ["count": 3, "dimensions": 1536, "encoding_format": "base64", "vectors": "not stored"],
            "usage": ["prompt_tokens": 9, "total_tokens": 9],
        ])
    }

    // MARK: Gemini

    /// One input goes to `embedContent` as documented, with `outputDimensionality` and a task type.
    @Test func geminiEmbedContent() throws {
        let request = try Self.request(#"{"model":"gemini/gemini-embedding-001","input":"What is the meaning of life?","dimensions":4,"input_type":"search_query"}"#)
        #expect(EmbeddingsConversion.Gemini.method(for: request) == "embedContent")
        let body = try EmbeddingsConversion.Gemini.request(request, model: "gemini-embedding-001", provider: "gemini")
        #expect(body == (try Fixtures.json("gemini_embed_content_request.json")))
        let vectors = try EmbeddingsConversion.Gemini.vectors(try Fixtures.json("gemini_embed_content_response.json"), provider: "gemini")
        #expect(vectors.vectors == [[-0.022374554, -0.004560777, 0.013309286, -0.0545072]])
        #expect(vectors.promptTokens == nil)
    }

    /// Several inputs go to `batchEmbedContents` as documented; the vectors come back in order.
    @Test func geminiBatchEmbedContents() throws {
        let request = try Self.request(#"{"model":"gemini-embedding-001","input":["What is the meaning of life?","How much wood would a woodchuck chuck?","How does the brain work?"]}"#)
        #expect(EmbeddingsConversion.Gemini.method(for: request) == "batchEmbedContents")
        let body = try EmbeddingsConversion.Gemini.request(request, model: "gemini-embedding-001", provider: "gemini")
        #expect(body == (try Fixtures.json("gemini_batch_embed_contents_request.json")))
        let vectors = try EmbeddingsConversion.Gemini.vectors(
            try Fixtures.json("gemini_batch_embed_contents_response.json"), provider: "gemini")
        #expect(vectors.vectors.count == 3)
        #expect(vectors.vectors[2] == [-0.0159849, 0.010765489, 0.0031592974])
    }

    /// Token ids cannot be sent to a provider that takes text: refused with a 400 naming the provider.
    @Test func tokenArraysAreRefusedByTextProviders() throws {
        let request = try Self.request(#"{"model":"m","input":[1,2,3]}"#)
        func expectRefused(_ convert: () throws -> Void) {
            do {
                try convert()
                Issue.record("token ids were accepted")
            } catch {
                let refusal = error as? ProviderError
                #expect(refusal?.httpStatus == 400)
                #expect(refusal?.message.contains("takes text only") == true)
            }
        }
        expectRefused { _ = try EmbeddingsConversion.Gemini.request(request, model: "m", provider: "gemini") }
        expectRefused { _ = try EmbeddingsConversion.Ollama.request(request, model: "m", provider: "ollama") }
        expectRefused {
            _ = try EmbeddingsConversion.Bedrock.requests(request, model: "amazon.titan-embed-text-v2:0", provider: "aws-bedrock")
        }
    }

    // MARK: Bedrock

    /// Titan Text Embeddings v2: one documented body per text, with `dimensions` and `normalize`; the
    /// answer's vector and token count.
    @Test func bedrockTitanV2() throws {
        let request = try Self.request(#"{"model":"amazon.titan-embed-text-v2:0","input":["What are the different services that you offer?","x"],"dimensions":256,"normalize":true}"#)
        let bodies = try EmbeddingsConversion.Bedrock.requests(request, model: "amazon.titan-embed-text-v2:0", provider: "aws-bedrock")
        #expect(bodies.count == 2)
        #expect(bodies[0] == (try Fixtures.json("bedrock_titan_v2_embeddings_request.json")))
        #expect(bodies[1] == ["inputText": "x", "dimensions": 256, "normalize": true])
        let vectors = try EmbeddingsConversion.Bedrock.vectors(
            try Fixtures.json("bedrock_titan_v2_embeddings_response.json"), provider: "aws-bedrock")
        #expect(vectors.vectors == [[-0.07386426, 0.031126864, 0.03498537, -0.0457293]])
        #expect(vectors.promptTokens == 9)
    }

    /// Cohere Embed: all texts in one documented body with an input type; `dimensions` only for v4; Titan
    /// v1 refuses `dimensions`; a model that embeds nothing is named.
    @Test func bedrockCohereAndRefusals() throws {
        let request = try Self.request(#"{"model":"cohere.embed-english-v3","input":["Hello world","This is a test"]}"#)
        let bodies = try EmbeddingsConversion.Bedrock.requests(request, model: "cohere.embed-english-v3", provider: "aws-bedrock")
        #expect(bodies == [try Fixtures.json("bedrock_cohere_embeddings_request.json")])
        let vectors = try EmbeddingsConversion.Bedrock.vectors(
            try Fixtures.json("bedrock_cohere_embeddings_response.json"), provider: "aws-bedrock")
        #expect(vectors.vectors == [[0.016937256, -0.0061149597, -0.04876709], [0.023452759, -0.0128479, -0.028060913]])
        let byType = try EmbeddingsConversion.Bedrock.vectors(["embeddings": ["float": [[1, 2]]]], provider: "b")
        #expect(byType.vectors == [[1, 2]])

        let sized = try Self.request(#"{"model":"m","input":"x","dimensions":256}"#)
        let v4 = try EmbeddingsConversion.Bedrock.requests(sized, model: "us.cohere.embed-v4:0", provider: "b")
        #expect(v4 == [["texts": ["x"], "input_type": "search_document", "output_dimension": 256, "embedding_types": ["float"]]])
        for model in ["cohere.embed-english-v3", "amazon.titan-embed-text-v1"] {
            #expect(throws: ProviderError.self) { try EmbeddingsConversion.Bedrock.requests(sized, model: model, provider: "b") }
        }
        do {
            _ = try EmbeddingsConversion.Bedrock.requests(sized, model: "anthropic.claude-3-haiku-20240307-v1:0", provider: "b")
            Issue.record("a chat model was accepted")
        } catch {
            #expect(error.httpStatus == 400)
            #expect(error.message.contains("anthropic.claude-3-haiku-20240307-v1:0"))
        }
    }

    // MARK: Ollama

    /// `/api/embed`: the documented body and answer, tokens from `prompt_eval_count`; the endpoint beside
    /// the chat one.
    @Test func ollamaEmbed() throws {
        let request = try Self.request(#"{"model":"ollama/all-minilm","input":["Why is the sky blue?","Why is the grass green?"]}"#)
        let body = try EmbeddingsConversion.Ollama.request(request, model: "all-minilm", provider: "ollama")
        #expect(body == (try Fixtures.json("ollama_embed_request.json")))
        let single = try EmbeddingsConversion.Ollama.request(try Self.request(#"{"model":"m","input":"x","dimensions":2}"#),
                                                             model: "m", provider: "ollama")
        #expect(single == ["model": "m", "input": "x", "dimensions": 2])
        let vectors = try EmbeddingsConversion.Ollama.vectors(try Fixtures.json("ollama_embed_response.json"), provider: "ollama")
        #expect(vectors.vectors.count == 2)
        #expect(vectors.vectors[1].count == 5)
        #expect(vectors.promptTokens == 8)
        #expect(EmbeddingsConversion.Ollama.url(forChatURL: "http://localhost:11434/api/chat") == "http://localhost:11434/api/embed")
    }

    /// OpenAI-format endpoints: the embeddings URL beside the chat one, Azure's query kept.
    @Test func openAIEmbeddingsURL() {
        #expect(OpenAICompatibleProvider.embeddingsURL(forChatURL: "https://api.openai.com/v1/chat/completions")
            == "https://api.openai.com/v1/embeddings")
        #expect(OpenAICompatibleProvider.embeddingsURL(
            forChatURL: "https://x.openai.azure.com/openai/deployments/emb/chat/completions?api-version=2024-10-21")
            == "https://x.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21")
        #expect(OpenAICompatibleProvider.embeddingsURL(forChatURL: "http://host/v1/") == "http://host/v1/embeddings")
    }
}
