import ChronicleCore
import ChronicleServer
import Foundation
import Testing

@Suite("Provider configuration keys")
struct ProviderConfigurationTests {
    /// `max_image_bytes` and `image_url_allowlist` set the image-fetch limits; a provider's `models` list parses.
    @Test func imageFetchAndModels() throws {
        let file = try ConfigFile.parse("""
            max_image_bytes = 1048576
            image_url_allowlist = ["10.0.0.0/8", "images.internal"]

            [[providers]]
            name = "local-vllm"
            url = "http://localhost:8000/v1/chat/completions"
            prefix = "vllm/"
            models = ["llama-3.1-8b"]
            """)
        #expect(file.gateway.imageFetch == ImageFetchPolicy(maxBytes: 1_048_576, allowList: ["10.0.0.0/8", "images.internal"]))
        #expect(file.gateway.providers.first?.models == ["llama-3.1-8b"])
        #expect(try ConfigFile.parse("port = 1").gateway.imageFetch == nil)
        #expect(throws: ConfigurationError.self) { try ConfigFile.parse("max_image_bytes = 0") }
    }
}
