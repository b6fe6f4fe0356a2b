import ChronicleCore
import Foundation

/// An amount in a configuration file: TOML writes `5` and `5.0` as different types; both are read.
struct ConfigAmount: Decodable, Sendable, Hashable {
    var value: Double

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let double = try? container.decode(Double.self) {
            value = double
        } else {
            value = Double(try container.decode(Int.self))
        }
    }
}

/// Price overrides (`[[prices]]`) and end-user budgets (`[[budgets]]`) from `chronicle.toml`. Gateway keys'
/// budgets are set on the keys (`max_cost_usd_per_day`, `max_cost_usd_per_month`).
public struct CostSettings: Sendable {
    /// Replace or add to the bundled prices.
    public var prices: [ModelPrice] = []
    public var userBudgets: [String: BudgetLimits] = [:]
    /// The budget of users who have none of their own (`user_id = "*"`).
    public var defaultUserBudget: BudgetLimits?

    public init() {}

    /// The price table calls are priced with: the bundled one under the overrides.
    public var priceTable: PriceTable { PriceTable.bundled.overriding(prices) }

    /// One `[[prices]]` entry: USD per million tokens.
    struct PriceValues: Decodable {
        var provider: String
        var model: String
        var input: ConfigAmount?
        var output: ConfigAmount?
        var cachedInput: ConfigAmount?
        var cacheWrite: ConfigAmount?
        var reasoning: ConfigAmount?
        var perRequest: ConfigAmount?
        /// `YYYY-MM-DD` (UTC): the first day the price applies.
        var effectiveFrom: String?

        enum CodingKeys: String, CodingKey {
            case provider, model, input, output, reasoning
            case cachedInput = "cached_input"
            case cacheWrite = "cache_write"
            case perRequest = "per_request"
            case effectiveFrom = "effective_from"
        }

        func resolve() throws -> ModelPrice {
            let (input, output, cachedInput, cacheWrite, reasoning, perRequest) = (
                self.input?.value, self.output?.value, self.cachedInput?.value, self.cacheWrite?.value,
                self.reasoning?.value, self.perRequest?.value)
            let label = "[[prices]] \(provider)/\(model)"
            guard input != nil || output != nil || perRequest != nil else {
                throw ConfigurationError("\(label): set input, output or per_request (USD per million tokens)")
            }
            for (name, value) in [("input", input), ("output", output), ("cached_input", cachedInput),
                                  ("cache_write", cacheWrite), ("reasoning", reasoning), ("per_request", perRequest)] {
                if let value, !(value >= 0 && value.isFinite) {
                    throw ConfigurationError("\(label): \(name) must be a number of dollars, 0 or more")
                }
            }
            var date: Date?
            if let text = effectiveFrom {
                guard let parsed = RFC3339.parse(text + "T00:00:00Z") ?? RFC3339.parse(text) else {
                    throw ConfigurationError("\(label): effective_from must be a date, YYYY-MM-DD")
                }
                date = parsed
            }
            return ModelPrice(provider: provider, model: model, inputPerMillion: input ?? 0,
                              outputPerMillion: output ?? 0, cachedInputPerMillion: cachedInput,
                              cacheWritePerMillion: cacheWrite, reasoningPerMillion: reasoning,
                              perRequest: perRequest ?? 0, effectiveFrom: date)
        }
    }

    /// One `[[budgets]]` entry.
    struct BudgetValues: Decodable {
        /// An end user's id (`metadata.user_id`, `x-chronicle-user-id`), or `*` for every user without one.
        var userID: String
        var maxCostUSDPerDay: ConfigAmount?
        var maxCostUSDPerMonth: ConfigAmount?

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case maxCostUSDPerDay = "max_cost_usd_per_day"
            case maxCostUSDPerMonth = "max_cost_usd_per_month"
        }
    }

    mutating func apply(prices: [PriceValues], budgets: [BudgetValues]) throws {
        for value in prices {
            let price = try value.resolve()
            self.prices.removeAll { $0.provider == price.provider && $0.model == price.model && $0.effectiveFrom == price.effectiveFrom }
            self.prices.append(price)
        }
        for budget in budgets {
            let limits = BudgetLimits(perDay: budget.maxCostUSDPerDay?.value, perMonth: budget.maxCostUSDPerMonth?.value)
            try Self.check(limits, label: "[[budgets]] user_id \"\(budget.userID)\"")
            if budget.userID == "*" { defaultUserBudget = limits } else { userBudgets[budget.userID] = limits }
        }
    }

    static func check(_ limits: BudgetLimits, label: String) throws {
        guard !limits.isEmpty else {
            throw ConfigurationError("\(label): set max_cost_usd_per_day or max_cost_usd_per_month")
        }
        for (name, value) in [("max_cost_usd_per_day", limits.perDay), ("max_cost_usd_per_month", limits.perMonth)] {
            if let value, !(value > 0 && value.isFinite) {
                throw ConfigurationError("\(label): \(name) must be a positive number of dollars")
            }
        }
    }
}
