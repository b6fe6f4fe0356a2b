import AsyncHTTPClient
import ChronicleCore
@testable import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Testing

/// The databases the session tests store runs in: SQLite always, PostgreSQL when a test server is set.
enum SessionBackend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, postgres
    var description: String { rawValue }

    static var available: [SessionBackend] {
        let postgres = ProcessInfo.processInfo.environment["CHRONICLE_TEST_POSTGRES_URL"]
        if postgres == nil && ProcessInfo.processInfo.environment["CI"] == nil { return [.sqlite] }
        return [.sqlite, .postgres]
    }
}

/// A fresh database that servers can be started on, one after another, as a restarted server would be.
final class SessionDatabase: Sendable {
    let backend: SessionBackend
    let directory: URL
    let postgresName: String

    init(_ backend: SessionBackend) async throws {
        self.backend = backend
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-sessions-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        postgresName = "chronicle_sessions_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        if backend == .postgres {
            try await Self.admin("CREATE DATABASE \(postgresName)")
        }
    }

    static func admin(_ sql: String) async throws {
        guard let url = ProcessInfo.processInfo.environment["CHRONICLE_TEST_POSTGRES_URL"] else {
            throw ConfigurationError("CHRONICLE_TEST_POSTGRES_URL is not set")
        }
        let store = try PostgresLogStore(url: url, maxConnections: 1, logger: Self.quiet)
        let task = Task { _ = try? await store.run() }
        defer { task.cancel() }
        _ = try await store.client.query(PostgresQuery(unsafeSQL: sql), logger: Self.quiet)
    }

    static var quiet: Logger {
        var logger = Logger(label: "session-tests")
        logger.logLevel = .critical
        return logger
    }

    /// A new connection to the database, migrated; the caller runs `task` until it closes the store.
    func open() async throws -> (store: any LogStore & LogReader, task: Task<Void, Never>?) {
        switch backend {
        case .sqlite:
            let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
            try await store.migrate()
            return (store, nil)
        case .postgres:
            guard let admin = ProcessInfo.processInfo.environment["CHRONICLE_TEST_POSTGRES_URL"],
                  var components = URLComponents(string: admin) else {
                throw ConfigurationError("CHRONICLE_TEST_POSTGRES_URL is not a URL")
            }
            components.path = "/" + postgresName
            guard let url = components.string else { throw ConfigurationError("no database URL") }
            let store = try PostgresLogStore(url: url, maxConnections: 4, logger: Self.quiet)
            let task = Task { _ = try? await store.run() }
            try await store.migrate()
            return (store, task)
        }
    }

    func drop() async {
        if backend == .postgres {
            try? await Self.admin("DROP DATABASE IF EXISTS \(postgresName) WITH (FORCE)")
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A server recording into a ``SessionDatabase`` through a log writer, keeping a copy of every entry.
struct SessionServer {
    let server: RunningServer
    let writer: LogWriter
    let log: InMemoryLog
    let store: any LogStore & LogReader
    let storeTask: Task<Void, Never>?

    static func start(_ database: SessionDatabase, upstream: MockUpstream, agentSessions: Bool = true)
        async throws -> SessionServer
    {
        let (store, storeTask) = try await database.open()
        var configuration = LogWriter.Configuration()
        configuration.flushInterval = .milliseconds(20)
        let writer = LogWriter(store: store, configuration: configuration, logger: SessionDatabase.quiet)
        let log = InMemoryLog()
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")],
                retry: RetryOptions(maxTries: 1)),
            sink: RunningServer.Tee(first: log, second: writer), reader: store, services: [writer],
            agentSessions: agentSessions)
        return SessionServer(server: server, writer: writer, log: log, store: store, storeTask: storeTask)
    }

    /// Stops the server, which flushes the writer, and closes the store.
    func stop() async {
        await server.stop()
        try? await store.close()
        storeTask?.cancel()
    }

    /// The run as the read API shows it, once everything recorded so far is stored.
    func run(_ id: UUID) async throws -> JSONValue {
        await writer.flush()
        let response = try await server.json("/v1/runs/\(id.uuidString.lowercased())", method: .GET)
        #expect(response.status == 200, "run \(id) is stored")
        return response.json
    }

    /// How many runs have this name.
    func runCount(named name: String) async throws -> Int {
        await writer.flush()
        let list = try await server.json("/v1/runs?name=\(name)&limit=100", method: .GET)
        return list.json["data"]?.arrayValue?.count ?? -1
    }
}

@Suite("Agent sessions become runs")
struct AgentSessionTests {
    static let chat = #"{"model":"up/gpt","messages":[{"role":"user","content":"hi"}]}"#

    static func upstream() async throws -> MockUpstream {
        try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
    }

    /// Each agent's session headers, the name its run gets, and the run id derived from them.
    static let agents: [(headers: [(String, String)], name: String, session: AgentSession)] = [
        ([("x-claude-code-session-id", "cc-session-1")], "claude-code",
         AgentSession(agent: .claudeCode, sessionID: "cc-session-1", subAgentID: nil)),
        ([("x-session-affinity", "ses_opencode1")], "opencode",
         AgentSession(agent: .openCode, sessionID: "ses_opencode1", subAgentID: nil)),
        ([("x-qwen-code-session-id", "qwen-9")], "qwen-code",
         AgentSession(agent: .qwenCode, sessionID: "qwen-9", subAgentID: nil)),
    ]

    /// Run and step ids depend on the agent and the session only, so replicas and restarts agree; they
    /// are RFC 9562 version 8 UUIDs, and no two sessions, agents or sub-agents share one.
    @Test func idsAreStableAndDistinct() throws {
        let claude = AgentSession(agent: .claudeCode, sessionID: "abc", subAgentID: nil)
        // Pinned (computed outside Swift): a change here would split every stored session in two across an upgrade.
        #expect(claude.runID.uuidString.lowercased() == "6413930d-4aad-8c8e-9390-396cb5b97af8")
        #expect(claude.runID == AgentSession(agent: .claudeCode, sessionID: "abc", subAgentID: "x").runID)
        #expect(claude.runID.uuidString.lowercased().dropFirst(14).first == "8")
        let ids: Set<UUID> = [
            claude.runID,
            AgentSession(agent: .openCode, sessionID: "abc", subAgentID: nil).runID,
            AgentSession(agent: .claudeCode, sessionID: "abd", subAgentID: nil).runID,
            try #require(AgentSession(agent: .claudeCode, sessionID: "abc", subAgentID: "x").stepID),
            try #require(AgentSession(agent: .claudeCode, sessionID: "abc", subAgentID: "y").stepID),
            try #require(AgentSession(agent: .claudeCode, sessionID: "ab", subAgentID: "cx").stepID),
        ]
        #expect(ids.count == 6)
    }

    /// The set of runs and steps already started stays within its capacity however many sessions come,
    /// and keeps the ones in use: a busy session is not started again because idle ones came after it.
    @Test func startedIDsAreBounded() {
        var recent = RecentIDs(capacity: 100)
        let busy = UUID()
        var inserted = [recent.insert(busy), recent.insert(busy)]
        #expect(inserted == [true, false])
        for _ in 0..<1_000 {
            inserted = [recent.insert(UUID()), recent.insert(busy)]
            #expect(inserted == [true, false])
            #expect(recent.count <= 100)
        }
        let idle = UUID()
        inserted = [recent.insert(idle)]
        for _ in 0..<100 { _ = recent.insert(UUID()) }
        // Forgotten: its next call starts the run again, which storage merges into the stored one.
        inserted.append(recent.insert(idle))
        #expect(inserted == [true, true])
    }

    /// Each agent's session is one run named after the agent, holding every call of the session. The
    /// first call starts the run, later calls update it: its status follows the newest call, its
    /// `created_at` and name stay.
    @Test(arguments: SessionBackend.available, [0, 1, 2])
    func eachAgentsSessionIsOneRun(backend: SessionBackend, agentIndex: Int) async throws {
        let agent = Self.agents[agentIndex]
        let database = try await SessionDatabase(backend)
        let upstream = try await Self.upstream()
        let server = try await SessionServer.start(database, upstream: upstream)
        let runID = agent.session.runID

        let first = try await server.server.json("/v1/chat/completions", body: Self.chat, headers: agent.headers)
        #expect(first.status == 200)
        let started = try await server.run(runID)
        #expect(started["name"] == .string(agent.name))
        #expect(started["status"] == "started")
        #expect(started["info"]?["session_id"] == .string(agent.session.sessionID))

        // A client marks the run finished; the session's next call is newer, so the run is active again.
        let finish = try await server.server.send("/v1/events", body: """
            {"events":[{"type":"run:update","id":"\(runID.uuidString.lowercased())","status":"finished",
             "time":"\(RFC3339.format(Date()))"}]}
            """)
        #expect(finish.status == 202)
        #expect(try await server.run(runID)["status"] == "finished")
        let second = try await server.server.json("/chat", body: Self.chat, headers: agent.headers)
        #expect(second.status == 200)
        let updated = try await server.run(runID)
        #expect(updated["status"] == "started")
        #expect(updated["name"] == .string(agent.name))
        #expect(updated["created_at"] == started["created_at"])
        let calls = try #require(updated["calls"]?.arrayValue)
        #expect(calls.count == 2)
        #expect(calls.allSatisfy { $0["run_id"] == .string(runID.uuidString.lowercased()) && $0["step_id"] == .null })
        #expect(try await server.runCount(named: agent.name) == 1)

        // Started once, then updated: the set of sessions seen keeps a second start off the sink.
        let runEvents = server.log.events.filter { $0.runID == runID }
        #expect(runEvents.count { if case .runStart = $0 { true } else { false } } == 1)
        #expect(runEvents.count { if case .runUpdate = $0 { true } else { false } } == 2)

        await server.stop()
        await upstream.stop()
        await database.drop()
    }

    /// A sub-agent's calls are a step under its parent session's run: Claude Code's agent id, OpenCode's
    /// child session naming its parent. The step starts once; the parent's own calls carry no step.
    @Test(arguments: SessionBackend.available)
    func subAgentIsAStepUnderTheParentRun(backend: SessionBackend) async throws {
        let database = try await SessionDatabase(backend)
        let upstream = try await Self.upstream()
        let server = try await SessionServer.start(database, upstream: upstream)
        let cases: [(parent: [(String, String)], child: [(String, String)], agent: AgentSession)] = [
            ([("x-claude-code-session-id", "s-parent")],
             [("x-claude-code-session-id", "s-parent"), ("x-claude-code-agent-id", "agent-7")],
             AgentSession(agent: .claudeCode, sessionID: "s-parent", subAgentID: "agent-7")),
            ([("x-session-affinity", "ses_parent")],
             [("x-session-affinity", "ses_child"), ("x-parent-session-id", "ses_parent")],
             AgentSession(agent: .openCode, sessionID: "ses_parent", subAgentID: "ses_child")),
        ]
        for item in cases {
            let runID = item.agent.runID
            let stepID = try #require(item.agent.stepID)
            for headers in [item.parent, item.child, item.child] {
                #expect(try await server.server.json("/v1/chat/completions", body: Self.chat, headers: headers).status == 200)
            }
            let run = try await server.run(runID)
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(steps.count == 1)
            #expect(steps.first?["id"] == .string(stepID.uuidString.lowercased()))
            #expect(steps.first?["run_id"] == .string(runID.uuidString.lowercased()))
            #expect(steps.first?["type"] == "agent")
            #expect(steps.first?["name"] == .string(item.agent.subAgentID ?? ""))
            let calls = try #require(run["calls"]?.arrayValue)
            #expect(calls.count == 3)
            #expect(calls.filter { $0["step_id"] == .string(stepID.uuidString.lowercased()) }.count == 2)
            #expect(calls.filter { $0["step_id"] == .null }.count == 1)
            let stepStarts = server.log.events.filter { if case .stepStart(let start) = $0 { start.stepID == stepID } else { false } }
            #expect(stepStarts.count == 1)
        }
        await server.stop()
        await upstream.stop()
        await database.drop()
    }

    /// A restarted server has forgotten the sessions it saw and starts the run again: storage merges that
    /// into the stored run, with no second row and the first call's `created_at` and name.
    @Test(arguments: SessionBackend.available)
    func restartKeepsTheSameRun(backend: SessionBackend) async throws {
        let database = try await SessionDatabase(backend)
        let upstream = try await Self.upstream()
        let headers = [("x-qwen-code-session-id", "restart-session")]
        let runID = AgentSession(agent: .qwenCode, sessionID: "restart-session", subAgentID: nil).runID

        let before = try await SessionServer.start(database, upstream: upstream)
        #expect(try await before.server.json("/v1/chat/completions", body: Self.chat, headers: headers).status == 200)
        let first = try await before.run(runID)
        await before.stop()

        let after = try await SessionServer.start(database, upstream: upstream)
        #expect(try await after.server.json("/v1/chat/completions", body: Self.chat, headers: headers).status == 200)
        #expect(after.log.events.contains { if case .runStart(let start) = $0 { start.id == runID } else { false } })
        let second = try await after.run(runID)
        #expect(second["name"] == "qwen-code")
        #expect(second["status"] == "started")
        #expect(second["created_at"] == first["created_at"])
        #expect(second["calls"]?.arrayValue?.count == 2)
        #expect(try await after.runCount(named: "qwen-code") == 1)
        await after.stop()
        await upstream.stop()
        await database.drop()
    }

    /// Explicit ids always win, from a header or the body: the call keeps them, and no session run is
    /// started. An explicit step id alone keeps its step inside the session's run.
    @Test func explicitIDsWin() async throws {
        let upstream = try await Self.upstream()
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]))
        let session = [("x-claude-code-session-id", "explicit-1"), ("x-claude-code-agent-id", "sub")]
        let derived = AgentSession(agent: .claudeCode, sessionID: "explicit-1", subAgentID: "sub")
        let headerRun = UUID()
        let bodyRun = UUID()
        let explicitStep = UUID()
        _ = try await server.json("/v1/chat/completions", body: Self.chat,
                                  headers: session + [("x-chronicle-run-id", headerRun.uuidString)])
        _ = try await server.json("/v1/chat/completions", body: """
            {"model":"up/gpt","messages":[{"role":"user","content":"hi"}],"metadata":{"run_id":"\(bodyRun.uuidString)"}}
            """, headers: session)
        _ = try await server.json("/v1/chat/completions", body: Self.chat,
                                  headers: session + [("x-chronicle-step-id", explicitStep.uuidString)])
        let records = try await server.records(3)
        #expect(records.count == 3)
        #expect(records.map(\.options.metadata.runID) == [headerRun, bodyRun, derived.runID])
        #expect(records.map(\.options.metadata.stepID) == [nil, nil, explicitStep])
        // Only the third call joined the session's run, and it brought its own step.
        #expect(server.log.events.count == 1)
        #expect(server.log.events.first?.runID == derived.runID)
        await server.stop()
        await upstream.stop()
    }

    /// `agent_sessions = false` leaves calls unattached and records no run; the default is on.
    @Test func switchTurnsItOff() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-switch-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("chronicle.toml")
        try "agent_sessions = false\n".write(to: config, atomically: true, encoding: .utf8)
        let off = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false),
                                          environment: { _ in nil })
        #expect(off.agentSessions == false)
        try "port = 9999\n".write(to: config, atomically: true, encoding: .utf8)
        let unset = try ServerSettings.load(overrides: .init(configPath: config.path, loadDotenv: false),
                                            environment: { _ in nil })
        #expect(unset.agentSessions == true)

        let upstream = try await Self.upstream()
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(
                providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            agentSessions: off.agentSessions)
        for agent in Self.agents {
            #expect(try await server.json("/v1/chat/completions", body: Self.chat, headers: agent.headers).status == 200)
        }
        let records = try await server.records(3)
        #expect(records.count == 3)
        #expect(records.allSatisfy { $0.options.metadata.runID == nil && $0.options.metadata.stepID == nil })
        #expect(server.log.events.isEmpty)
        await server.stop()
        await upstream.stop()
    }

    /// Session values that are too long, not ASCII, or hold control characters are not sessions: the call
    /// is answered and recorded, unattached, and no run is recorded. The longest accepted value still works.
    @Test func hostileSessionValuesAreIgnored() async throws {
        let upstream = try await Self.upstream()
        let server = try await RunningServer.start(configuration: GatewayConfiguration(
            providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]))
        let hostile: [[UInt8]] = [
            Array(String(repeating: "a", count: AgentSession.maxIDLength + 1).utf8),
            Array(String(repeating: "a", count: 20_000).utf8),
            Array("séssion-ünicode".utf8),
            [0x61, 0x01, 0x62],
            [0x61, 0x7F, 0x62],
            [0x61, 0x20, 0x62],
            [0xFF, 0xFE, 0x61],
        ]
        var answered = 0
        for value in hostile {
            for name in ["x-claude-code-session-id", "x-session-affinity", "x-qwen-code-session-id"] {
                let status = try await Self.rawChat(port: server.port, header: name, value: value)
                // The HTTP parser may refuse a control character itself; either way no run may come of it.
                #expect(status == 200 || status == 400, "\(name): \(value.prefix(8))")
                if status == 200 { answered += 1 }
            }
        }
        let records = try await server.records(answered)
        #expect(records.count == answered)
        #expect(answered >= 15)
        #expect(records.allSatisfy { $0.options.metadata.runID == nil })
        #expect(server.log.events.isEmpty)

        // A hostile parent session leaves OpenCode's child session a run of its own.
        let longest = String(repeating: "b", count: AgentSession.maxIDLength)
        #expect(try await server.json("/v1/chat/completions", body: Self.chat, headers: [
            ("x-session-affinity", longest), ("x-parent-session-id", "ünicode"),
        ]).status == 200)
        let last = try #require(try await server.records(answered + 1).last)
        #expect(last.options.metadata.runID == AgentSession(agent: .openCode, sessionID: longest, subAgentID: nil).runID)
        #expect(last.options.metadata.stepID == nil)
        await server.stop()
        await upstream.stop()
    }

    /// A chat request written byte for byte on a socket, so header values no HTTP client would send arrive
    /// as they are; returns the status code.
    static func rawChat(port: Int, header: String, value: [UInt8]) async throws -> Int {
        var request = ByteBuffer()
        request.writeString("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n")
        request.writeString("content-length: \(chat.utf8.count)\r\nconnection: close\r\n\(header): ")
        request.writeBytes(value)
        request.writeString("\r\n\r\n\(chat)")
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let response = try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(request)
            var response = ByteBuffer()
            for try await var chunk in inbound { response.writeBuffer(&chunk) }
            return String(buffer: response)
        }
        // "HTTP/1.1 200 OK": the status is the second word of the first line.
        let words = response.prefix(while: { $0 != "\r" }).split(separator: " ")
        return words.count > 1 ? Int(words[1]) ?? 0 : 0
    }
}
