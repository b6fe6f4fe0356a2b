import Foundation

/// Latency percentiles from fixed buckets, so that they can be kept in hourly rollups and added up.
///
/// Buckets grow by a factor of 2^(1/4) (four a doubling) from 1 ms to about 35 minutes, with bounds rounded
/// up to whole milliseconds: below 8 ms every millisecond has its own bucket, so a percentile there is
/// exact; above, a percentile is reported as the middle of its bucket, within 9% of the exact value.
/// Both backends and both the rollups and the raw rows use the same integer bounds, so they report the
/// same figure.
public enum LatencyHistogram {
    /// Each bucket's lowest latency in milliseconds; the first bucket holds 0 ms, the last everything above.
    public static let lowerBounds: [Int64] = {
        var bounds: [Int64] = [0]
        for step in 0...84 {
            let bound = Int64(pow(2.0, Double(step) / 4).rounded(.up))
            if bound > bounds[bounds.count - 1] { bounds.append(bound) }
        }
        return bounds
    }()

    public static var bucketCount: Int { lowerBounds.count }

    /// The bucket of a latency in milliseconds.
    public static func bucket(_ milliseconds: Int64) -> Int {
        var low = 0
        var high = lowerBounds.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lowerBounds[middle] <= milliseconds { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// The value reported for a bucket: its only latency, or the middle of its range.
    public static func value(ofBucket index: Int) -> Double {
        let low = lowerBounds[index]
        let high = index + 1 < lowerBounds.count ? lowerBounds[index + 1] - 1 : low
        return Double(low + high) / 2
    }

    /// The `fraction` percentile (nearest rank) of the latencies counted in `counts`, or nil when none are.
    public static func percentile(_ fraction: Double, of counts: [Int64]) -> Double? {
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = max(1, Int64((fraction * Double(total)).rounded(.up)))
        var seen: Int64 = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return value(ofBucket: index) }
        }
        return value(ofBucket: counts.count - 1)
    }

    /// A SQL expression for the bucket of an integer latency column: a ladder of integer comparisons,
    /// the same on both backends (neither SQLite build here has `log`).
    static func sqlBucket(_ column: String) -> String {
        var sql = "CASE WHEN \(column) IS NULL THEN NULL"
        for index in 1..<lowerBounds.count {
            sql += " WHEN \(column) < \(lowerBounds[index]) THEN \(index - 1)"
        }
        return sql + " ELSE \(lowerBounds.count - 1) END"
    }
}
