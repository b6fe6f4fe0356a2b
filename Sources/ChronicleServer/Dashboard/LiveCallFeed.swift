import ChronicleCore
import ChronicleStorage
import NIOConcurrencyHelpers

/// Hands each batch of calls the database has just committed to the live tail's subscribers
/// (`GET /v1/calls/tail`). Wire ``publish(_:)`` to ``LogWriter/Configuration/onStored``: a call is announced
/// only once it can be read back, so a click on it in the dashboard opens it.
///
/// Each subscriber has a bounded buffer of batches: a subscriber that reads too slowly loses the oldest
/// batches rather than holding memory or slowing the writer.
public final class LiveCallFeed: Sendable {
    /// Batches kept for one subscriber that has not read them yet.
    public static let bufferedBatches = 256

    private struct Subscribers {
        var next = 0
        var continuations: [Int: AsyncStream<[JSONValue]>.Continuation] = [:]
    }

    private let subscribers = NIOLockedValueBox(Subscribers())

    public init() {}

    /// How many clients are watching.
    public var subscriberCount: Int { subscribers.withLockedValue { $0.continuations.count } }

    /// Announces the LLM calls among `records` (as `GET /v1/calls` lists them). Costs nothing without
    /// subscribers.
    public func publish(_ records: [StoredRecord]) {
        let continuations = subscribers.withLockedValue { Array($0.continuations.values) }
        guard !continuations.isEmpty else { return }
        let calls = records.compactMap { record -> JSONValue? in
            guard case .event(let row) = record, row.isCall else { return nil }
            return row.summaryJSON
        }
        guard !calls.isEmpty else { return }
        for continuation in continuations { continuation.yield(calls) }
    }

    /// A stream of batches of new calls, until `cancel` is called or the stream is dropped.
    func subscribe() -> (stream: AsyncStream<[JSONValue]>, cancel: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream.makeStream(
            of: [JSONValue].self, bufferingPolicy: .bufferingNewest(Self.bufferedBatches))
        let id = subscribers.withLockedValue { state -> Int in
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        let remove: @Sendable () -> Void = { [subscribers] in
            let removed = subscribers.withLockedValue { $0.continuations.removeValue(forKey: id) }
            removed?.finish()
        }
        continuation.onTermination = { _ in remove() }
        return (stream, remove)
    }
}
