/// Percentiles from all samples, sorted once: a 10 s run at 50k req/s is 500k samples, a few MB.
struct Percentiles {
    let sorted: [UInt64]

    init(_ samples: [UInt64]) { sorted = samples.sorted() }

    /// Nearest-rank percentile in microseconds; 0 with no samples.
    func micros(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return Double(sorted[min(max(rank, 1), sorted.count) - 1]) / 1000
    }

    var maxMicros: Double { Double(sorted.last ?? 0) / 1000 }
    var meanMicros: Double {
        sorted.isEmpty ? 0 : Double(sorted.reduce(0, &+)) / Double(sorted.count) / 1000
    }

    func json() -> String {
        "{\"p50\":\(fmt(micros(50))),\"p90\":\(fmt(micros(90))),\"p99\":\(fmt(micros(99))),\"p999\":\(fmt(micros(99.9))),\"max\":\(fmt(maxMicros)),\"mean\":\(fmt(meanMicros))}"
    }

    func text() -> String {
        "p50 \(fmt(micros(50))) p90 \(fmt(micros(90))) p99 \(fmt(micros(99))) p99.9 \(fmt(micros(99.9))) max \(fmt(maxMicros)) µs"
    }
}

/// One decimal is plenty for microseconds and keeps the JSON short and valid (no NaN/inf).
func fmt(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let tenths = (value * 10).rounded()
    let whole = Int(tenths / 10)
    let fraction = Int(abs(tenths.truncatingRemainder(dividingBy: 10)))
    return "\(whole).\(fraction)"
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// The run's summary, as text or as one JSON object (`--json`), which bench/run.sh reads.
func report(options: LoadOptions, result: ShardResult, measuredSeconds: Double, openSeconds: Double?) -> String {
    let latency = Percentiles(result.latencies)
    let ttft = Percentiles(result.ttfts)
    let throughput = measuredSeconds > 0 ? Double(result.completed) / measuredSeconds : 0
    let mode: String
    switch options.mode {
    case .closed: mode = "closed"
    case .open: mode = "open"
    case .openStreams: mode = "open_streams"
    }
    let statusCounts = result.statusCounts.sorted { $0.key < $1.key }
    let bodyMean = result.completed > 0 ? Double(result.bodyBytes) / Double(result.completed) : 0
    if options.json {
        var fields: [String] = [
            "\"mode\":\(jsonString(mode))",
            "\"url\":\(jsonString("http://\(options.host):\(options.port)\(options.path)"))",
            "\"concurrency\":\(options.concurrency)",
            "\"rate\":\(options.rate.map { fmt($0) } ?? "null")",
            "\"duration_s\":\(fmt(options.duration))",
            "\"warmup_s\":\(fmt(options.warmup))",
            "\"stream\":\(options.stream)",
            "\"request_body_bytes\":\(result.requestBodyBytes)",
            "\"requests\":\(result.completed)",
            "\"errors\":\(result.statusErrors + result.connectionErrors)",
            "\"errors_status\":\(result.statusErrors)",
            "\"errors_connection\":\(result.connectionErrors)",
            "\"status_counts\":{\(statusCounts.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ","))}",
            "\"throughput_rps\":\(fmt(throughput))",
            "\"latency_us\":\(latency.json())",
            "\"ttft_us\":\(ttft.json())",
            "\"response_body_bytes_mean\":\(fmt(bodyMean))",
        ]
        if options.mode == .open {
            fields.append("\"scheduled\":\(result.scheduled)")
            fields.append("\"dropped\":\(result.dropped)")
        }
        if let requested = options.openStreams {
            fields += [
                "\"streams_requested\":\(requested)",
                "\"streams_opened\":\(result.streamsOpened)",
                "\"streams_failed\":\(result.streamsFailed)",
                "\"streams_failed_after_open\":\(result.streamsFailedAfterOpen)",
                "\"streams_completed\":\(result.streamsCompleted)",
                "\"open_seconds\":\(fmt(openSeconds ?? 0))",
                "\"hold_s\":\(fmt(options.hold))",
            ]
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
    var lines = [
        "\(mode) loop against http://\(options.host):\(options.port)\(options.path)",
        "requests \(result.completed)  throughput \(fmt(throughput)) req/s  errors: status \(result.statusErrors), connection \(result.connectionErrors)",
        "status codes: " + statusCounts.map { "\($0.key)×\($0.value)" }.joined(separator: " "),
        "latency (TTLT) " + latency.text(),
    ]
    if options.stream || options.mode == .openStreams { lines.append("TTFT " + ttft.text()) }
    if options.mode == .open { lines.append("scheduled \(result.scheduled)  dropped (never started) \(result.dropped)") }
    if let requested = options.openStreams {
        lines.append("streams: requested \(requested), opened \(result.streamsOpened), failed \(result.streamsFailed), "
            + "cut after opening \(result.streamsFailedAfterOpen), completed \(result.streamsCompleted); "
            + "all resolved after \(fmt(openSeconds ?? 0)) s")
    }
    return lines.joined(separator: "\n")
}
