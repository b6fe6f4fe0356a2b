@testable import ChronicleServer
import Foundation
import Testing

@Suite struct AmountFormatTests {
    /// The cost header: fixed-point to a billionth of a dollar, no trailing zeros, no exponent.
    @Test(arguments: [
        (0.0, "0"), (0.000153, "0.000153"), (1.5, "1.5"), (12, "12"), (0.0000000004, "0"), (1e-9, "0.000000001"),
        (123.456789012, "123.456789012"), (0.00027525, "0.00027525"), (1e12, "1000000000000"), (-0.25, "-0.25"),
    ])
    func header(dollars: Double, text: String) {
        #expect(AmountFormat.header(dollars) == text)
    }

    /// The same text as the general formatter gives, over many amounts of every size a call costs.
    @Test func matchesTheGeneralFormatter() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let dollars = Double.random(in: 0..<1, using: &generator) * pow(10, Double(Int.random(in: -9...4, using: &generator)))
            // Halfway between two billionths the two round by different rules; such amounts are left out.
            let billionths = dollars * 1e9
            if abs(billionths - billionths.rounded(.down) - 0.5) < 1e-6 { continue }
            var expected = String(format: "%.9f", dollars)
            while expected.hasSuffix("0") { expected.removeLast() }
            if expected.hasSuffix(".") { expected.removeLast() }
            #expect(AmountFormat.header(dollars) == expected, "\(dollars)")
        }
    }
}
