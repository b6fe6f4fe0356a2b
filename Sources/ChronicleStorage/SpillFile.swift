import Foundation

/// An append-only file of records that could not be written to the database yet. Records are replayed in
/// order; once all are written the file is emptied.
///
/// Two formats: binary frames (a ``StoredRecordCodec`` payload in a ``JournalFrame``, after a magic
/// header), which the log writer's spill uses so that a large prompt is copied rather than escaped into
/// JSON on the request path; and one JSON document per line, which the dead-letter file keeps so that
/// people can read it. A binary spill file that finds JSON lines left by an earlier version reads them,
/// appends JSON lines behind them to keep one order, and turns binary once it has been emptied.
///
/// It has no lock of its own. It is `Sendable` only so that it can live inside the log writer's locked
/// state, and every access goes through that lock; a dead-letter file is used by one task and dropped.
final class SpillFile: @unchecked Sendable {
    enum Format { case jsonLines, binary }

    /// Written first in a binary spill file.
    static let binaryMagic: [UInt8] = Array("CHRNSPL1".utf8)

    let path: String
    /// The format of the records now in the file.
    private(set) var format: Format
    /// The format an empty file is written in.
    private let preferredFormat: Format
    private var handle: FileHandle?
    /// Where the next unread record starts.
    private var readOffset: UInt64 = 0
    /// The offset just past the records handed out by the last `readBatch`, committed once they are written.
    private var pendingOffset: UInt64 = 0
    private(set) var unreadCount = 0
    /// Set by an append that was not synced yet.
    private var unsynced = false

    init(path: String, format: Format = .jsonLines) throws {
        self.path = path
        preferredFormat = format
        self.format = format
        guard FileManager.default.fileExists(atPath: path) else { return }
        // Count what an earlier run left behind; it is replayed before anything new.
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let start = try handle.read(upToCount: Self.binaryMagic.count) ?? Data()
        if start.elementsEqual(Self.binaryMagic) {
            self.format = .binary
            let (count, wholeEnd) = try Self.countFrames(handle)
            unreadCount = count
            if try handle.seekToEnd() > wholeEnd {
                // A frame cut short by a crash mid-append: cut off, so that later appends follow the last
                // whole frame.
                let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                defer { try? writer.close() }
                try writer.truncate(atOffset: wholeEnd)
            }
        } else if !start.isEmpty {
            self.format = .jsonLines
            var count = start.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                count += data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            }
            unreadCount = count
        }
    }

    /// The whole frames of a binary file, read from its headers, and the offset just past the last one.
    private static func countFrames(_ handle: FileHandle) throws -> (count: Int, end: UInt64) {
        let size = try handle.seekToEnd()
        var offset = UInt64(binaryMagic.count)
        var count = 0
        while true {
            try handle.seek(toOffset: offset)
            guard let header = try handle.read(upToCount: JournalFrame.headerSize),
                  header.count == JournalFrame.headerSize else { break }
            let length = header.prefix(4).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let next = offset + UInt64(JournalFrame.headerSize) + length
            guard length > 0, next <= size else { break }
            offset = next
            count += 1
        }
        return (count, offset)
    }

    var isEmpty: Bool { unreadCount == 0 }

    /// Appends records; with `sync`, durably (the data is synced before this returns), otherwise at the next
    /// ``synchronize()``.
    func append(_ records: [StoredRecord], sync: Bool = true) throws {
        guard !records.isEmpty else { return }
        let handle = try openForWriting()
        var end = try handle.seekToEnd()
        if end > 0, unreadCount == 0 {
            // Only a torn record is left: it must not swallow the start of the next one.
            try handle.truncate(atOffset: 0)
            readOffset = 0
            pendingOffset = 0
            end = 0
        }
        if end == 0 { format = preferredFormat }
        var data = try encode(records, format: format)
        if end == 0, format == .binary { data.insert(contentsOf: Self.binaryMagic, at: 0) }
        try handle.write(contentsOf: data)
        unreadCount += records.count
        unsynced = true
        if sync { synchronize() }
    }

    /// Puts records ahead of the unread ones, which must be newer. The file is rewritten, so this is for
    /// rare moments (a shutdown while the database is down), not the steady state.
    func prepend(_ records: [StoredRecord]) throws {
        guard !records.isEmpty else { return }
        guard unreadCount > 0 else { return try append(records) }
        let newPath = path + ".new"
        var head = try encode(records, format: format)
        if format == .binary { head.insert(contentsOf: Self.binaryMagic, at: 0) }
        guard FileManager.default.createFile(atPath: newPath, contents: head) else {
            throw StorageError("Cannot create \(newPath)")
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: newPath))
        defer { try? output.close() }
        try output.seekToEnd()
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? input.close() }
        try input.seek(toOffset: firstUnreadOffset)
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            try output.write(contentsOf: chunk)
        }
        try output.synchronize()
        close()
        guard rename(newPath, path) == 0 else { throw StorageError("Cannot replace the spill file \(path)") }
        readOffset = 0
        pendingOffset = 0
        pendingLines = 0
        unreadCount += records.count
    }

    /// Makes earlier unsynced appends durable.
    func synchronize() {
        guard unsynced, let handle else { return }
        try? handle.synchronize()
        unsynced = false
    }

    private func encode(_ records: [StoredRecord], format: Format) throws -> Data {
        var data = Data()
        for record in records {
            switch format {
            case .jsonLines:
                data.append(try JSONCoding.encode(record))
                data.append(UInt8(ascii: "\n"))
            case .binary:
                var frame = JournalFrame.begin(reservingCapacity: 1024)
                try StoredRecordCodec.encode(record, into: &frame)
                JournalFrame.finish(&frame.bytes)
                data.append(contentsOf: frame.bytes)
            }
        }
        return data
    }

    /// Where the oldest unread record starts: a binary file's records follow its magic.
    private var firstUnreadOffset: UInt64 {
        format == .binary ? max(readOffset, UInt64(Self.binaryMagic.count)) : readOffset
    }

    /// Up to `limit` unread records, oldest first. Call ``commitRead()`` once they are stored.
    /// - Parameters:
    ///   - limit: the most records to read.
    ///   - byteLimit: the most bytes of lines to read, past the first record.
    func readBatch(limit: Int, byteLimit: Int = .max) throws -> [StoredRecord] {
        guard unreadCount > 0 else { return [] }
        if format == .binary { return try readFrames(limit: limit, byteLimit: byteLimit) }
        let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? reader.close() }
        try reader.seek(toOffset: readOffset)
        var records: [StoredRecord] = []
        var offset = readOffset
        var lines = 0
        var bytes = 0
        var carry = Data()
        reading: while let chunk = try reader.read(upToCount: 1 << 20), !chunk.isEmpty {
            carry.append(chunk)
            var lineStart = carry.startIndex
            while let newline = carry[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = carry[lineStart..<newline]
                if !records.isEmpty, bytes + line.count > byteLimit { break reading }
                bytes += line.count
                offset += UInt64(line.count + 1)
                lines += 1
                // A torn line (a crash mid-append) cannot be read back; it is skipped.
                if let record = try? JSONCoding.decode(StoredRecord.self, from: line) {
                    records.append(record)
                }
                lineStart = carry.index(after: newline)
                if records.count >= limit { break reading }
            }
            carry = Data(carry[lineStart...])
        }
        pendingOffset = offset
        pendingLines = lines
        return records
    }

    /// ``readBatch(limit:byteLimit:)`` of a binary file.
    private func readFrames(limit: Int, byteLimit: Int) throws -> [StoredRecord] {
        let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? reader.close() }
        var offset = firstUnreadOffset
        try reader.seek(toOffset: offset)
        var records: [StoredRecord] = []
        var frames = 0
        var bytes = 0
        while records.count < limit, frames < unreadCount {
            guard let header = try reader.read(upToCount: JournalFrame.headerSize),
                  header.count == JournalFrame.headerSize else { break }
            let length = Int(header.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            if !records.isEmpty, bytes + length > byteLimit { break }
            let payload = [UInt8](try reader.read(upToCount: length) ?? Data())
            guard payload.count == length else { break }
            bytes += length
            offset += UInt64(JournalFrame.headerSize + length)
            frames += 1
            let sum = header.dropFirst(4).prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            // A damaged frame (its checksum does not match) cannot be read back; it is skipped.
            guard payload.withUnsafeBytes(JournalFrame.checksum) == sum else { continue }
            var decoder = BinaryReader(payload)
            if let record = try? StoredRecordCodec.decode(&decoder) { records.append(record) }
        }
        pendingOffset = offset
        pendingLines = frames
        return records
    }

    private var pendingLines = 0

    /// Marks the records of the last ``readBatch(limit:)`` as stored; empties the file once all are.
    func commitRead() {
        readOffset = pendingOffset
        unreadCount = max(0, unreadCount - pendingLines)
        pendingLines = 0
        if unreadCount == 0 {
            readOffset = 0
            pendingOffset = 0
            try? openForWriting().truncate(atOffset: 0)
        }
    }

    private func openForWriting() throws -> FileHandle {
        if let handle { return handle }
        if !FileManager.default.fileExists(atPath: path) {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw StorageError("Cannot create spill file \(path)")
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        self.handle = handle
        return handle
    }

    func close() {
        synchronize()
        try? handle?.close()
        handle = nil
    }
}

import ChronicleCore
