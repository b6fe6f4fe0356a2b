#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Command-line options. Parsed by hand: the tool depends on swift-nio only, to build fast.
struct FloorOptions {
    var host = "127.0.0.1"
    var port = 9793
    var upstreamHost = "127.0.0.1"
    var upstreamPort = 8089

    static let usage = "usage: ChronicleFloor [--host 127.0.0.1] [--port 9793] [--upstream 127.0.0.1:8089]"

    static func parse(_ arguments: [String]) -> Result<FloorOptions, ArgumentError> {
        var options = FloorOptions()
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            switch flag {
            case "--host":
                guard let value = rest.popFirst(), !value.isEmpty else { return .failure(ArgumentError("--host needs a value")) }
                options.host = value
            case "--port":
                guard let value = rest.popFirst(), let port = Int(value), (0...65535).contains(port) else {
                    return .failure(ArgumentError("--port needs a number 0-65535"))
                }
                options.port = port
            case "--upstream":
                // host:port, split at the last colon so the host part may itself hold none.
                guard let value = rest.popFirst(), let colon = value.lastIndex(of: ":"),
                      let port = Int(value[value.index(after: colon)...]), (1...65535).contains(port),
                      colon != value.startIndex
                else {
                    return .failure(ArgumentError("--upstream needs host:port"))
                }
                options.upstreamHost = String(value[..<colon])
                options.upstreamPort = port
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                return .failure(ArgumentError("unknown argument \(flag)"))
            }
        }
        return .success(options)
    }
}

struct ArgumentError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
