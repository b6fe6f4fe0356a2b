#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to fd 1 and 2: the C `stdout`/`stderr` globals are not concurrency-safe in Swift 6,
/// and run.sh waits for the tools' "listening" lines, so they must not sit in a buffer.
public enum Output {
    public static func standardOutput(_ text: String) { writeAll(1, text) }
    public static func standardError(_ text: String) { writeAll(2, text) }

    private static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }
}

/// Raises the soft open-file limit to the hard limit: benchmarks hold 1,000+ sockets at once (two per
/// client in a relay) and the common soft default (1,024) would fail with EMFILE.
public func raiseFileDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Whole-file read with stdio: keeps the tools free of Foundation.
public func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count { return ferror(file) == 0 ? bytes : nil }
    }
}

public func writeFile(_ path: String, contents: String) -> Bool {
    guard let file = fopen(path, "wb") else { return false }
    defer { fclose(file) }
    return fputs(contents, file) >= 0
}
