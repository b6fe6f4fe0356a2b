import Foundation

/// Prices by provider and model: the bundled table (``BundledPrices``) with overrides on top.
///
/// A model string is looked up as recorded, then without a leading `provider/`, then without a date
/// suffix (`gpt-4o-2024-08-06` → `gpt-4o`). A provider the bundled table does not know (a custom
/// provider) is priced by the model alone, from the built-in providers' prices; Ollama is self-hosted
/// and has no price unless one is configured. A model with no price has no cost: never a made-up zero.
///
/// ```swift
/// let prices = PriceTable.bundled.overriding([ModelPrice(provider: "openai", model: "gpt-4o",
///                                                        inputPerMillion: 2, outputPerMillion: 8)])
/// let dollars = prices.cost(provider: "openai", model: "gpt-4o", usage: usage, at: Date())
/// ```
public struct PriceTable: Sendable {
    /// provider → model → prices, oldest effective date first (nil, "always", before any date).
    private var byProvider: [String: [String: [ModelPrice]]] = [:]
    /// Providers of the bundled table: their models are never priced from another provider's.
    private var bundledProviders: Set<String> = []
    /// model → the bundled price used for providers the table does not know.
    private var byModel: [String: ModelPrice] = [:]

    /// The bundled table, parsed once when first used.
    public static let bundled: PriceTable = PriceTable(bundled: BundledPrices.parse())
    /// Where the bundled prices come from, and when they were generated.
    public static let bundledSource = BundledPrices.source
    public static let bundledDate = BundledPrices.date

    /// An empty table: nothing is priced.
    public init() {}

    init(bundled prices: [ModelPrice]) {
        // Providers preferred when a custom provider's model is priced by its name alone.
        let preference = ["openai", "anthropic", "gemini", "mistral", "aws-bedrock", "azure", "groq", "together",
                          "fireworks", "deepinfra", "anyscale"]
        for price in prices {
            byProvider[price.provider, default: [:]][price.model, default: []].append(price)
            bundledProviders.insert(price.provider)
        }
        for provider in preference.reversed() {
            for (model, list) in byProvider[provider] ?? [:] { byModel[model] = list.last }
        }
    }

    /// This table with `overrides` added: an override with no date replaces the bundled price; one with a
    /// date applies from that day on.
    public func overriding(_ overrides: [ModelPrice]) -> PriceTable {
        var table = self
        for price in overrides {
            var list = table.byProvider[price.provider, default: [:]][price.model, default: []]
            list.removeAll { $0.effectiveFrom == price.effectiveFrom }
            list.append(price)
            list.sort { ($0.effectiveFrom ?? .distantPast) < ($1.effectiveFrom ?? .distantPast) }
            table.byProvider[price.provider, default: [:]][price.model] = list
        }
        return table
    }

    /// The price in force at `date` for a call recorded with `provider` and `model`, or nil.
    public func price(provider: String?, model: String?, at date: Date) -> ModelPrice? {
        guard let model, !model.isEmpty else { return nil }
        let provider = provider ?? ""
        // The model as recorded is the usual hit: looked up before any other spelling is made.
        if let list = byProvider[provider]?[model], let price = Self.inForce(list, at: date) { return price }
        if let models = byProvider[provider] {
            for candidate in Self.candidates(model, provider: provider).dropFirst() {
                if let list = models[candidate], let price = Self.inForce(list, at: date) { return price }
            }
        }
        guard !bundledProviders.contains(provider), provider != "ollama" else { return nil }
        if let price = byModel[model] { return price }
        for candidate in Self.candidates(model, provider: provider).dropFirst() {
            if let price = byModel[candidate] { return price }
        }
        return nil
    }

    /// The cost of a call in US dollars, or nil when the model has no price or the call reported no usage.
    public func cost(provider: String?, model: String?, usage: Usage?, at date: Date) -> Double? {
        guard let usage, let price = price(provider: provider, model: model, at: date) else { return nil }
        return price.cost(of: usage)
    }

    /// Every price, sorted by provider, model and date.
    public var all: [ModelPrice] {
        byProvider.values.flatMap { $0.values.flatMap { $0 } }.sorted {
            ($0.provider, $0.model, $0.effectiveFrom ?? .distantPast) < ($1.provider, $1.model, $1.effectiveFrom ?? .distantPast)
        }
    }

    private static func inForce(_ list: [ModelPrice], at date: Date) -> ModelPrice? {
        list.last { ($0.effectiveFrom ?? .distantPast) <= date }
    }

    /// The model as recorded, without a leading `provider/`, and without a date suffix.
    static func candidates(_ model: String, provider: String) -> [String] {
        var result = [model]
        if model.hasPrefix(provider + "/") { result.append(String(model.dropFirst(provider.count + 1))) }
        for name in result {
            if let undated = withoutDateSuffix(name) { result.append(undated) }
        }
        return result
    }

    /// `name` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD`, or nil when it has none.
    static func withoutDateSuffix(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.allSatisfy { bytes[$0] >= 48 && bytes[$0] <= 57 } }
        let n = bytes.count
        if n > 11, bytes[n - 11] == UInt8(ascii: "-"), bytes[n - 6] == UInt8(ascii: "-"), bytes[n - 3] == UInt8(ascii: "-"),
           digits(n - 10..<n - 6), digits(n - 5..<n - 3), digits(n - 2..<n) {
            return String(decoding: bytes[..<(n - 11)], as: UTF8.self)
        }
        if n > 9, bytes[n - 9] == UInt8(ascii: "-"), digits(n - 8..<n) {
            return String(decoding: bytes[..<(n - 9)], as: UTF8.self)
        }
        return nil
    }
}

extension BundledPrices {
    /// The table's lines as prices; a malformed line is skipped.
    static func parse() -> [ModelPrice] {
        var prices: [ModelPrice] = []
        prices.reserveCapacity(count)
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 7 else { continue }
            func number(_ index: Int) -> Double? { Double(fields[index]) }
            guard number(2) != nil || number(3) != nil else { continue }
            prices.append(ModelPrice(
                provider: String(fields[0]), model: String(fields[1]), inputPerMillion: number(2) ?? 0,
                outputPerMillion: number(3) ?? 0, cachedInputPerMillion: number(4), cacheWritePerMillion: number(5),
                reasoningPerMillion: number(6)))
        }
        return prices
    }
}

extension PriceTable {
    /// The prices whose provider or model contains `filter` (any case), as a plain-text table for a
    /// terminal (`chronicle prices`): USD per million tokens.
    public func listing(filter: String? = nil) -> String {
        let needle = filter?.lowercased() ?? ""
        let prices = all.filter { needle.isEmpty || $0.provider.lowercased().contains(needle) || $0.model.lowercased().contains(needle) }
        func amount(_ value: Double?) -> String { value.map { String(format: "%g", $0) } ?? "-" }
        var lines = [["provider", "model", "input", "output", "cached_input", "cache_write", "reasoning", "from"]]
        for price in prices {
            let from = price.effectiveFrom.map { ISO8601DateFormatter.string(from: $0, timeZone: TimeZone(secondsFromGMT: 0) ?? .current, formatOptions: [.withFullDate]) } ?? "-"
            lines.append([price.provider, price.model, amount(price.inputPerMillion), amount(price.outputPerMillion),
                          amount(price.cachedInputPerMillion), amount(price.cacheWritePerMillion),
                          amount(price.reasoningPerMillion), from])
        }
        let widths = lines[0].indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        let text = lines.map { line in
            line.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column < 2 || column == 7 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
        return text + "\n\n\(prices.count) prices, USD per million tokens. Bundled: \(Self.bundledSource), generated \(Self.bundledDate).\n"
    }
}
