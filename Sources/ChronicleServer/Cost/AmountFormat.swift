import Foundation

/// How amounts in dollars are written in headers and JSON.
enum AmountFormat {
    /// To a billionth of a dollar.
    static func rounded(_ dollars: Double) -> Double { (dollars * 1e9).rounded() / 1e9 }

    /// `0.000123`: fixed-point to a billionth, without trailing zeros. Written from whole billionths rather
    /// than through `String(format:)`, since every non-streamed answer carries one.
    static func header(_ dollars: Double) -> String {
        let billionths = (dollars * 1e9).rounded()
        // Beyond what whole billionths in 63 bits hold (or not a number), the general formatter.
        guard billionths.isFinite, abs(billionths) < 9e18 else {
            var text = String(format: "%.9f", dollars)
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
            return text
        }
        let amount = Int64(billionths)
        let magnitude = amount.magnitude
        var text = amount < 0 ? "-" : ""
        text += String(magnitude / 1_000_000_000)
        var fraction = magnitude % 1_000_000_000
        guard fraction != 0 else { return text }
        var digits = 9
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let written = String(fraction)
        text += "." + String(repeating: "0", count: digits - written.count) + written
        return text
    }
}
