import AsyncHTTPClient
import ChronicleCore
import ChronicleTesting
import Foundation
import Testing

/// Bedrock and Ollama take images only as bytes: an image URL is fetched within strict limits and inlined.
@Suite("Image URLs fetched for Bedrock and Ollama")
struct ImageFetchTests {
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 7, count: 100)
    let ollamaReply = #"{"model":"llava","message":{"role":"assistant","content":"A cat."},"done_reason":"stop","done":true}"#

    var pngReply: MockUpstream.Reply {
        MockUpstream.Reply(headers: [("content-type", "image/png")], body: .bytes(png))
    }

    func ollamaGateway(_ ollama: MockUpstream, policy: ImageFetchPolicy? = nil) throws -> Gateway {
        let config = GatewayConfiguration(
            providers: [CustomProviderConfig(name: "ollama", url: ollama.url("/api/chat"), format: .ollama, prefix: "ollama/")],
            imageFetch: policy)
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .withoutDefaultProviders().withClock(ManualClock(autoAdvance: true)).build()
    }

    func imageRequest(_ url: String, model: String = "ollama/llava") -> ChatRequest {
        ChatRequest(model: model, messages: [ChatMessage(role: "user", content: .parts([
            .text("What is this?"), .imageURL(url),
        ]))])
    }

    /// The failure's message, which must name the part; the provider must not have been called.
    func refusal(_ url: String, policy: ImageFetchPolicy? = nil, images: MockUpstream? = nil) async throws -> String {
        let ollama = try await MockUpstream.start(.json(ollamaReply))
        defer { Task { await ollama.stop() } }
        let error = await #expect(throws: GatewayError.self) {
            _ = try await ollamaGateway(ollama, policy: policy).send(imageRequest(url)).collect()
        }
        #expect(error?.httpStatus == 400)
        #expect(error?.kind == "transforming_request")
        #expect(ollama.requests.isEmpty)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("messages[0].content[1].image_url: "))
        return message
    }

    /// A local server is loopback: refused by default, by address and by a name that resolves to it.
    @Test func loopbackRefusedByDefault() async throws {
        let images = try await MockUpstream.start(pngReply)
        defer { Task { await images.stop() } }
        #expect(try await refusal(images.url("/cat.png")).contains("127.0.0.1"))
        #expect(try await refusal("http://localhost:\(images.port)/cat.png").contains("loopback"))
        #expect(try await refusal("http://169.254.169.254/latest/meta-data/").contains("metadata"))
        #expect(images.requests.isEmpty)
    }

    /// Allow-listed, the image is fetched and sent inline as base64.
    @Test func allowListedImageIsInlined() async throws {
        let images = try await MockUpstream.start(pngReply)
        defer { Task { await images.stop() } }
        let ollama = try await MockUpstream.start(.json(ollamaReply))
        defer { Task { await ollama.stop() } }
        let gateway = try ollamaGateway(ollama, policy: ImageFetchPolicy(allowList: ["127.0.0.0/8"]))
        let result = try await gateway.send(imageRequest(images.url("/cat.png"))).collect()
        #expect(result.response.choices.first?.message.text == "A cat.")
        #expect(images.requests.first?.method == "GET")
        let sent = try #require(ollama.requests.first?.json)
        #expect(sent["messages"]?.arrayValue?.first?["images"] == [.string(Data(png).base64EncodedString())])
    }

    /// A host allow-listed by name is fetched from the address it resolved to.
    @Test func allowListedHostName() async throws {
        let images = try await MockUpstream.start(pngReply)
        defer { Task { await images.stop() } }
        let ollama = try await MockUpstream.start(.json(ollamaReply))
        defer { Task { await ollama.stop() } }
        let gateway = try ollamaGateway(ollama, policy: ImageFetchPolicy(allowList: ["localhost"]))
        _ = try await gateway.send(imageRequest("http://localhost:\(images.port)/cat.png")).collect()
        #expect(images.requests.count == 1)
        #expect(ollama.requests.first?.json?["messages"]?.arrayValue?.first?["images"]
            == [.string(Data(png).base64EncodedString())])
    }

    /// Bedrock gets the bytes with the image's format.
    @Test func bedrockGetsBytes() async throws {
        let images = try await MockUpstream.start(pngReply)
        defer { Task { await images.stop() } }
        let bedrock = try await MockUpstream.start(.json(
            #"{"output":{"message":{"role":"assistant","content":[{"text":"A cat."}]}},"stopReason":"end_turn"}"#))
        defer { Task { await bedrock.stop() } }
        var transport = UpstreamHTTPClient(httpClient: HTTPClient.shared)
        transport.imageFetchPolicy = ImageFetchPolicy(allowList: ["127.0.0.1"])
        let provider = BedrockProvider(
            endpoint: "http://127.0.0.1:\(bedrock.port)",
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret"), region: "us-east-1",
            transport: transport)
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withProvider(provider)
            .withoutDefaultProviders().build()
        _ = try await gateway.send(imageRequest(images.url("/cat.png"), model: "aws-bedrock/m")).collect()
        let sent = try #require(bedrock.requests.first?.json)
        #expect(sent["messages"]?.arrayValue?.first?["content"]?.arrayValue?.last
            == ["image": ["format": "png", "source": ["bytes": .string(Data(png).base64EncodedString())]]])
    }

    /// An image over `max_image_bytes` is refused.
    @Test func sizeLimit() async throws {
        let images = try await MockUpstream.start(pngReply)
        defer { Task { await images.stop() } }
        let message = try await refusal(images.url("/cat.png"),
                                        policy: ImageFetchPolicy(maxBytes: 50, allowList: ["127.0.0.1"]))
        #expect(message.contains("larger than 50 bytes"))
    }

    /// At most three redirects are followed; each hop is checked again.
    @Test func redirects() async throws {
        let loop = try await MockUpstream.start(Reply(status: 302, headers: [("location", "/again")], body: .bytes([])))
        defer { Task { await loop.stop() } }
        let message = try await refusal(loop.url("/start"), policy: ImageFetchPolicy(allowList: ["127.0.0.1"]))
        #expect(message.contains("redirects more than 3 times"))
        #expect(loop.requests.count == 4)

        let images = try await MockUpstream.start(pngReply)
        defer { Task { await images.stop() } }
        // Only 127.0.0.1 is allow-listed; a redirect to another loopback address is checked and refused.
        let elsewhere = try await MockUpstream.start(
            Reply(status: 302, headers: [("location", "http://127.0.0.2:\(images.port)/cat.png")], body: .bytes([])))
        defer { Task { await elsewhere.stop() } }
        let second = try await refusal(elsewhere.url("/start"), policy: ImageFetchPolicy(allowList: ["127.0.0.1"]))
        #expect(second.contains("127.0.0.2"))
        #expect(images.requests.isEmpty)
    }

    /// Only http and https.
    @Test(arguments: ["file:///etc/passwd", "ftp://example.com/cat.png", "gopher://example.com/"])
    func nonHTTPScheme(url: String) async throws {
        #expect(try await refusal(url).contains("must be http or https"))
    }
}
