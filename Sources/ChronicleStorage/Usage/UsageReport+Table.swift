import Foundation

extension UsageReport {
    /// The report as a plain-text table for a terminal (`chronicle usage`).
    public func table() -> String {
        var header = query.groupBy.map(\.rawValue)
        if query.interval != nil { header.append("bucket") }
        header += ["requests", "errors", "input", "output", "cached", "reasoning", "cost_usd", "p50_ms", "p95_ms"]
        func number(_ value: Double?, digits: Int) -> String { value.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        var lines = [header]
        for row in rows {
            var line = query.groupBy.map { (row.group[$0] ?? nil) ?? "-" }
            if query.interval != nil { line.append(row.bucket.map(RFC3339Text.format) ?? "-") }
            line += [row.requests, row.errors, row.inputTokens, row.outputTokens, row.cachedInputTokens,
                     row.reasoningTokens].map(String.init)
            line += [number(row.costUSD, digits: 6), number(row.latencyP50Ms, digits: 1), number(row.latencyP95Ms, digits: 1)]
            lines.append(line)
        }
        let total = rows.reduce(into: (requests: Int64(0), cost: 0.0, priced: false)) { sum, row in
            sum.requests += row.requests
            if let cost = row.costUSD { sum.cost += cost; sum.priced = true }
        }
        let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        // Text columns are left-aligned, figures right-aligned.
        let textColumns = query.groupBy.count + (query.interval != nil ? 1 : 0)
        var text = lines.map { line in
            line.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column < textColumns ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
        text += "\n\n\(RFC3339Text.format(query.since)) to \(RFC3339Text.format(query.until)): \(total.requests) requests"
        text += total.priced ? String(format: ", $%.6f", total.cost) : ", no priced calls"
        return text + "\n"
    }
}

/// Times in tables, to the second.
enum RFC3339Text {
    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
