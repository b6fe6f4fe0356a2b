import ChronicleCore
@testable import ChronicleServer
@testable import ChronicleStorage
import ChronicleTesting
import NIOHTTP1
import Crypto
import Foundation
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

/// Three replicas on one PostgreSQL database, over real sockets: admin changes, revocations and limits
/// hold for the whole fleet.
@Suite("Fleet: replicas sharing PostgreSQL", .enabled(if: FleetDatabaseAvailability.available), .serialized)
struct FleetTests {
    /// A provider, then an alias created through one replica's admin API serve on every replica within
    /// 1 s; an update and a delete propagate the same way.
    @Test func adminChangesReachEveryReplica() async throws {
        let database = try await FleetDatabase()
        let upstream = try await MockUpstream.start(chatReply)
        var replicas: [FleetReplica] = []
        for index in 0..<3 { replicas.append(try await FleetReplica.start(on: database, instanceID: "r\(index)")) }

        let provider = try await replicas[0].admin("providers", body: """
            {"name":"up","url":"\(upstream.url())","api_key":"sk-upstream-secret"}
            """)
        #expect(provider.status == 201)
        #expect(provider.json["has_api_key"] == .bool(true))
        #expect(!"\(provider.json)".contains("sk-upstream-secret"), "no read returns a key")
        let alias = try await replicas[0].admin("aliases", body: """
            {"name":"team-model","models":[{"model":"first","provider":"up"}]}
            """)
        #expect(alias.status == 201)
        for replica in replicas {
            let took = try await eventually { try await replica.chat(model: "team-model") == 200 }
            #expect(took != nil, "\(replica.instanceID) serves the new alias within 1 s")
        }
        #expect(upstream.requests.allSatisfy { $0.headers["authorization"] == "Bearer sk-upstream-secret" },
                "the key stored encrypted reaches the upstream decrypted")

        let update = try await replicas[1].admin("aliases/team-model", method: .PUT, body: """
            {"models":[{"model":"second","provider":"up"}]}
            """)
        #expect(update.status == 200)
        for replica in replicas {
            let took = try await eventually {
                _ = try await replica.chat(model: "team-model")
                return upstream.requests.last?.json?["model"] == .string("second")
            }
            #expect(took != nil, "\(replica.instanceID) routes by the updated alias within 1 s")
        }

        #expect(try await replicas[2].admin("aliases/team-model", method: .DELETE).status == 200)
        for replica in replicas {
            let took = try await eventually { try await replica.chat(model: "team-model") != 200 }
            #expect(took != nil, "\(replica.instanceID) forgets the deleted alias within 1 s")
        }
        // Every change is audited, with who made it and the key masked.
        let audit = try await replicas[0].admin("audit", method: .GET)
        let entries = audit.json["entries"]?.arrayValue ?? []
        #expect(entries.count == 4)
        #expect(entries.allSatisfy { $0["actor"] == .string("admin") })
        #expect(!"\(audit.json)".contains("sk-upstream-secret"))
        let stored = try await database.rows("SELECT api_key, api_key_source FROM chronicle_custom_providers")
        #expect(stored.first?["api_key_source"] == "encrypted")
        #expect(stored.first?["api_key"]?.hasPrefix("v1:") == true)
        #expect(stored.first?["api_key"]?.contains("sk-upstream-secret") == false, "encrypted at rest")

        for replica in replicas { await replica.stop() }
        await upstream.stop()
        await database.drop()
    }

    /// A gateway key created on one replica works on all; once revoked, every replica refuses it within 1 s.
    /// Only its SHA-256 digest is stored, and the key is shown once.
    @Test func revokedKeyIsRefusedEverywhere() async throws {
        let database = try await FleetDatabase()
        let upstream = try await MockUpstream.start(chatReply)
        let files = ConfigReloader.FileLayer(
            gateway: GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            gatewayKeys: [])
        var replicas: [FleetReplica] = []
        for index in 0..<3 {
            replicas.append(try await FleetReplica.start(on: database, instanceID: "r\(index)", files: files))
        }
        let created = try await replicas[0].admin("gateway-keys", body: #"{"name":"team-a","requests_per_minute":600}"#)
        #expect(created.status == 201)
        let key = try #require(created.json["key"]?.stringValue)
        let listed = try await replicas[1].admin("gateway-keys", method: .GET)
        #expect(!"\(listed.json)".contains(key), "the key is shown only when created")
        let digest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(try await database.rows("SELECT key_sha256 FROM chronicle_gateway_keys").first?["key_sha256"] == digest)

        for replica in replicas {
            let took = try await eventually { try await replica.chat(model: "up/m", key: key) == 200 }
            #expect(took != nil, "\(replica.instanceID) accepts the new key within 1 s")
        }
        #expect(try await replicas[2].admin("gateway-keys/team-a", method: .DELETE).status == 200)
        for replica in replicas {
            let took = try await eventually { try await replica.chat(model: "up/m", key: key) == 401 }
            #expect(took != nil, "\(replica.instanceID) refuses the revoked key within 1 s")
        }

        for replica in replicas { await replica.stop() }
        await upstream.stop()
        await database.drop()
    }

    /// A gateway key created through the admin API with a daily budget is held to it on the replica that
    /// spends it, and, within a second, on every other replica: they read the key's spend from the shared
    /// database.
    @Test func keyBudgetHoldsAcrossReplicas() async throws {
        let database = try await FleetDatabase()
        let upstream = try await MockUpstream.start(chatReply)
        let files = ConfigReloader.FileLayer(
            gateway: GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            gatewayKeys: [])
        // A dollar a token: one call (3 prompt and 2 completion tokens) spends $5.
        let prices = PriceTable.bundled.overriding([
            ModelPrice(provider: "up", model: "m", inputPerMillion: 1_000_000, outputPerMillion: 1_000_000),
        ])
        var replicas: [FleetReplica] = []
        var trackers: [CostTracker] = []
        for index in 0..<2 {
            let cost = CostTracker(prices: prices, budgets: Budgets(keyLimits: [:]))
            trackers.append(cost)
            replicas.append(try await FleetReplica.start(on: database, instanceID: "b\(index)", files: files, cost: cost))
        }
        let created = try await replicas[0].admin("gateway-keys", body: #"{"name":"team-a","max_cost_usd_per_day":4}"#)
        #expect(created.status == 201)
        let key = try #require(created.json["key"]?.stringValue)
        let known = try await eventually { replicas[1].server.access.gatewayKeys.contains { $0.name == "team-a" } }
        #expect(known != nil, "the other replica knows the new key")

        // The first replica serves one call ($5 of $4) and then refuses the key: the budget set through the
        // admin API is in force.
        #expect(try await replicas[0].chat(model: "up/m", key: key) == 200)
        #expect(try await replicas[0].chat(model: "up/m", key: key) == 429)
        // The other replica, which served nothing, reads the spend from the database and refuses it too.
        let read = try await eventually {
            trackers[1].budgets.statuses().first { $0.name == "gateway_key:team-a:day" }?.spendUSD == 5
        }
        #expect(read != nil, "the other replica reads the key's spend within 1 s")
        #expect(try await replicas[1].chat(model: "up/m", key: key) == 429)
        let spent = try await database.rows("SELECT sum(cost_usd)::text AS spent FROM chronicle_events")
        #expect(spent.first?["spent"] == "5")
        for replica in replicas { await replica.stop() }
        await upstream.stop()
        await database.drop()
    }

    /// A key of 30 requests a minute, asked by three replicas in rounds of one request each, with the counters
    /// exchanged after every round: the fleet admits at least 30 and at most 30 + 2, the requests the other
    /// replicas admitted since the last exchange (the bound in the README with S one round).
    @Test func fleetWideLimitHoldsWithinItsBound() async throws {
        let database = try await FleetDatabase()
        let upstream = try await MockUpstream.start(chatReply)
        let files = ConfigReloader.FileLayer(
            gateway: GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            gatewayKeys: [])
        // One calendar minute for the whole test, whatever the time.
        let minute = Date(timeIntervalSince1970: 1_800_000_000)
        var replicas: [FleetReplica] = []
        for index in 0..<3 {
            replicas.append(try await FleetReplica.start(on: database, instanceID: "r\(index)", files: files,
                                                         wallClock: { minute }))
        }
        let created = try await replicas[0].admin("gateway-keys", body: #"{"name":"limited","requests_per_minute":30}"#)
        let key = try #require(created.json["key"]?.stringValue)
        for replica in replicas { _ = try await eventually { await replica.server.access.gatewayKeys.count == 1 } }

        var admitted = 0
        var refused = 0
        for _ in 0..<20 {
            for replica in replicas {
                switch try await replica.chat(model: "up/m", key: key) {
                case 200: admitted += 1
                case 429: refused += 1
                case let status: Issue.record("unexpected status \(status)")
                }
            }
            for replica in replicas { try await replica.exchange.exchange() }
        }
        #expect(admitted >= 30)
        #expect(admitted <= 30 + 2, "overshoot at most what the other replicas admitted in one exchange period")
        #expect(admitted + refused == 60)
        #expect(upstream.requests.count == admitted)

        for replica in replicas { await replica.stop() }
        await upstream.stop()
        await database.drop()
    }

    /// Every connection to the database is cut: replicas keep serving with their configuration, their
    /// listeners reconnect, and a change made afterwards still reaches the other replica.
    @Test func replicaThatLosesTheDatabaseKeepsServingAndCatchesUp() async throws {
        let database = try await FleetDatabase()
        let upstream = try await MockUpstream.start(chatReply)
        let files = ConfigReloader.FileLayer(
            gateway: GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            gatewayKeys: [])
        let first = try await FleetReplica.start(on: database, instanceID: "a", files: files)
        let second = try await FleetReplica.start(on: database, instanceID: "b", files: files)
        #expect(try await first.admin("aliases", body: #"{"name":"kept","models":[{"model":"m","provider":"up"}]}"#).status == 201)
        #expect(try await eventually { try await second.chat(model: "kept") == 200 } != nil)

        try await SessionDatabase.admin("""
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database.name)' AND pid <> pg_backend_pid()
            """)
        #expect(try await second.chat(model: "kept") == 200, "the configuration in force stays")
        // The first replica's pool reconnects for the change; the second's listener reconnects and reloads.
        let change = try await eventually(within: .seconds(5)) {
            try await first.admin("aliases", body: #"{"name":"later","models":[{"model":"m","provider":"up"}]}"#).status == 201
        }
        #expect(change != nil)
        let took = try await eventually(within: .seconds(5)) { try await second.chat(model: "later") == 200 }
        #expect(took != nil, "the second replica catches up once its listener is back")

        await first.stop()
        await second.stop()
        await upstream.stop()
        await database.drop()
    }

    /// Two replicas serve a load; one stops part-way (draining, as on a rolling restart) and starts again.
    /// Every answered call is in the database exactly once, with the replica that served it.
    @Test func restartedReplicaLosesNoRecords() async throws {
        let database = try await FleetDatabase()
        let upstream = try await MockUpstream.start(chatReply)
        let files = ConfigReloader.FileLayer(
            gateway: GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            gatewayKeys: [])
        let steady = try await FleetReplica.start(on: database, instanceID: "steady", files: files)
        var restarted = try await FleetReplica.start(on: database, instanceID: "restarted", files: files)
        let answered = NIOLockedValueBox([String: Int]())
        func load(_ replica: FleetReplica, count: Int) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        let response = try await replica.server.send("/v1/chat/completions", body: """
                            {"model":"up/m","messages":[{"role":"user","content":"hi"}]}
                            """)
                        if response.status == 200 {
                            answered.withLockedValue { $0[replica.instanceID, default: 0] += 1 }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        async let steadyLoad: Void = load(steady, count: 60)
        try await load(restarted, count: 30)
        await restarted.stop()
        restarted = try await FleetReplica.start(on: database, instanceID: "restarted", files: files)
        try await load(restarted, count: 30)
        try await steadyLoad
        await restarted.stop()
        await steady.stop()

        let counts = answered.withLockedValue { $0 }
        #expect(counts["steady"] == 60 && counts["restarted"] == 60)
        let rows = try await database.rows("""
            SELECT instance_id, CAST(count(*) AS text) AS calls, CAST(count(DISTINCT id) AS text) AS ids
            FROM chronicle_events GROUP BY instance_id ORDER BY instance_id
            """)
        #expect(rows == [["instance_id": "restarted", "calls": "60", "ids": "60"],
                         ["instance_id": "steady", "calls": "60", "ids": "60"]])
        await upstream.stop()
        await database.drop()
    }
}

/// Reloads while requests are in flight, on one replica, called through the same entry points as `SIGHUP`
/// and `NOTIFY`.
@Suite("Fleet: reload under load")
struct ReloadTests {
    /// A hundred requests in flight while the files are reloaded twenty times, one reload failing: every
    /// request succeeds, and the failed reload keeps the configuration in force.
    @Test func reloadUnderLoadFailsNoRequest() async throws {
        let upstream = try await MockUpstream.start(MockUpstream.Reply.json(
            #"{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}"#))
        let provider = CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")
        let generation = NIOLockedValueBox(0)
        let server = try await RunningServer.start(configuration: GatewayConfiguration(providers: [provider]))
        let reloader = ConfigReloader(
            gateway: server.gateway, access: server.access,
            files: .init(gateway: GatewayConfiguration(providers: [provider]), gatewayKeys: []), store: nil,
            secrets: nil, logger: SessionDatabase.quiet,
            readFiles: {
                let next = generation.withLockedValue { value -> Int in
                    value += 1
                    return value
                }
                if next == 10 { throw ConfigurationError("chronicle.toml: a broken edit") }
                // Each reload changes the alias the load uses, between two equivalent definitions.
                let alias = AliasConfig(name: "team", models: [AliasModel(model: "m\(next % 2)", provider: "up")])
                return .init(gateway: GatewayConfiguration(providers: [provider], aliases: [alias]), gatewayKeys: [])
            })
        #expect(await reloader.reloadFiles())
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    try await server.send("/v1/chat/completions", body: #"{"model":"team","messages":[{"role":"user","content":"hi"}]}"#).status
                }
            }
            var outcomes: [Bool] = []
            for _ in 0..<20 {
                outcomes.append(await reloader.reloadFiles())
                try await Task.sleep(for: .milliseconds(2))
            }
            #expect(outcomes.filter { !$0 }.count == 1, "the broken reload is refused, the others apply")
            var statuses: [Int] = []
            for try await status in group { statuses.append(status) }
            return statuses
        }
        #expect(statuses.count == 100)
        #expect(statuses.allSatisfy { $0 == 200 }, "no request fails during reloads: \(Set(statuses))")
        #expect(try await server.send("/v1/chat/completions", body: #"{"model":"team","messages":[{"role":"user","content":"hi"}]}"#).status == 200,
                "after a failed reload the configuration in force still serves")
        await server.stop()
        await upstream.stop()
    }

    /// `/readyz` answers 503, naming what it waits for, while the database cannot be prepared, and 200 once
    /// it is; `/healthz` answers 200 throughout, and the server keeps serving after start-up is done.
    @Test func readinessWaitsForTheDatabase() async throws {
        let readiness = ServerReadiness()
        let databaseUp = NIOLockedValueBox(false)
        let gateway = try Gateway.Builder().withHTTPClient(upstreamClient).build()
        let access = AccessControl(settings: SecuritySettings())
        let reloader = ConfigReloader(gateway: gateway, access: access,
                                      files: .init(gateway: GatewayConfiguration(), gatewayKeys: []), store: nil,
                                      secrets: nil, logger: SessionDatabase.quiet)
        let startup = DatabaseStartupService(
            migrate: { if !databaseUp.withLockedValue({ $0 }) { throw StorageError("connection refused") } },
            reloader: reloader, readiness: readiness, logger: SessionDatabase.quiet)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = ChronicleApplication.make(
            gateway: gateway, access: access, options: .init(readiness: readiness, instanceID: "r1"),
            host: "127.0.0.1", port: 0, services: [startup], logger: SessionDatabase.quiet,
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: SessionDatabase.quiet))
        let task = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        let server = RunningServer(port: port, gateway: gateway, log: InMemoryLog(), group: group, task: task, access: access)

        let waiting = try await server.json("/readyz", method: .GET)
        #expect(waiting.status == 503)
        #expect(waiting.json["instance_id"] == .string("r1"))
        #expect(waiting.json["waiting_for"]?.stringValue?.contains("connection refused") == true)
        #expect(try await server.send("/healthz", method: .GET).status == 200)
        // Before the database's keys are known, nothing goes through the gateway.
        let early = try await server.json("/v1/chat/completions", body: #"{"model":"openai/m","messages":[]}"#)
        #expect(early.status == 503)
        #expect(early.json["error"]?["kind"] == .string("not_ready"))
        databaseUp.withLockedValue { $0 = true }
        let took = await eventually(within: .seconds(5)) { (try? await server.send("/readyz", method: .GET).status) == 200 }
        #expect(took != nil)
        // Start-up is done, and its service must not have ended the server with it.
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await server.send("/healthz", method: .GET).status == 200)
        await server.stop()
    }
}
