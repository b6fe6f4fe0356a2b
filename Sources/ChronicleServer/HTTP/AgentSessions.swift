import ChronicleCore
import Crypto
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers

/// A coding agent's session, read from the headers the agent sends on every call, and the run (and, for a
/// sub-agent, the step) it maps to.
///
/// The ids are derived from the agent and the session alone, so that every replica, and the same replica
/// after a restart, attaches a session's calls to the same run.
struct AgentSession: Sendable, Hashable {
    /// The agents whose session headers are read; the raw value names the run.
    enum Agent: String, Sendable {
        case claudeCode = "claude-code"
        case openCode = "opencode"
        case qwenCode = "qwen-code"
    }

    /// The longest session or agent id accepted, in bytes. Real ids are UUIDs or similar; a longer value is
    /// not a session, so that a hostile header cannot make the gateway store or hash megabytes per call.
    static let maxIDLength = 256

    let agent: Agent
    /// The session the run belongs to: for a sub-agent, its parent's session.
    let sessionID: String
    /// The sub-agent the call comes from (Claude Code's agent id, or OpenCode's child session), if any.
    let subAgentID: String?

    /// The run every call of the session is attached to.
    var runID: UUID { Self.nameBasedUUID(["run", agent.rawValue, sessionID]) }

    /// The step under the run that a sub-agent's calls are attached to.
    var stepID: UUID? { subAgentID.map { Self.nameBasedUUID(["step", agent.rawValue, sessionID, $0]) } }

    /// The session the headers name, or `nil` when they name none. Claude Code's headers are read first,
    /// then OpenCode's, then Qwen Code's. A value that is empty, too long, or not visible ASCII is ignored:
    /// the call goes on, unattached.
    static func read(_ headers: HTTPFields) -> AgentSession? {
        func value(_ name: String) -> String? {
            guard let field = HTTPField.Name(name) else { return nil }
            return acceptable(headers[field])
        }
        if let session = value("x-claude-code-session-id") {
            return AgentSession(agent: .claudeCode, sessionID: session, subAgentID: value("x-claude-code-agent-id"))
        }
        if let session = value("x-session-affinity") {
            // OpenCode gives a sub-agent a session of its own, naming its parent's: the run is the parent's.
            if let parent = value("x-parent-session-id"), parent != session {
                return AgentSession(agent: .openCode, sessionID: parent, subAgentID: session)
            }
            return AgentSession(agent: .openCode, sessionID: session, subAgentID: nil)
        }
        if let session = value("x-qwen-code-session-id") {
            return AgentSession(agent: .qwenCode, sessionID: session, subAgentID: nil)
        }
        return nil
    }

    /// The value trimmed of surrounding blanks, if it is 1 to ``maxIDLength`` bytes of visible ASCII.
    static func acceptable(_ raw: String?) -> String? {
        guard let raw else { return nil }
        let trimmed = raw.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        let bytes = trimmed.utf8
        guard !bytes.isEmpty, bytes.count <= maxIDLength, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return nil
        }
        return trimmed
    }

    /// A version 8 UUID (RFC 9562) from the SHA-256 of the parts, each prefixed by its length so that no two
    /// lists of parts hash the same bytes.
    static func nameBasedUUID(_ parts: [String]) -> UUID {
        var hasher = SHA256()
        hasher.update(data: Array("chronicle.agent-session".utf8))
        for part in parts {
            let bytes = Array(part.utf8)
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { hasher.update(bufferPointer: $0) }
            hasher.update(data: bytes)
        }
        var b = Array(hasher.finalize().prefix(16))
        b[6] = 0x80 | (b[6] & 0x0F)
        b[8] = 0x80 | (b[8] & 0x3F)
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                           b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// Attaches calls that carry an agent session, and no explicit run, to the session's run, and records the
/// run (and a sub-agent's step) through the gateway's log sink like any workflow event.
///
/// The first call this process sees of a session sends `run:start`, later ones `run:update`; a sub-agent's
/// first call sends `step:start`. Storage merges a repeated `run:start` into the stored run (the earliest
/// `created_at`, the first name, the newest status) and ignores a repeated `step:start`, so a restart, an
/// evicted entry or another replica starting the same run again neither duplicates nor resets it.
final class AgentSessionRecorder: Sendable {
    private let gateway: Gateway
    private let seen: NIOLockedValueBox<RecentIDs>
    private let now: @Sendable () -> Date

    /// - Parameter capacity: how many run and step ids are remembered as started; older ones are forgotten.
    init(gateway: Gateway, capacity: Int = 20_000, now: @escaping @Sendable () -> Date = { Date() }) {
        self.gateway = gateway
        self.seen = NIOLockedValueBox(RecentIDs(capacity: capacity))
        self.now = now
    }

    /// Reads the session from `headers` and, when there is one and `metadata` names no run, attaches the
    /// call to the session's run (and a sub-agent's step, unless the call names its own step) and records
    /// them. Runs after the body's and the `x-chronicle-*` headers' metadata are merged, so explicit ids win.
    func attach(_ headers: HTTPFields, to metadata: inout RequestMetadata) {
        guard metadata.runID == nil, let session = AgentSession.read(headers) else { return }
        let runID = session.runID
        metadata.runID = runID
        var newStep: UUID?
        if metadata.stepID == nil, let stepID = session.stepID {
            metadata.stepID = stepID
            newStep = stepID
        }
        let (runIsNew, stepIsNew) = seen.withLockedValue { seen in
            (seen.insert(runID), newStep.map { seen.insert($0) } ?? false)
        }
        let time = now()
        var events: [WorkflowEvent] = []
        if runIsNew {
            events.append(.runStart(RunStartEvent(
                id: runID, name: session.agent.rawValue, application: metadata.application,
                environment: metadata.environment, status: "started",
                info: ["agent": .string(session.agent.rawValue), "session_id": .string(session.sessionID)],
                time: time)))
        } else {
            events.append(.runUpdate(RunUpdateEvent(id: runID, status: "started", time: time)))
        }
        if stepIsNew, let stepID = newStep, let subAgent = session.subAgentID {
            events.append(.stepStart(StepStartEvent(
                stepID: stepID, runID: runID, time: time, type: "agent", name: subAgent,
                info: ["agent": .string(session.agent.rawValue), "sub_agent_id": .string(subAgent)])))
        }
        gateway.recordEvents(events)
    }
}

/// A bounded set of recently inserted ids, forgetting the least recently used first (approximately: ids
/// live in two generations of half the capacity each, and the older generation is dropped whole).
struct RecentIDs: Sendable {
    private var current: Set<UUID> = []
    private var previous: Set<UUID> = []
    private let generationSize: Int

    init(capacity: Int) {
        generationSize = max(1, capacity / 2)
    }

    /// How many ids are remembered; never more than the capacity.
    var count: Int { current.count + previous.count }

    /// Remembers `id` as recently used; returns whether it was not remembered before.
    mutating func insert(_ id: UUID) -> Bool {
        if current.contains(id) { return false }
        let wasKnown = previous.remove(id) != nil
        if current.count >= generationSize {
            previous = current
            current = []
        }
        current.insert(id)
        return !wasKnown
    }
}
