import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds `"stream"` `:` `true` (whitespace allowed around the colon) in a body that arrives in pieces.
///
/// A byte-level state machine instead of JSON decoding: the mock must read 1 MB prompts without becoming
/// the bottleneck, and the key may sit anywhere in the body, split across reads. Between candidates it
/// jumps to the next quote with `memchr`, so long prompt text costs close to nothing.
struct StreamFlagScanner {
    private enum State {
        case key(Int)  // matched this many bytes of `"stream"`
        case beforeColon
        case afterColon
        case value(Int)  // matched this many bytes of `true`
    }

    private static let quote = UInt8(ascii: "\"")
    private var state = State.key(0)
    private(set) var found = false

    mutating func reset() {
        state = .key(0)
        found = false
    }

    mutating func scan(_ buffer: ByteBuffer) {
        guard !found else { return }
        buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            var index = 0
            while index < bytes.count {
                if case .key(0) = state {
                    guard let next = memchr(base + index, Int32(Self.quote), bytes.count - index) else { return }
                    index = base.distance(to: UnsafeRawPointer(next)) + 1
                    state = .key(1)
                    continue
                }
                step(bytes[index])
                index += 1
                if found { return }
            }
        }
    }

    /// Byte `n` of `"stream"`; a switch rather than a static array, which would cost a `swift_once` per byte.
    @inline(__always) private static func keyByte(_ n: Int) -> UInt8 {
        switch n {
        case 0, 7: return quote
        case 1: return UInt8(ascii: "s")
        case 2: return UInt8(ascii: "t")
        case 3: return UInt8(ascii: "r")
        case 4: return UInt8(ascii: "e")
        case 5: return UInt8(ascii: "a")
        default: return UInt8(ascii: "m")
        }
    }

    @inline(__always) private static func valueByte(_ n: Int) -> UInt8 {
        switch n {
        case 0: return UInt8(ascii: "t")
        case 1: return UInt8(ascii: "r")
        case 2: return UInt8(ascii: "u")
        default: return UInt8(ascii: "e")
        }
    }

    private mutating func step(_ byte: UInt8) {
        switch state {
        case .key(let n):
            if byte == Self.keyByte(n) {
                state = n == 7 ? .beforeColon : .key(n + 1)
            } else {
                restart(byte)
            }
        case .beforeColon:
            if byte == UInt8(ascii: ":") { state = .afterColon } else if !Self.isSpace(byte) { restart(byte) }
        case .afterColon:
            if byte == Self.valueByte(0) { state = .value(1) } else if !Self.isSpace(byte) { restart(byte) }
        case .value(let n):
            if byte == Self.valueByte(n) {
                if n == 3 { found = true } else { state = .value(n + 1) }
            } else {
                restart(byte)
            }
        }
    }

    private mutating func restart(_ byte: UInt8) {
        state = .key(byte == Self.quote ? 1 : 0)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }
}
