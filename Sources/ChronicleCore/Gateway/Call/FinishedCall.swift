/// A call as its subscribers see it once it has finished: its record and what only the live call knew.
///
/// Subscribe with ``Gateway/Builder/onCallFinished(_:)``. Subscribers run synchronously on the request
/// path as the call finishes — for a server, before the client has the last bytes of its answer — so they
/// must return at once (count, enqueue, never wait).
public struct FinishedCall: Sendable {
    /// What is stored: request, answer (kept as the upstream's bytes where it was relayed), timing, error.
    public let record: CallLogRecord
    /// The caller's context, as given to ``GatewayCall/init(context:finishedBy:now:)``: the name of the gateway
    /// key that made the call, for per-key accounting.
    public let context: GatewayCall.Context
    /// From acceptance to the first chunk (or complete answer), for a call that got one.
    public let timeToFirstEvent: Duration?
    /// True when nobody finished the call and it was finished as its last reference went (an embedder
    /// that dropped its ``ChatStream`` part-way); it is then recorded as cancelled.
    public let finishedOnRelease: Bool

    /// The answer's token usage, read without decoding a relayed answer.
    public var usage: Usage? { record.usage }
}
