import Foundation

/// An append-only file of records (one JSON document per line) that could not be written to the database
/// yet. Records are replayed in order; once all are written the file is emptied.
///
/// It has no lock of its own. It is `Sendable` only so that it can live inside the log writer's locked
/// state, and every access goes through that lock; a dead-letter file is used by one task and dropped.
final class SpillFile: @unchecked Sendable {
    let path: String
    private var handle: FileHandle?
    /// Where the next unread record starts.
    private var readOffset: UInt64 = 0
    /// The offset just past the records handed out by the last `readBatch`, committed once they are written.
    private var pendingOffset: UInt64 = 0
    private(set) var unreadCount = 0
    /// Set by an append that was not synced yet.
    private var unsynced = false

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

    /// Appends records; with `sync`, durably (the data is synced before this returns), otherwise at the next
    /// ``synchronize()``.
    func append(_ records: [StoredRecord], sync: Bool = true) throws {
        guard !records.isEmpty else { return }
        let data = try Self.encode(records)
        let handle = try openForWriting()
        try handle.seekToEnd()
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
        guard FileManager.default.createFile(atPath: newPath, contents: try Self.encode(records)) else {
            throw StorageError("Cannot create \(newPath)")
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: newPath))
        defer { try? output.close() }
        try output.seekToEnd()
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? input.close() }
        try input.seek(toOffset: readOffset)
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

    private static func encode(_ records: [StoredRecord]) throws -> Data {
        var data = Data()
        for record in records {
            data.append(try JSONCoding.encode(record))
            data.append(UInt8(ascii: "\n"))
        }
        return data
    }

    /// Up to `limit` unread records, oldest first. Call ``commitRead()`` once they are stored.
    /// - Parameters:
    ///   - limit: the most records to read.
    ///   - byteLimit: the most bytes of lines to read, past the first record.
    func readBatch(limit: Int, byteLimit: Int = .max) throws -> [StoredRecord] {
        guard unreadCount > 0 else { return [] }
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
