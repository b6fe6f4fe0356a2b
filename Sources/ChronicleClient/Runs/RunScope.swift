import Foundation

/// The run and step that the current task works in, set by `ChronicleClient.run(_:input:_:)`
/// and `Run.step(_:type:_:)`. A task-local: child tasks (`async let`, task
/// groups, `Task {}`) inherit it; detached tasks do not.
struct RunScope: Sendable, Hashable {
    var runID: UUID
    var stepID: UUID?

    @TaskLocal static var current: RunScope?
}

extension UUID {
    /// A time-ordered UUID (version 7): the gateway's ids are of this kind, and they sort by creation.
    static func v7(now: Date = Date()) -> UUID {
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - UInt64(index)))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}
