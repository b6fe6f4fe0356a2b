import Foundation

/// How one record sits in a journal segment: its payload's length, a checksum of the payload, then the
/// payload.
///
/// A crash can stop a write part way; what it leaves at the end of a segment is then either too short to
/// hold its header or shorter than its header says, and is told apart from a whole record by that alone.
/// A whole-length frame whose checksum does not match is damage, not a torn write.
enum JournalFrame {
    /// Length (4 bytes) and checksum (8 bytes), little-endian.
    static let headerSize = 12
    /// Written first in every segment, so that a file that is not a journal segment is never read as one.
    static let segmentMagic: [UInt8] = Array("CHRNJRN1".utf8)
    /// No record the gateway writes comes near this; a larger length is damage.
    static let maxPayload = 1 << 31 - 1

    /// Starts a frame: room for the header, then the payload is written after it.
    static func begin(reservingCapacity capacity: Int) -> BinaryWriter {
        var writer = BinaryWriter(reservingCapacity: headerSize + capacity)
        writer.bytes.append(contentsOf: repeatElement(0, count: headerSize))
        return writer
    }

    /// Fills in the header of a frame started by ``begin(reservingCapacity:)``.
    static func finish(_ frame: inout [UInt8]) {
        let length = UInt32(truncatingIfNeeded: frame.count - headerSize)
        let sum = frame.withUnsafeBytes { checksum(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
        withUnsafeBytes(of: length.littleEndian) { raw in
            for index in 0..<4 { frame[index] = raw[index] }
        }
        withUnsafeBytes(of: sum.littleEndian) { raw in
            for index in 0..<8 { frame[4 + index] = raw[index] }
        }
    }

    /// A 64-bit hash of `bytes`, seeded with their count, eight bytes per step.
    ///
    /// Not cryptographic: it detects damaged or partly written records. Each step is a bijection of the
    /// running hash for a given word, so a change in any one word always changes the result; the count in
    /// the seed makes missing trailing zeros count too. A byte-at-a-time CRC-32 would cost several times
    /// as much on the request path for a large prompt.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        var offset = 0
        while offset + 8 <= bytes.count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            hash = (hash ^ word) &* 0xFF51_AFD7_ED55_8CCD
            hash ^= hash >> 32
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count {
            tail |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        hash = (hash ^ tail ^ 0xFF) &* 0xC4CE_B9FE_1A85_EC53
        hash ^= hash >> 29
        return hash
    }

    /// Why reading a segment stopped.
    enum End: Equatable {
        /// Every byte was read.
        case complete
        /// The last frame was cut short: a crash during its write. It never counted as recorded.
        case tornTail(offset: Int)
        /// A frame's checksum or content is wrong; what follows it is not read.
        case damaged(offset: Int)
        /// The file does not start as a journal segment.
        case notASegment
    }

    /// The payloads of a segment's whole frames, in order, up to the first torn or damaged one.
    static func payloads(in data: [UInt8]) -> (payloads: [Range<Int>], end: End) {
        guard data.count >= segmentMagic.count else {
            // A crash between creating the file and writing its magic leaves fewer bytes: nothing recorded.
            return ([], data.isEmpty || segmentMagic.starts(with: data) ? .complete : .notASegment)
        }
        guard data.starts(with: segmentMagic) else { return ([], .notASegment) }
        var payloads: [Range<Int>] = []
        var offset = segmentMagic.count
        return data.withUnsafeBytes { bytes in
            while offset < bytes.count {
                guard bytes.count - offset >= headerSize else { return (payloads, .tornTail(offset: offset)) }
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let sum = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self))
                guard length > 0, length <= maxPayload else { return (payloads, .damaged(offset: offset)) }
                let start = offset + headerSize
                guard bytes.count - start >= length else { return (payloads, .tornTail(offset: offset)) }
                guard checksum(UnsafeRawBufferPointer(rebasing: bytes[start..<start + length])) == sum else {
                    return (payloads, .damaged(offset: offset))
                }
                payloads.append(start..<start + length)
                offset = start + length
            }
            return (payloads, .complete)
        }
    }
}
