import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Command-line options. Parsed by hand: the tool depends on swift-nio only, to build fast.
struct LoadOptions: Sendable {
    enum Mode: Sendable { case closed, open, openStreams }

    var host = "127.0.0.1"
    var port = 8089
    var path = "/v1/chat/completions"
    var concurrency = 1
    var concurrencyGiven = false
    var rate: Double?
    var duration = 10.0
    var warmup = 1.0
    var bodyFile: String?
    var model = "bench/gpt"
    var headers: [(String, String)] = []
    var stream = false
    var openStreams: Int?
    var hold = 5.0
    var readyFile: String?
    var openTimeout = 30.0
    var json = false

    var mode: Mode {
        if openStreams != nil { return .openStreams }
        return rate != nil ? .open : .closed
    }

    static let usage = """
        usage: ChronicleLoad --url http://127.0.0.1:8089/v1/chat/completions
                             [--concurrency C | --rate R [--concurrency MAX_CONNECTIONS]]
                             [--duration S] [--warmup S] [--body-file PATH | --model NAME] [--stream]
                             [--header 'name: value']... [--open-streams N --hold S [--ready-file PATH]] [--json]
          --concurrency C   closed loop: C keep-alive connections, each sends the next request when the
                            previous response has fully arrived (with --rate: the connection pool's cap, default 1000)
          --rate R          open loop: start R requests/s on schedule whatever the completions; latency is
                            measured from the scheduled start (no coordinated omission)
          --stream          default body asks for an SSE stream; reports TTFT (first body byte) and TTLT
          --body-file PATH  request body as is (must contain "stream":true for streams)
          --model NAME      model of the default body (default bench/gpt)
          --open-streams N  open N streaming requests at once, hold them S seconds (--hold), report how many
                            opened; --ready-file PATH is created once all have opened (or failed)
          --open-timeout S  how long --open-streams waits for first bytes (default 30)
        Needs one file descriptor per connection: the soft `ulimit -n` is raised to the hard limit at start.
        """

    static func parse(_ arguments: [String]) -> Result<LoadOptions, ArgumentError> {
        var o = LoadOptions()
        var rest = arguments[...]
        func value(_ flag: String) throws(ArgumentError) -> String {
            guard let v = rest.popFirst() else { throw ArgumentError("\(flag) needs a value") }
            return v
        }
        func number(_ flag: String, minimum: Double) throws(ArgumentError) -> Double {
            guard let v = Double(try value(flag)), v.isFinite, v >= minimum else {
                throw ArgumentError("\(flag) needs a number >= \(minimum)")
            }
            return v
        }
        func integer(_ flag: String, minimum: Int) throws(ArgumentError) -> Int {
            guard let v = Int(try value(flag)), v >= minimum else { throw ArgumentError("\(flag) needs an integer >= \(minimum)") }
            return v
        }
        do throws(ArgumentError) {
            while let flag = rest.popFirst() {
                switch flag {
                case "--url": try o.setURL(try value(flag))
                case "--concurrency", "-c":
                    o.concurrency = try integer(flag, minimum: 1)
                    o.concurrencyGiven = true
                case "--rate": o.rate = try number(flag, minimum: 0.001)
                case "--duration": o.duration = try number(flag, minimum: 0.001)
                case "--warmup": o.warmup = try number(flag, minimum: 0)
                case "--body-file": o.bodyFile = try value(flag)
                case "--model": o.model = try value(flag)
                case "--header", "-H":
                    let text = try value(flag)
                    guard let colon = text.firstIndex(of: ":") else { throw ArgumentError("--header wants 'name: value'") }
                    let name = text[..<colon].trimmingSpaces
                    guard !name.isEmpty else { throw ArgumentError("--header wants 'name: value'") }
                    o.headers.append((name, text[text.index(after: colon)...].trimmingSpaces))
                case "--stream": o.stream = true
                case "--open-streams": o.openStreams = try integer(flag, minimum: 1)
                case "--hold": o.hold = try number(flag, minimum: 0)
                case "--ready-file": o.readyFile = try value(flag)
                case "--open-timeout": o.openTimeout = try number(flag, minimum: 0.001)
                case "--json": o.json = true
                case "-h", "--help":
                    print(usage)
                    exit(0)
                default: throw ArgumentError("unknown argument \(flag)")
                }
            }
        } catch {
            return .failure(error)
        }
        return .success(o)
    }

    /// Only plain `http://host[:port]/path`: the tool benchmarks loopback servers.
    private mutating func setURL(_ url: String) throws(ArgumentError) {
        guard url.hasPrefix("http://") else { throw ArgumentError("--url must start with http://") }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":") {
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
                throw ArgumentError("bad port in --url")
            }
            host = String(authority[..<colon])
            port = p
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { throw ArgumentError("no host in --url") }
    }
}

struct ArgumentError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

/// What every request of a run sends, built once: the body buffer is shared by all writes (no copies).
struct RequestTemplate: Sendable {
    let head: HTTPRequestHead
    let body: ByteBuffer

    init(options: LoadOptions, body bodyBytes: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "\(options.host):\(options.port)")
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(bodyBytes.count))
        if options.stream || options.mode == .openStreams { headers.add(name: "accept", value: "text/event-stream") }
        for (name, value) in options.headers { headers.replaceOrAdd(name: name, value: value) }
        head = HTTPRequestHead(version: .http1_1, method: .POST, uri: options.path, headers: headers)
        body = ByteBuffer(bytes: bodyBytes)
    }

    static func defaultBody(model: String, stream: Bool) -> [UInt8] {
        let escaped = model.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
        let streamField = stream ? #","stream":true"# : ""
        return Array(#"{"model":"\#(escaped)","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Who was Lassie? Answer in one paragraph."}],"max_tokens":256\#(streamField)}"#.utf8)
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
