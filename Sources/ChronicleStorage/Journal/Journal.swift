#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ChronicleCore
import Foundation
import NIOConcurrencyHelpers

/// The crash journal: every log record is appended to a local file, with one `write()`, before
/// ``LogWriter/record(_:)`` returns, so that a process killed before its queue reached the database loses
/// nothing. The kernel keeps written bytes in its page cache when the process dies, so no sync is needed
/// for that (a power loss is a different matter, and the spill file's syncs do not cover it either).
///
/// The journal is a directory of numbered segments. New records go to the newest one, which is closed at a
/// size and a new one begun. A segment is deleted once every record in it is stored in the database or
/// appended to the spill file; the only bookkeeping is, per segment, how many records were appended and how
/// many have settled since. Segments left by an earlier run are found when the journal opens and are never
/// appended to: the log writer replays them before anything else, then deletes them.
final class Journal: Sendable {
    let directory: String
    /// The size at which the newest segment is closed and a new one begun.
    let segmentBytes: Int

    private struct Segment {
        var appended = 0
        var settled = 0
    }

    private struct State {
        /// The segment new records go to, once one was opened.
        var activeID: UInt64
        var activeDescriptor: Int32 = -1
        var activeBytes = 0
        /// Segments of this run still holding unsettled records, the active one included.
        var segments: [UInt64: Segment] = [:]
        /// Set while appends fail, so that the failure is reported once.
        var broken = false
        /// Holds an exclusive lock on the directory until ``Journal/close()``.
        var lockDescriptor: Int32 = -1
    }

    private let state: NIOLockedValueBox<State>
    /// What an earlier run left, oldest first.
    let leftovers: [String]

    init(directory: String, segmentBytes: Int = 8 * 1024 * 1024) throws {
        self.directory = directory
        self.segmentBytes = max(1024, segmentBytes)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Two processes on one journal would replay and delete each other's live segments: the second one
        // is refused (two gateways on one PostgreSQL started in the same directory each need a path).
        let lockPath = (directory as NSString).appendingPathComponent("lock")
        let descriptor = systemOpen(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StorageError("Cannot open \(lockPath): errno \(errno)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            systemClose(descriptor)
            throw StorageError("The log journal \(directory) is in use by another process; give each gateway its own log_journal_path")
        }
        let found = try FileManager.default.contentsOfDirectory(atPath: directory)
            .compactMap { name in Self.segmentID(name).map { (id: $0, name: name) } }
            .sorted { $0.id < $1.id }
        leftovers = found.map { (directory as NSString).appendingPathComponent($0.name) }
        state = NIOLockedValueBox(State(activeID: (found.last?.id ?? 0) + 1, lockDescriptor: descriptor))
    }

    deinit {
        // A writer dropped without `run()` finishing (a test's simulated crash) leaves its segment for the
        // next start, as a killed process would; only the descriptor goes.
        state.withLockedValue { state in
            if state.activeDescriptor >= 0 { systemClose(state.activeDescriptor) }
            if state.lockDescriptor >= 0 { systemClose(state.lockDescriptor) }
        }
    }

    /// The segment numbered `id`'s file name: numbers sort as names do.
    static func segmentName(_ id: UInt64) -> String {
        let digits = String(id)
        return "segment-" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".journal"
    }

    static func segmentID(_ name: String) -> UInt64? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".journal") else { return nil }
        return UInt64(name.dropFirst("segment-".count).dropLast(".journal".count))
    }

    /// Encodes `entry` and appends it; returns the segment it went to, to be passed to ``settle(_:)`` once
    /// the record is stored or spilled.
    func append(_ entry: LogEntry, wallTime: Date) throws -> UInt64 {
        var frame = JournalFrame.begin(reservingCapacity: entry.approximateBytes)
        try LogEntryCodec.encode(entry, wallTime: wallTime, into: &frame)
        JournalFrame.finish(&frame.bytes)
        return try append(frame: frame.bytes)
    }

    /// Appends a finished frame with one `write()`; the lock keeps each frame whole and in one segment.
    func append(frame: [UInt8]) throws -> UInt64 {
        try state.withLockedValue { state in
            if state.activeDescriptor >= 0, state.activeBytes + frame.count > segmentBytes,
               state.segments[state.activeID].map({ $0.appended > 0 }) == true {
                rotate(&state)
            }
            if state.activeDescriptor < 0 { try open(&state) }
            try Self.writeAll(frame, to: state.activeDescriptor)
            state.activeBytes += frame.count
            state.segments[state.activeID, default: Segment()].appended += 1
            state.broken = false
            return state.activeID
        }
    }

    /// Reports whether this append failure is the first of a run of them, so that it is logged once.
    func noteFailure() -> Bool {
        state.withLockedValue { state in
            defer { state.broken = true }
            return !state.broken
        }
    }

    /// Counts records as stored (or spilled), by the segment each was appended to; deletes the segments
    /// that were closed and hold nothing unsettled now.
    func settle(_ receipt: JournalReceipt) {
        guard !receipt.isEmpty else { return }
        state.withLockedValue { state in
            for (id, count) in receipt.counts {
                guard var segment = state.segments[id] else { continue }
                segment.settled += count
                if segment.settled >= segment.appended && id != state.activeID {
                    state.segments[id] = nil
                    unlink(path(id))
                } else {
                    state.segments[id] = segment
                }
            }
        }
    }

    /// Closes the active segment, deleting it when everything in it has settled (a clean shutdown leaves no
    /// segment behind), and lets another journal open the directory: the writer has finished.
    func close() {
        state.withLockedValue { state in
            if state.activeDescriptor >= 0 { rotate(&state) }
            if state.lockDescriptor >= 0 {
                systemClose(state.lockDescriptor)
                state.lockDescriptor = -1
            }
        }
    }

    /// The segments of this run that still exist, for tests and monitoring.
    var openSegmentCount: Int { state.withLockedValue { $0.segments.count } }

    private func rotate(_ state: inout State) {
        systemClose(state.activeDescriptor)
        state.activeDescriptor = -1
        let closed = state.activeID
        state.activeID += 1
        state.activeBytes = 0
        if let segment = state.segments[closed], segment.settled >= segment.appended {
            state.segments[closed] = nil
            unlink(path(closed))
        } else if state.segments[closed] == nil {
            unlink(path(closed))
        }
    }

    private func open(_ state: inout State) throws {
        let path = path(state.activeID)
        let descriptor = systemOpen(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StorageError("Cannot create journal segment \(path): errno \(errno)") }
        do {
            try Self.writeAll(JournalFrame.segmentMagic, to: descriptor)
        } catch {
            systemClose(descriptor)
            unlink(path)
            throw error
        }
        state.activeDescriptor = descriptor
        state.activeBytes = JournalFrame.segmentMagic.count
    }

    private func path(_ id: UInt64) -> String {
        (directory as NSString).appendingPathComponent(Self.segmentName(id))
    }

    /// One `write()` in the normal case; a short write (a full disk, a signal) continues where it stopped.
    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) throws {
        try bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw StorageError("Cannot write the journal: errno \(errno)")
                }
                offset += written
            }
        }
    }

    // MARK: Replay

    /// The entries of a segment an earlier run left, in order, with why reading stopped.
    static func read(segment path: String) throws -> (entries: [(entry: LogEntry, wallTime: Date)], end: JournalFrame.End) {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let (payloads, end) = JournalFrame.payloads(in: data)
        var entries: [(entry: LogEntry, wallTime: Date)] = []
        entries.reserveCapacity(payloads.count)
        for (index, payload) in payloads.enumerated() {
            var reader = BinaryReader(data, range: payload)
            do {
                entries.append(try LogEntryCodec.decode(&reader))
            } catch {
                // The checksum matched, so the bytes are as written; a record this build cannot read stops the
                // segment like damage does.
                let offset = index == 0 ? JournalFrame.segmentMagic.count : payloads[index - 1].upperBound
                return (entries, .damaged(offset: offset))
            }
        }
        return (entries, end)
    }

    /// Deletes a replayed segment; a damaged one is kept under another name for inspection, out of the way
    /// of the next replay.
    static func remove(segment path: String, damaged: Bool) {
        if damaged {
            _ = rename(path, path + ".damaged")
        } else {
            unlink(path)
        }
    }
}

/// How many records of each journal segment a batch holds: what it settles once stored.
struct JournalReceipt: Sendable {
    var counts: [UInt64: Int] = [:]

    var isEmpty: Bool { counts.isEmpty }

    mutating func add(_ segment: UInt64?) {
        guard let segment else { return }
        counts[segment, default: 0] += 1
    }

    mutating func add(_ other: JournalReceipt) {
        counts.merge(other.counts, uniquingKeysWith: +)
    }
}

// `open` and `close` are also names of methods here; these reach the C functions.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func systemClose(_ descriptor: Int32) { _ = close(descriptor) }
