import Foundation

/// An append-only file of records (one JSON document per line) that could not be written to the database
/// yet. Records are replayed in order; once all are written the file is emptied. Owned by one task.
final class SpillFile {
    let path: String
    private var handle: FileHandle?
    /// Where the next unread record starts.
    private var readOffset: UInt64 = 0
    /// The offset just past the records handed out by the last `readBatch`, committed once they are written.
    private var pendingOffset: UInt64 = 0
    private(set) var unreadCount = 0

    init(path: String) throws {
        self.path = path
        if FileManager.default.fileExists(atPath: path) {
            // Count what an earlier run left behind; it is replayed before anything new.
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            var count = 0
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                count += data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            }
            unreadCount = count
        }
    }

    var isEmpty: Bool { unreadCount == 0 }

    /// Appends records durably (the data is synced before this returns).
    func append(_ records: [StoredRecord]) throws {
        guard !records.isEmpty else { return }
        var data = Data()
        for record in records {
            data.append(try JSONCoding.encode(record))
            data.append(UInt8(ascii: "\n"))
        }
        let handle = try openForWriting()
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
        try handle.synchronize()
        unreadCount += records.count
    }

    /// Up to `limit` unread records, oldest first. Call ``commitRead()`` once they are stored.
    func readBatch(limit: Int) throws -> [StoredRecord] {
        guard unreadCount > 0 else { return [] }
        let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? reader.close() }
        try reader.seek(toOffset: readOffset)
        var records: [StoredRecord] = []
        var offset = readOffset
        var lines = 0
        var carry = Data()
        reading: while let chunk = try reader.read(upToCount: 1 << 20), !chunk.isEmpty {
            carry.append(chunk)
            var lineStart = carry.startIndex
            while let newline = carry[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = carry[lineStart..<newline]
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
        try? handle?.close()
        handle = nil
    }
}

import ChronicleCore
