import ChronicleCore
import CoreMetrics
import Foundation

/// Prices calls as they finish, from the in-memory price table: charges their key's and user's budgets and
/// counts `chronicle_cost_usd_total{provider,model}`, or `chronicle_unpriced_calls_total{provider,model}`
/// for a call whose model has no price. The stored `cost_usd` is computed again by the log writer, off the
/// request path, from the same table.
public final class CostTracker: Sendable {
    public let prices: PriceTable
    public let budgets: Budgets
    private let metricsFactory: (any MetricsFactory)?

    public init(prices: PriceTable = .bundled, budgets: Budgets = Budgets(), metricsFactory: (any MetricsFactory)? = nil) {
        self.prices = prices
        self.budgets = budgets
        self.metricsFactory = metricsFactory
    }

    public enum Metric {
        public static let cost = "chronicle_cost_usd_total"
        public static let unpriced = "chronicle_unpriced_calls_total"
    }

    /// What a finished call cost, or nil when its model has no price or it reported no usage.
    public func cost(of billing: GatewayCall.Billing) -> Double? {
        prices.cost(provider: billing.provider, model: billing.model, usage: billing.usage, at: billing.acceptedAt)
    }

    /// A call subscriber (``Gateway/Builder/trackingCost(_:)``); returns at once.
    public func finished(_ call: FinishedCall) {
        let record = call.record
        guard let usage = record.usage else { return }
        let model = record.responseModel ?? record.model ?? record.request.model
        func dimensions() -> [(String, String)] { [("provider", record.provider ?? ""), ("model", model ?? "")] }
        guard let price = prices.price(provider: record.provider, model: model, at: record.timestamp) else {
            if let metricsFactory {
                Counter(label: Metric.unpriced, dimensions: dimensions(), factory: metricsFactory).increment()
            }
            return
        }
        let dollars = price.cost(of: usage)
        if let metricsFactory, dollars > 0 {
            FloatingPointCounter(label: Metric.cost, dimensions: dimensions(), factory: metricsFactory).increment(by: dollars)
        }
        budgets.charge(dollars, gatewayKey: call.context.gatewayKeyName ?? record.options.internalMetadata.gatewayKey,
                       userID: record.options.metadata.userID)
    }
}

extension Gateway.Builder {
    /// Prices each finished call for budgets and the cost metrics; needed for budgets to count spend.
    public func trackingCost(_ tracker: CostTracker) -> Gateway.Builder {
        onCallFinished { tracker.finished($0) }
    }
}
