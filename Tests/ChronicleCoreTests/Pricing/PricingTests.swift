@testable import ChronicleCore
import Foundation
import Testing

@Suite("Prices and the cost of a call")
struct PricingTests {
    let now = Date(timeIntervalSince1970: 1_780_000_000)

    func close(_ a: Double?, _ b: Double) -> Bool {
        guard let a else { return false }
        return abs(a - b) < 1e-12
    }

    /// The bundled table parses whole, and prices the built-in providers' models.
    @Test func bundledTable() {
        #expect(BundledPrices.parse().count == BundledPrices.count)
        let prices = PriceTable.bundled
        for (provider, model) in [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-flash"),
                                  ("aws-bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"), ("mistral", "mistral-large-latest")] {
            #expect(prices.price(provider: provider, model: model, at: now) != nil, "\(provider) \(model)")
        }
        #expect(!PriceTable.bundledSource.isEmpty && !PriceTable.bundledDate.isEmpty)
    }

    /// OpenAI's recorded answer: `prompt_tokens` 15, `completion_tokens` 97 at $0.50 / $1.50 per million.
    @Test func openAIFixture() throws {
        let response = try JSONCoding.decode(ChatResponse.self, from: Array(Fixtures.text("openai_text_response_nonstreaming.json").utf8))
        let cost = PriceTable.bundled.cost(provider: "openai", model: response.model, usage: response.usage, at: now)
        let expected1: Double = (15 * 0.5 + 97 * 1.5) / 1_000_000
        #expect(close(cost, expected1))
    }

    /// OpenAI's `prompt_tokens` include the cached ones: only the rest are billed at the input price.
    @Test func openAICachedPromptTokensAreInsidePromptTokens() throws {
        let usage = try JSONCoding.decode(Usage.self, from: Array("""
            {"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050,
             "prompt_tokens_details":{"cached_tokens":400},"completion_tokens_details":{"reasoning_tokens":0}}
            """.utf8))
        let cost = PriceTable.bundled.cost(provider: "openai", model: "gpt-4o", usage: usage, at: now)
        let expected2: Double = (600 * 2.5 + 400 * 1.25 + 50 * 10) / 1_000_000
        #expect(close(cost, expected2))
    }

    /// Anthropic's `input_tokens` leave out cache reads and writes: each part is billed at its own price.
    @Test func anthropicCacheReadsAndWritesAreApart() throws {
        let usage = AnthropicConversion.usage(AnthropicUsage(inputTokens: 100, outputTokens: 20,
                                                             cacheCreationInputTokens: 1000, cacheReadInputTokens: 2000))
        #expect(usage.promptTokens == 3100)
        let cost = PriceTable.bundled.cost(provider: "anthropic", model: "claude-sonnet-4-5", usage: usage, at: now)
        let expected3: Double = (100 * 3 + 2000 * 0.3 + 1000 * 3.75 + 20 * 15) / 1_000_000
        #expect(close(cost, expected3))
    }

    /// Anthropic's recorded answer, priced by an override (its model has no bundled price: no cost at all).
    @Test func anthropicFixture() throws {
        let message = try JSONCoding.decode(AnthropicMessagesResponse.self,
                                            from: Array(Fixtures.text("anthropic_text_response_nonstreaming.json").utf8))
        let response = AnthropicConversion.response(message, requestedModel: "claude-3-haiku-20240307")
        #expect(PriceTable.bundled.cost(provider: "anthropic", model: response.model, usage: response.usage, at: now) == nil)
        let prices = PriceTable.bundled.overriding([ModelPrice(provider: "anthropic", model: "claude-3-haiku-20240307",
                                                               inputPerMillion: 0.25, outputPerMillion: 1.25)])
        let cost = prices.cost(provider: "anthropic", model: response.model, usage: response.usage, at: now)
        let expected4: Double = (16 * 0.25 + 217 * 1.25) / 1_000_000
        #expect(close(cost, expected4))
    }

    /// Bedrock's `inputTokens` leave out cache reads and writes too; the gateway's usage adds them in.
    @Test func bedrockCacheTokens() {
        let usage = BedrockConversion.usage(["inputTokens": 10, "outputTokens": 5, "totalTokens": 45,
                                             "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10])
        #expect(usage.promptTokens == 40 && usage.cachedTokens == 20 && usage.cacheCreationTokens == 10)
        let cost = PriceTable.bundled.cost(provider: "aws-bedrock", model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
                                           usage: usage, at: now)
        let expected5: Double = (10 * 3 + 20 * 0.3 + 10 * 3.75 + 5 * 15) / 1_000_000
        #expect(close(cost, expected5))
    }

    /// Reasoning tokens are billed as output unless priced apart.
    @Test func reasoningTokens() {
        var usage = Usage(promptTokens: 10, completionTokens: 100)
        usage.unknownFields["completion_tokens_details"] = ["reasoning_tokens": 80]
        let plain = ModelPrice(provider: "p", model: "m", inputPerMillion: 1, outputPerMillion: 10)
        let expected6: Double = (10 * 1 + 100 * 10) / 1_000_000
        #expect(close(plain.cost(of: usage), expected6))
        var apart = plain
        apart.reasoningPerMillion = 20
        let expected7: Double = (10 * 1 + 20 * 10 + 80 * 20) / 1_000_000
        #expect(close(apart.cost(of: usage), expected7))
        // Gemini's thoughts are inside the gateway's completion tokens.
        let gemini = GeminiConversion.usage(["promptTokenCount": 10, "candidatesTokenCount": 20, "thoughtsTokenCount": 80])
        #expect(gemini.completionTokens == 100 && gemini.reasoningTokens == 80)
    }

    /// No price, no cost: an unknown model, Ollama (self-hosted), or a call without usage.
    @Test func unpriced() {
        let usage = Usage(promptTokens: 10, completionTokens: 10)
        let prices = PriceTable.bundled
        #expect(prices.cost(provider: "openai", model: "no-such-model", usage: usage, at: now) == nil)
        #expect(prices.cost(provider: "ollama", model: "gpt-4o", usage: usage, at: now) == nil)
        #expect(prices.cost(provider: "openai", model: "gpt-4o", usage: nil, at: now) == nil)
    }

    /// A dated model, a `provider/` prefix and a custom provider find the model's price.
    @Test func lookup() {
        let prices = PriceTable.bundled
        let base = prices.price(provider: "openai", model: "gpt-4o", at: now)
        #expect(base != nil)
        #expect(prices.price(provider: "openai", model: "gpt-4o-2099-01-01", at: now) == base)
        #expect(prices.price(provider: "openai", model: "openai/gpt-4o", at: now) == base)
        #expect(prices.price(provider: "my-proxy", model: "gpt-4o", at: now) == base)
    }

    /// An override replaces the bundled price; a dated one applies from its day on.
    @Test func overridesAndEffectiveDates() {
        let day = Date(timeIntervalSince1970: 1_800_000_000)
        let prices = PriceTable.bundled.overriding([
            ModelPrice(provider: "openai", model: "gpt-4o", inputPerMillion: 1, outputPerMillion: 2),
            ModelPrice(provider: "openai", model: "gpt-4o", inputPerMillion: 3, outputPerMillion: 4, effectiveFrom: day),
            ModelPrice(provider: "ollama", model: "llama3", inputPerMillion: 0.1, outputPerMillion: 0.1),
        ])
        #expect(prices.price(provider: "openai", model: "gpt-4o", at: day.addingTimeInterval(-1))?.inputPerMillion == 1)
        #expect(prices.price(provider: "openai", model: "gpt-4o", at: day)?.inputPerMillion == 3)
        #expect(prices.price(provider: "ollama", model: "llama3", at: day) != nil)
    }
}
