import ChronicleCore
import ChronicleStorage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Why an admin change cannot be made.
enum AdminError: Error {
    case noDatabase
}

/// `/v1/admin/**`: list, create, update and delete providers, aliases, provider API keys and gateway keys,
/// in JSON, with the admin key. Every change is checked as the configuration file is, stored with an audit
/// entry in one transaction, applied on this replica at once and on the others on `NOTIFY chronicle_config`.
/// No read returns a key.
struct AdminRoutes<Context: RequestContext>: Sendable {
    let reloader: ConfigReloader
    let access: AccessControl
    let maxBodySize = 1024 * 1024

    func register(on router: Router<Context>) {
        let admin = router.group("/v1/admin")
        admin.get("providers") { request, _ in try await respond(request) { _ in try await listProviders() } }
        admin.post("providers") { request, _ in
            try await change(request) { actor, body in try await setProvider(body, pathName: nil, creating: true, actor: actor) }
        }
        admin.put("providers/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request) { actor, body in
                try await setProvider(body, pathName: name, creating: false, actor: actor)
            }
        }
        admin.delete("providers/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request, readsBody: false) { actor, _ in try await removeProvider(name, actor: actor) }
        }
        admin.get("aliases") { request, _ in try await respond(request) { _ in try await listAliases() } }
        admin.post("aliases") { request, _ in
            try await change(request) { actor, body in try await setAlias(body, pathName: nil, creating: true, actor: actor) }
        }
        admin.put("aliases/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request) { actor, body in
                try await setAlias(body, pathName: name, creating: false, actor: actor)
            }
        }
        admin.delete("aliases/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request, readsBody: false) { actor, _ in try await removeAlias(name, actor: actor) }
        }
        admin.get("api-keys") { request, _ in try await respond(request) { _ in try await listAPIKeys() } }
        admin.post("api-keys") { request, _ in
            try await change(request) { actor, body in try await setAPIKey(body, pathName: nil, creating: true, actor: actor) }
        }
        admin.put("api-keys/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request) { actor, body in
                try await setAPIKey(body, pathName: name, creating: false, actor: actor)
            }
        }
        admin.delete("api-keys/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request, readsBody: false) { actor, _ in try await removeAPIKey(name, actor: actor) }
        }
        admin.get("gateway-keys") { request, _ in try await respond(request) { _ in try await listGatewayKeys() } }
        admin.post("gateway-keys") { request, _ in
            try await change(request) { actor, body in try await createGatewayKey(body, actor: actor) }
        }
        admin.put("gateway-keys/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request) { actor, body in try await updateGatewayKey(name, body, actor: actor) }
        }
        admin.delete("gateway-keys/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await change(request, readsBody: false) { actor, _ in try await removeGatewayKey(name, actor: actor) }
        }
        admin.get("audit") { request, _ in
            try await respond(request) { _ in
                guard let store = reloader.store else { throw AdminRoutes.noDatabase }
                let limit = min(1000, max(1, Int(request.uri.queryParameters.get("limit") ?? "") ?? 100))
                return (.ok, ["entries": .array(try await store.auditTrail(limit: limit))])
            }
        }
        admin.post("reload") { request, _ in
            try await respond(request) { _ in
                let files = await reloader.reloadFiles()
                let database = await reloader.reloadDatabase()
                return (.ok, ["files": .bool(files), "database": .bool(database),
                              "generation": .integer(Int64(await reloader.generation))])
            }
        }
    }

    // MARK: Plumbing

    static var noDatabase: APIError {
        APIError(status: 409, kind: "no_database",
                 message: "The admin API keeps configuration in the database; this server has none (set `database`)")
    }

    /// Checks the admin key, runs `body` and answers its JSON.
    private func respond(_ request: Request, _ body: (String) async throws -> (HTTPResponse.Status, JSONValue))
        async throws -> Response
    {
        guard access.settings.adminKeyDigest != nil else {
            throw APIError(status: 403, kind: "admin_key_not_configured",
                           message: "The admin API needs an admin key: set admin_key in [security] or CHRONICLE_ADMIN_KEY")
        }
        let actor = try access.authorizeAdminActor(request.headers)
        let (status, value) = try await body(actor)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONCoding.encodeBytes(value))))
    }

    /// A change: reads a JSON object body (unless `readsBody` is false), then runs `body`.
    private func change(_ request: Request, readsBody: Bool = true,
                        _ body: (String, [String: JSONValue]) async throws -> (HTTPResponse.Status, JSONValue))
        async throws -> Response
    {
        var request = request
        var object: [String: JSONValue] = [:]
        if readsBody {
            let bytes = try await request.collectBody(upTo: maxBodySize)
            guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView),
                  case .object(let fields) = value else {
                throw APIError.badRequest("invalid_json", "body: expected a JSON object")
            }
            object = fields
        }
        return try await respond(request) { actor in
            guard reloader.store != nil else { throw AdminRoutes.noDatabase }
            return try await body(actor, object)
        }
    }

    /// Refuses fields the type does not have, then decodes; each problem is a 400 naming the field.
    static func decode<T: Decodable>(_ type: T.Type, _ object: [String: JSONValue], fields: Set<String>,
                                     path: String = "") throws -> T {
        for key in object.keys.sorted() where !fields.contains(key) {
            throw APIError.badRequest("unknown_field", "\(path)\(key): unknown field")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(try JSONCoding.encode(JSONValue.object(object))))
        } catch {
            throw APIError.badRequest("invalid_field", describeDecodingError(error))
        }
    }

    /// The body with the path's name filled in; a different name in the body is a mistake.
    static func named(_ object: [String: JSONValue], pathName: String?) throws -> [String: JSONValue] {
        var object = object
        if let pathName {
            if let given = object["name"], given != .string(pathName) {
                throw APIError.badRequest("invalid_field", "name: does not match the name in the path (\(pathName))")
            }
            object["name"] = .string(pathName)
        }
        guard case .string(let name)? = object["name"] else {
            throw APIError.badRequest("invalid_field", "name: required field is missing or not a string")
        }
        try checkName(name)
        return object
    }

    static func checkName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 200, !name.contains(where: { $0.isNewline || $0 == "/" }) else {
            throw APIError.badRequest("invalid_field", "name: must be 1 to 200 characters, without / or line breaks")
        }
    }

    private func audit(_ actor: String, _ action: String, _ kind: String, _ name: String, before: JSONValue?,
                       after: JSONValue?) -> AuditEntry {
        AuditEntry(actor: actor, action: action, kind: kind, name: name, before: before, after: after)
    }

    private func notFound(_ kind: String, _ name: String) -> APIError {
        APIError(status: 404, kind: "not_found", message: "No \(kind) named \"\(name)\" is stored in the database")
    }

    // MARK: Providers

    private func listProviders() async throws -> (HTTPResponse.Status, JSONValue) {
        let stored = await reloader.stored.providers
        let files = await reloader.fileLayer.gateway.providers.filter { file in !stored.contains { $0.name == file.name } }
        return (.ok, ["providers": .array(stored.map { Self.view($0, source: "database") }
                                          + files.map { Self.view($0, source: "file") })])
    }

    static func view(_ provider: CustomProviderConfig, source: String) -> JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(provider.name), "url": .string(provider.url), "source": .string(source),
            "label": provider.label.map(JSONValue.string) ?? .null, "prefix": provider.prefix.map(JSONValue.string) ?? .null,
            // Header values may carry credentials: only their names are shown.
            "headers": .object(provider.headers.mapValues { _ in .string("***") }),
            "models": provider.models.map { .array($0.map(JSONValue.string)) } ?? .null,
            "has_api_key": .bool(provider.apiKey?.isEmpty == false),
            "api_key_source": .string(provider.apiKey?.isEmpty == false ? (provider.apiKeySource ?? "literal") : "none"),
        ]
        if provider.apiKeySource == "env", let name = provider.apiKey { object["api_key_env"] = .string(name) }
        if let format = try? JSONCoding.decode(JSONValue.self, from: JSONCoding.encodeBytes(provider.format)) {
            object["format"] = format
        }
        return .object(object)
    }

    private func setProvider(_ body: [String: JSONValue], pathName: String?, creating: Bool, actor: String)
        async throws -> (HTTPResponse.Status, JSONValue)
    {
        let object = try Self.named(body, pathName: pathName)
        var provider = try Self.decode(CustomProviderConfig.self, object, fields: CustomProviderConfig.fieldNames)
        guard let url = URL(string: provider.url), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
              url.host != nil else {
            throw APIError.badRequest("invalid_field", "url: must be an http(s) URL")
        }
        if let source = provider.apiKeySource, !["env", "literal"].contains(source) {
            throw APIError.badRequest("invalid_field", "api_key_source: must be \"env\" or \"literal\", not \"\(source)\"")
        }
        let stored = await reloader.stored.providers
        let before = stored.first { $0.name == provider.name }
        let fileNames = await reloader.fileLayer.gateway.providers.map(\.name)
        if creating, before != nil || fileNames.contains(provider.name) || reloader.gateway.fixedProviderNames.contains(provider.name) {
            throw APIError.badRequest("name_taken", "name: a provider named \"\(provider.name)\" already exists")
        }
        if let key = provider.apiKey, !key.isEmpty, provider.apiKeySource != "env" {
            provider.apiKey = try seal(key, field: "api_key")
            provider.apiKeySource = SecretBox.source
        }
        // A provider that cannot be built is refused here rather than at the next reload.
        do { try reloader.gateway.checkProvider(provider) } catch {
            throw APIError.badRequest("invalid_field", "provider \"\(provider.name)\": \(error)")
        }
        let after = Self.view(provider, source: "database")
        try await reloader.apply(.setProvider(provider), audit: audit(
            actor, before == nil ? "create" : "update", "provider", provider.name,
            before: before.map { Self.view($0, source: "database") }, after: after))
        return (before == nil ? .created : .ok, after)
    }

    private func removeProvider(_ name: String, actor: String) async throws -> (HTTPResponse.Status, JSONValue) {
        guard let before = await reloader.stored.providers.first(where: { $0.name == name }) else {
            throw notFound("provider", name)
        }
        let fileNames = Set(await reloader.fileLayer.gateway.providers.map(\.name))
            .union(reloader.gateway.fixedProviderNames)
        if !fileNames.contains(name) {
            let aliases = await reloader.stored.aliases + reloader.fileLayer.gateway.aliases
            if let user = aliases.first(where: { $0.models.contains { $0.provider == name } }) {
                throw APIError.badRequest("provider_in_use", "name: provider \"\(name)\" is used by alias \"\(user.name)\"")
            }
        }
        try await reloader.apply(.removeProvider(name), audit: audit(
            actor, "delete", "provider", name, before: Self.view(before, source: "database"), after: nil))
        return (.ok, ["deleted": .string(name)])
    }

    /// Encrypts a key for storage, or refuses when there is no master key.
    private func seal(_ key: String, field: String) throws -> String {
        guard let secrets = reloader.secrets else {
            throw APIError(status: 409, kind: "secret_key_not_configured",
                           message: "\(field): storing a key needs CHRONICLE_SECRET_KEY (the master key it is encrypted under); set it, or store an environment variable's name instead")
        }
        return try secrets.seal(key)
    }

    // MARK: Aliases

    private func listAliases() async throws -> (HTTPResponse.Status, JSONValue) {
        let stored = await reloader.stored.aliases
        let files = await reloader.fileLayer.gateway.aliases.filter { file in !stored.contains { $0.name == file.name } }
        return (.ok, ["aliases": .array(stored.map { Self.view($0, source: "database") }
                                        + files.map { Self.view($0, source: "file") })])
    }

    static func view(_ alias: AliasConfig, source: String) -> JSONValue {
        .object([
            "name": .string(alias.name), "random_order": .bool(alias.randomOrder), "source": .string(source),
            "models": .array(alias.models.map { model in
                .object(["model": .string(model.model), "provider": .string(model.provider),
                         "api_key_name": model.apiKeyName.map(JSONValue.string) ?? .null])
            }),
        ])
    }

    private func setAlias(_ body: [String: JSONValue], pathName: String?, creating: Bool, actor: String)
        async throws -> (HTTPResponse.Status, JSONValue)
    {
        let object = try Self.named(body, pathName: pathName)
        if case .array(let models)? = object["models"] {
            for (index, model) in models.enumerated() {
                guard case .object(let fields) = model else {
                    throw APIError.badRequest("invalid_field", "models[\(index)]: expected an object")
                }
                for key in fields.keys.sorted() where !AliasModel.fieldNames.contains(key) {
                    throw APIError.badRequest("unknown_field", "models[\(index)].\(key): unknown field")
                }
            }
        }
        let alias = try Self.decode(AliasConfig.self, object, fields: AliasConfig.fieldNames)
        guard !alias.models.isEmpty else {
            throw APIError.badRequest("invalid_field", "models: an alias needs at least one model")
        }
        let stored = await reloader.stored
        let files = await reloader.fileLayer
        let providers = reloader.gateway.fixedProviderNames.union(stored.providers.map(\.name))
            .union(files.gateway.providers.map(\.name))
        let keys = Set(stored.apiKeys.map(\.name) + files.gateway.apiKeys.map(\.name))
        for (index, model) in alias.models.enumerated() {
            if !providers.contains(model.provider) {
                throw APIError.badRequest("unknown_provider",
                                          "models[\(index)].provider: unknown provider \"\(model.provider)\"")
            }
            if let key = model.apiKeyName, !keys.contains(key) {
                throw APIError.badRequest("unknown_api_key", "models[\(index)].api_key_name: unknown API key \"\(key)\"")
            }
        }
        let before = stored.aliases.first { $0.name == alias.name }
        if creating, before != nil || files.gateway.aliases.contains(where: { $0.name == alias.name }) {
            throw APIError.badRequest("name_taken", "name: an alias named \"\(alias.name)\" already exists")
        }
        let after = Self.view(alias, source: "database")
        try await reloader.apply(.setAlias(alias), audit: audit(
            actor, before == nil ? "create" : "update", "alias", alias.name,
            before: before.map { Self.view($0, source: "database") }, after: after))
        return (before == nil ? .created : .ok, after)
    }

    private func removeAlias(_ name: String, actor: String) async throws -> (HTTPResponse.Status, JSONValue) {
        guard let before = await reloader.stored.aliases.first(where: { $0.name == name }) else {
            throw notFound("alias", name)
        }
        try await reloader.apply(.removeAlias(name), audit: audit(
            actor, "delete", "alias", name, before: Self.view(before, source: "database"), after: nil))
        return (.ok, ["deleted": .string(name)])
    }

    // MARK: Provider API keys

    private func listAPIKeys() async throws -> (HTTPResponse.Status, JSONValue) {
        let stored = await reloader.stored.apiKeys
        let files = await reloader.fileLayer.gateway.apiKeys.filter { file in !stored.contains { $0.name == file.name } }
        return (.ok, ["api_keys": .array(stored.map { Self.view($0, origin: "database") }
                                         + files.map { Self.view($0, origin: "file") })])
    }

    static func view(_ key: APIKeyConfig, origin: String) -> JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(key.name), "source": .string(key.source == "env" ? "env" : key.source == SecretBox.source
                ? SecretBox.source : "literal"),
            "origin": .string(origin),
        ]
        if key.source == "env" { object["env"] = .string(key.value) }
        return .object(object)
    }

    private func setAPIKey(_ body: [String: JSONValue], pathName: String?, creating: Bool, actor: String)
        async throws -> (HTTPResponse.Status, JSONValue)
    {
        let object = try Self.named(body, pathName: pathName)
        var key = try Self.decode(APIKeyConfig.self, object, fields: APIKeyConfig.fieldNames)
        guard ["env", "literal"].contains(key.source) else {
            throw APIError.badRequest("invalid_field", "source: must be \"env\" or \"literal\", not \"\(key.source)\"")
        }
        guard !key.value.isEmpty else { throw APIError.badRequest("invalid_field", "value: must not be empty") }
        let stored = await reloader.stored.apiKeys
        let before = stored.first { $0.name == key.name }
        let inFiles = await reloader.fileLayer.gateway.apiKeys.contains { $0.name == key.name }
        if creating, before != nil || inFiles {
            throw APIError.badRequest("name_taken", "name: an API key named \"\(key.name)\" already exists")
        }
        if key.source == "literal" {
            key.value = try seal(key.value, field: "value")
            key.source = SecretBox.source
        }
        let after = Self.view(key, origin: "database")
        try await reloader.apply(.setAPIKey(key), audit: audit(
            actor, before == nil ? "create" : "update", "api_key", key.name,
            before: before.map { Self.view($0, origin: "database") }, after: after))
        return (before == nil ? .created : .ok, after)
    }

    private func removeAPIKey(_ name: String, actor: String) async throws -> (HTTPResponse.Status, JSONValue) {
        guard let before = await reloader.stored.apiKeys.first(where: { $0.name == name }) else {
            throw notFound("API key", name)
        }
        try await reloader.apply(.removeAPIKey(name), audit: audit(
            actor, "delete", "api_key", name, before: Self.view(before, origin: "database"), after: nil))
        return (.ok, ["deleted": .string(name)])
    }

    // MARK: Gateway keys

    static func view(_ key: StoredGatewayKey) -> JSONValue {
        func int(_ value: Int?) -> JSONValue { value.map { .integer(Int64($0)) } ?? .null }
        func number(_ value: Double?) -> JSONValue { value.map(JSONValue.double) ?? .null }
        return .object([
            "name": .string(key.name), "source": "database", "admin": .bool(key.admin),
            "requests_per_minute": int(key.requestsPerMinute), "tokens_per_minute": int(key.tokensPerMinute),
            "max_concurrent_requests": int(key.maxConcurrentRequests),
            "max_cost_usd_per_day": number(key.maxCostUSDPerDay), "max_cost_usd_per_month": number(key.maxCostUSDPerMonth),
            "created_at": .string(ISO8601DateFormatter().string(from: key.createdAt)),
        ])
    }

    static func view(_ key: GatewayKeyConfig) -> JSONValue {
        func int(_ value: Int?) -> JSONValue { value.map { .integer(Int64($0)) } ?? .null }
        return .object([
            "name": .string(key.name), "source": "file", "admin": .bool(key.admin),
            "requests_per_minute": int(key.requestsPerMinute), "tokens_per_minute": int(key.tokensPerMinute),
            "max_concurrent_requests": int(key.maxConcurrentRequests),
        ])
    }

    private func listGatewayKeys() async throws -> (HTTPResponse.Status, JSONValue) {
        let stored = await reloader.stored.gatewayKeys
        let files = await reloader.fileLayer.gatewayKeys.filter { file in !stored.contains { $0.name == file.name } }
        return (.ok, ["gateway_keys": .array(stored.map(Self.view) + files.map(Self.view))])
    }

    private func createGatewayKey(_ body: [String: JSONValue], actor: String) async throws
        -> (HTTPResponse.Status, JSONValue)
    {
        let object = try Self.named(body, pathName: nil)
        let input = try Self.decode(AdminGatewayKeyInput.self, object, fields: AdminGatewayKeyInput.fieldNames)
        try input.check()
        let name = input.name ?? ""
        let inDatabase = await reloader.stored.gatewayKeys.contains { $0.name == name }
        let inFiles = await reloader.fileLayer.gatewayKeys.contains { $0.name == name }
        if inDatabase || inFiles { throw APIError.badRequest("name_taken", "name: a gateway key named \"\(name)\" already exists") }
        let secret = Self.newGatewayKey()
        let key = StoredGatewayKey(
            name: name, keySHA256: KeyDigest(of: secret).hex, requestsPerMinute: input.requestsPerMinute,
            tokensPerMinute: input.tokensPerMinute, maxConcurrentRequests: input.maxConcurrentRequests,
            maxCostUSDPerDay: input.maxCostUSDPerDay, maxCostUSDPerMonth: input.maxCostUSDPerMonth,
            admin: input.admin ?? false, createdAt: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000))
        let after = Self.view(key)
        try await reloader.apply(.setGatewayKey(key), audit: audit(actor, "create", "gateway_key", name,
                                                                   before: nil, after: after))
        guard case .object(var answer) = after else { return (.created, after) }
        // The only time the key is shown: only its digest is stored.
        answer["key"] = .string(secret)
        return (.created, .object(answer))
    }

    private func updateGatewayKey(_ name: String, _ body: [String: JSONValue], actor: String) async throws
        -> (HTTPResponse.Status, JSONValue)
    {
        let object = try Self.named(body, pathName: name)
        let input = try Self.decode(AdminGatewayKeyInput.self, object, fields: AdminGatewayKeyInput.fieldNames)
        try input.check()
        guard let before = await reloader.stored.gatewayKeys.first(where: { $0.name == name }) else {
            throw notFound("gateway key", name)
        }
        // Fields left out keep their values; JSON null clears a limit.
        var key = before
        func pick<T>(_ field: AdminGatewayKeyInput.CodingKeys, _ value: T?, _ current: T?) -> T? {
            object[field.rawValue] == nil ? current : value
        }
        key.requestsPerMinute = pick(.requestsPerMinute, input.requestsPerMinute, before.requestsPerMinute)
        key.tokensPerMinute = pick(.tokensPerMinute, input.tokensPerMinute, before.tokensPerMinute)
        key.maxConcurrentRequests = pick(.maxConcurrentRequests, input.maxConcurrentRequests, before.maxConcurrentRequests)
        key.maxCostUSDPerDay = pick(.maxCostUSDPerDay, input.maxCostUSDPerDay, before.maxCostUSDPerDay)
        key.maxCostUSDPerMonth = pick(.maxCostUSDPerMonth, input.maxCostUSDPerMonth, before.maxCostUSDPerMonth)
        key.admin = input.admin ?? before.admin
        let after = Self.view(key)
        try await reloader.apply(.setGatewayKey(key), audit: audit(actor, "update", "gateway_key", name,
                                                                   before: Self.view(before), after: after))
        return (.ok, after)
    }

    private func removeGatewayKey(_ name: String, actor: String) async throws -> (HTTPResponse.Status, JSONValue) {
        guard let before = await reloader.stored.gatewayKeys.first(where: { $0.name == name }) else {
            throw notFound("gateway key", name)
        }
        try await reloader.apply(.removeGatewayKey(name), audit: audit(actor, "delete", "gateway_key", name,
                                                                       before: Self.view(before), after: nil))
        return (.ok, ["deleted": .string(name)])
    }

    /// `ck-` and 32 random bytes in hexadecimal.
    static func newGatewayKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "ck-" + bytes.map { String(format: "%02x", $0) }.joined()
    }
}

/// What a gateway key's admin JSON may set.
struct AdminGatewayKeyInput: Decodable {
    var name: String?
    var requestsPerMinute: Int?
    var tokensPerMinute: Int?
    var maxConcurrentRequests: Int?
    var maxCostUSDPerDay: Double?
    var maxCostUSDPerMonth: Double?
    var admin: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, admin
        case requestsPerMinute = "requests_per_minute"
        case tokensPerMinute = "tokens_per_minute"
        case maxConcurrentRequests = "max_concurrent_requests"
        case maxCostUSDPerDay = "max_cost_usd_per_day"
        case maxCostUSDPerMonth = "max_cost_usd_per_month"
    }

    static let fieldNames = Set(CodingKeys.allCases.map(\.rawValue))

    func check() throws {
        for (key, value) in [(CodingKeys.requestsPerMinute, requestsPerMinute), (.tokensPerMinute, tokensPerMinute),
                             (.maxConcurrentRequests, maxConcurrentRequests)] {
            if let value, value <= 0 { throw APIError.badRequest("invalid_field", "\(key.rawValue): must be positive") }
        }
        for (key, value) in [(CodingKeys.maxCostUSDPerDay, maxCostUSDPerDay), (.maxCostUSDPerMonth, maxCostUSDPerMonth)] {
            if let value, !(value > 0 && value.isFinite) {
                throw APIError.badRequest("invalid_field", "\(key.rawValue): must be a positive number")
            }
        }
    }
}
