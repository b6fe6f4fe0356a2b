import ChronicleCore
@testable import ChronicleServer
@testable import ChronicleStorage
import ChronicleTesting
import NIOHTTP1
import Foundation
import ServiceLifecycle
import Testing

/// One server on SQLite with the admin API.
struct AdminServer {
    let server: RunningServer
    let reloader: ConfigReloader
    let store: SQLiteLogStore
    let directory: URL

    static func start(secretKey: String? = FleetReplica.secretKey, files: ConfigReloader.FileLayer = .init(
        gateway: GatewayConfiguration(), gatewayKeys: [])) async throws -> AdminServer
    {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-admin-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try await SQLiteLogStore.open(path: directory.appendingPathComponent("chronicle.db").path)
        try await store.migrate()
        var security = SecuritySettings()
        security.adminKeyDigest = KeyDigest(of: FleetReplica.adminKey)
        security.gatewayKeys = files.gatewayKeys
        let access = AccessControl(settings: security)
        let gateway = try Gateway.Builder().withHTTPClient(upstreamClient).withConfiguration(files.gateway)
            .withLogger(SessionDatabase.quiet).build()
        let reloader = ConfigReloader(gateway: gateway, access: access, files: files, store: store,
                                      secrets: secretKey.map(SecretBox.init(masterKey:)), logger: SessionDatabase.quiet)
        await reloader.reloadDatabase()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = ChronicleApplication.make(
            gateway: gateway, access: access, options: .init(reloader: reloader),
            host: "127.0.0.1", port: 0, logger: SessionDatabase.quiet,
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            })
        let group = ServiceGroup(configuration: .init(services: [app], logger: SessionDatabase.quiet))
        let task = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        return AdminServer(server: RunningServer(port: port, gateway: gateway, log: InMemoryLog(), group: group,
                                                 task: task, access: access),
                           reloader: reloader, store: store, directory: directory)
    }

    func admin(_ path: String, method: HTTPMethod = .POST, body: String? = nil, key: String = FleetReplica.adminKey)
        async throws -> (status: Int, json: JSONValue)
    {
        let response = try await server.send("/v1/admin/" + path, method: method, body: body,
                                             headers: [("authorization", "Bearer \(key)")])
        return (response.status, (try? JSONCoding.decode(JSONValue.self, from: Array(response.body.utf8))) ?? .null)
    }

    /// Rows of every configuration table and the audit trail, to tell that a refused change stored nothing.
    func snapshot() async throws -> [[String: String]] {
        var rows: [[String: String]] = []
        for table in ["chronicle_custom_providers", "chronicle_aliases", "chronicle_alias_providers",
                      "chronicle_api_keys", "chronicle_gateway_keys", "chronicle_admin_audit"] {
            rows += try await store.fetchText("SELECT '\(table)' AS t, CAST(count(*) AS text) AS n FROM \(table)", [])
        }
        return rows
    }

    func stop() async {
        await server.stop()
        try? await store.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

@Suite("Admin API: input checks")
struct AdminAPITests {
    struct BadInput: Sendable, CustomTestStringConvertible {
        var name: String
        var path: String
        var method: HTTPMethod = .POST
        var body: String
        var status = 400
        /// What the message must name.
        var names: String
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "limit of the wrong type", path: "gateway-keys",
                 body: #"{"name":"k","requests_per_minute":"many"}"#, names: "requests_per_minute"),
        BadInput(name: "negative limit", path: "gateway-keys", body: #"{"name":"k","tokens_per_minute":-5}"#,
                 names: "tokens_per_minute"),
        BadInput(name: "unknown gateway key field", path: "gateway-keys", body: #"{"name":"k","rpm":5}"#, names: "rpm"),
        BadInput(name: "unknown provider field", path: "providers",
                 body: #"{"name":"p","url":"http://127.0.0.1:1/v1/chat/completions","colour":"red"}"#, names: "colour"),
        BadInput(name: "provider without url", path: "providers", body: #"{"name":"p"}"#, names: "url"),
        BadInput(name: "provider url not http", path: "providers", body: #"{"name":"p","url":"ftp://x"}"#, names: "url"),
        BadInput(name: "unknown provider format", path: "providers",
                 body: #"{"name":"p","url":"http://h/v1","format":"carrier-pigeon"}"#, names: "format"),
        BadInput(name: "alias naming an unknown provider", path: "aliases",
                 body: #"{"name":"a","models":[{"model":"m","provider":"nowhere"}]}"#, names: "nowhere"),
        BadInput(name: "alias model with an unknown field", path: "aliases",
                 body: #"{"name":"a","models":[{"model":"m","provider":"openai","weight":2}]}"#, names: "models[0].weight"),
        BadInput(name: "alias naming an unknown API key", path: "aliases",
                 body: #"{"name":"a","models":[{"model":"m","provider":"openai","api_key_name":"nokey"}]}"#,
                 names: "api_key_name"),
        BadInput(name: "alias random_order of the wrong type", path: "aliases",
                 body: #"{"name":"a","random_order":"yes","models":[{"model":"m","provider":"openai"}]}"#,
                 names: "random_order"),
        BadInput(name: "API key with an unknown source", path: "api-keys",
                 body: #"{"name":"k","source":"vault","value":"x"}"#, names: "source"),
        BadInput(name: "name in the body differs from the path", path: "aliases/one", method: .PUT,
                 body: #"{"name":"two","models":[{"model":"m","provider":"openai"}]}"#, names: "name"),
        BadInput(name: "body not an object", path: "gateway-keys", body: "[1,2]", names: "body"),
        BadInput(name: "name colliding with a built-in provider", path: "providers",
                 body: #"{"name":"openai","url":"http://h/v1"}"#, names: "name"),
    ]

    /// Each bad input gets a 400 naming the field, and nothing is stored.
    @Test(arguments: badInputs)
    func badInputIsRefused(input: BadInput) async throws {
        let admin = try await AdminServer.start()
        let before = try await admin.snapshot()
        let answer = try await admin.admin(input.path, method: input.method, body: input.body)
        #expect(answer.status == input.status)
        let message = answer.json["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains(input.names), "\(message)")
        #expect(try await admin.snapshot() == before, "nothing stored")
        await admin.stop()
    }

    /// A second key, alias, provider or API key of a taken name is a 400 naming `name`; nothing changes.
    @Test func collidingNamesAreRefused() async throws {
        let admin = try await AdminServer.start()
        for (path, body) in [("gateway-keys", #"{"name":"team"}"#),
                             ("providers", #"{"name":"mine","url":"http://127.0.0.1:1/v1/chat/completions"}"#),
                             ("api-keys", #"{"name":"k1","source":"env","value":"SOME_VAR"}"#),
                             ("aliases", #"{"name":"a1","models":[{"model":"m","provider":"mine"}]}"#)] {
            #expect(try await admin.admin(path, body: body).status == 201, "\(path)")
            let before = try await admin.snapshot()
            let again = try await admin.admin(path, body: body)
            #expect(again.status == 400, "\(path)")
            #expect(again.json["error"]?["message"]?.stringValue?.hasPrefix("name:") == true)
            #expect(try await admin.snapshot() == before)
        }
        await admin.stop()
    }

    /// Without `CHRONICLE_SECRET_KEY` a key value is refused (409) while an environment variable's name is
    /// stored; with it, the value is stored encrypted and never read back.
    @Test func providerKeysNeedTheMasterKey() async throws {
        let plain = try await AdminServer.start(secretKey: nil)
        let refused = try await plain.admin("api-keys", body: #"{"name":"k","source":"literal","value":"sk-123"}"#)
        #expect(refused.status == 409)
        #expect(refused.json["error"]?["kind"] == .string("secret_key_not_configured"))
        #expect(try await plain.admin("api-keys", body: #"{"name":"k","source":"env","value":"MY_KEY"}"#).status == 201)
        let listed = try await plain.admin("api-keys", method: .GET)
        #expect(listed.json["api_keys"]?.arrayValue?.first?["env"] == .string("MY_KEY"))
        await plain.stop()

        let sealed = try await AdminServer.start()
        #expect(try await sealed.admin("api-keys", body: #"{"name":"k","source":"literal","value":"sk-123"}"#).status == 201)
        let stored = try await sealed.store.fetchText("SELECT source, value FROM chronicle_api_keys", [])
        #expect(stored.first?["source"] == "encrypted")
        #expect(stored.first?["value"]?.contains("sk-123") == false)
        let everything = try await sealed.admin("api-keys", method: .GET).json
        let audit = try await sealed.admin("audit", method: .GET).json
        #expect(!"\(everything)\(audit)".contains("sk-123"), "no read returns a key")
        await sealed.stop()
    }

    /// A provider key added through the admin API is scrubbed from errors like a configured one, even when
    /// the upstream echoes it back.
    @Test func keysAddedAtRuntimeAreRedacted() async throws {
        let upstream = try await MockUpstream.start(.json(#"{"error":{"message":"bad key sk-echoed-secret-123"}}"#, status: 401))
        let admin = try await AdminServer.start()
        #expect(try await admin.admin("providers", body: """
            {"name":"echo","url":"\(upstream.url())","prefix":"echo/","api_key":"sk-echoed-secret-123"}
            """).status == 201)
        let answer = try await admin.server.send("/v1/chat/completions",
                                                 body: #"{"model":"echo/m","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(answer.status == 401)
        #expect(!answer.body.contains("sk-echoed-secret-123"), "\(answer.body)")
        #expect(answer.body.contains("[REDACTED]"))
        await admin.stop()
        await upstream.stop()
    }

    /// Rows the Rust Chronicle wrote in its configuration tables (format as JSON, headers as a JSON object,
    /// an env-sourced named key) route calls after start-up, merged with the files.
    @Test func rustConfigurationRowsRouteCalls() async throws {
        let upstream = try await MockUpstream.start(chatReply)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-rust-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("chronicle.db").path
        let seed = try await SQLiteLogStore.open(path: path)
        try await seed.migrate()
        for statement in [
            """
            INSERT INTO chronicle_custom_providers (name, label, url, api_key, api_key_source, format, headers, prefix)
            VALUES ('vllm', 'vLLM', '\(upstream.url())', 'RUST_TEST_VLLM_KEY', 'env',
              '{"type":"open_ai","transforms":{"supports_message_name":false,"system_in_messages":true}}',
              '{"x-team":"research"}', 'vllm/')
            """,
            "INSERT INTO chronicle_aliases (id, name, random_order) VALUES (7, 'fast', false)",
            "INSERT INTO chronicle_alias_providers (alias_id, sort, model, provider, api_key_name) VALUES (7, 0, 'llama', 'vllm', 'team_key')",
            "INSERT INTO chronicle_api_keys (name, source, value) VALUES ('team_key', 'env', 'RUST_TEST_TEAM_KEY')",
        ] { _ = try await seed.query(statement) }
        try await seed.close()
        setenv("RUST_TEST_TEAM_KEY", "sk-team-from-env", 1)
        let store = try await SQLiteLogStore.open(path: path)
        let gateway = try Gateway.Builder().withHTTPClient(upstreamClient).withLogger(SessionDatabase.quiet).build()
        let access = AccessControl(settings: SecuritySettings())
        let reloader = ConfigReloader(gateway: gateway, access: access,
                                      files: .init(gateway: GatewayConfiguration(), gatewayKeys: []), store: store,
                                      secrets: nil, logger: SessionDatabase.quiet)
        #expect(await reloader.reloadDatabase())
        #expect(gateway.aliases.map(\.name) == ["fast"])
        #expect(gateway.hasProvider(named: "vllm"))
        let stream = try await gateway.send(ChatRequest(model: "fast", messages: [ChatMessage(role: "user", content: .text("hi"))]))
        _ = try await stream.collect()
        let sent = try #require(upstream.requests.last)
        #expect(sent.json?["model"] == .string("llama"))
        #expect(sent.headers["authorization"] == "Bearer sk-team-from-env")
        #expect(sent.headers["x-team"] == "research")
        try await gateway.shutdown()
        try await store.close()
        await upstream.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The admin API needs the admin key: a gateway key or none is refused.
    @Test func adminKeyRequired() async throws {
        let admin = try await AdminServer.start()
        #expect(try await admin.admin("providers", method: .GET, key: "wrong").status == 403)
        #expect(try await admin.server.send("/v1/admin/providers", method: .GET).status == 401)
        #expect(try await admin.admin("providers", method: .GET).status == 200)
        await admin.stop()
    }

    /// A gateway key made through the admin API is required at once; its limits apply; revoking it refuses it
    /// at once (one replica: no propagation involved).
    @Test func gatewayKeyLifecycleOnOneReplica() async throws {
        let admin = try await AdminServer.start()
        let created = try await admin.admin("gateway-keys", body: #"{"name":"t","requests_per_minute":2,"max_cost_usd_per_day":5.5}"#)
        #expect(created.status == 201)
        #expect(created.json["max_cost_usd_per_day"] == .double(5.5))
        let key = try #require(created.json["key"]?.stringValue)
        let body = #"{"model":"nowhere/m","messages":[{"role":"user","content":"hi"}]}"#
        #expect(try await admin.server.send("/v1/chat/completions", body: body).status == 401, "keys now required")
        let auth = [("authorization", "Bearer \(key)")]
        #expect(try await admin.server.send("/v1/chat/completions", body: body, headers: auth).status != 401)
        #expect(try await admin.server.send("/v1/chat/completions", body: body, headers: auth).status != 401)
        #expect(try await admin.server.send("/v1/chat/completions", body: body, headers: auth).status == 429)
        #expect(try await admin.admin("gateway-keys/t", method: .DELETE).status == 200)
        #expect(try await admin.server.send("/v1/chat/completions", body: body, headers: auth).status == 401)
        await admin.stop()
    }
}
