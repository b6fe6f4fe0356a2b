#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to fd 1 and 2: the C `stdout`/`stderr` globals are not concurrency-safe in Swift 6,
/// and the "listening" line must reach a log file at once, not sit in a buffer.
enum Output {
    static func standardOutput(_ text: String) { writeAll(1, text) }
    static func standardError(_ text: String) { writeAll(2, text) }

    private static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }
}

/// Raises the soft open-file limit to the hard limit: a relay holds two sockets per client and the
/// common soft default (1,024) would fail with EMFILE.
func raiseFileDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
