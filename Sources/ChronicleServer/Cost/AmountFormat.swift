import Foundation

/// How amounts in dollars are written in headers and JSON.
enum AmountFormat {
    /// To a billionth of a dollar.
    static func rounded(_ dollars: Double) -> Double { (dollars * 1e9).rounded() / 1e9 }

    /// `0.000123`: fixed-point to a billionth, without trailing zeros.
    static func header(_ dollars: Double) -> String {
        var text = String(format: "%.9f", dollars)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
