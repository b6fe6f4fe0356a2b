import ArgumentParser
import AsyncHTTPClient
import ChronicleCore
import ChronicleServer
import Foundation
import NIOCore
import NIOHTTP1

/// Where an admin subcommand sends its change: a running server's admin API, or the database directly.
struct AdminTarget: ParsableArguments {
    @Option(help: "A running server's base URL, e.g. http://127.0.0.1:9782 (env CHRONICLE_URL).")
    var url: String?

    @Option(help: "The admin key for --url (env CHRONICLE_ADMIN_KEY).")
    var adminKey: String?

    @Option(help: "Work on this database directly instead (a SQLite path or a postgres:// URL); the change is checked and audited as through the API.")
    var database: String?

    @Option(name: [.short, .long], help: "A chronicle.toml, for --database: its providers and keys are known to the checks.")
    var config: String?

    /// Sends one admin request and prints the JSON answer; a 4xx or 5xx answer fails the command.
    func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws {
        let environment = ProcessInfo.processInfo.environment
        let exchange: @Sendable (String, String) async throws -> (Int, String) = { base, key in
            var request = HTTPClientRequest(url: base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/admin/" + path)
            request.method = method
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            request.headers.add(name: "content-type", value: "application/json")
            if let body { request.body = .bytes(ByteBuffer(bytes: try JSONCoding.encodeBytes(body))) }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
            return (Int(response.status.code), String(buffer: bytes))
        }
        let status: Int
        let text: String
        if let database {
            (status, text) = try await ChronicleServer.withLocalAdmin(
                overrides: .init(configPath: config, database: database), exchange)
        } else {
            guard let base = url ?? environment["CHRONICLE_URL"] else {
                throw ValidationError("Give --url (with --admin-key) or --database")
            }
            guard let key = adminKey ?? environment["CHRONICLE_ADMIN_KEY"] else {
                throw ValidationError("--url needs --admin-key or CHRONICLE_ADMIN_KEY")
            }
            (status, text) = try await exchange(base, key)
        }
        print(Self.pretty(text))
        if status >= 400 { throw ExitCode(1) }
    }

    static func pretty(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage gateway keys (stored as SHA-256 digests; a new key is shown once).",
        subcommands: [Create.self, Update.self, Revoke.self, List.self])

    struct Limits: ParsableArguments {
        @Option(help: "Requests per minute, for the whole fleet.") var rpm: Int?
        @Option(help: "Tokens per minute, for the whole fleet.") var tpm: Int?
        @Option(help: "Requests in flight at once.") var maxConcurrent: Int?
        @Option(help: "A daily budget in US dollars.") var maxCostUsdPerDay: Double?
        @Option(help: "A monthly budget in US dollars.") var maxCostUsdPerMonth: Double?
        @Flag(help: "The key may also use the read and admin APIs.") var admin = false

        func json(name: String?) -> JSONValue {
            var object: [String: JSONValue] = [:]
            if let name { object["name"] = .string(name) }
            if let rpm { object["requests_per_minute"] = .integer(Int64(rpm)) }
            if let tpm { object["tokens_per_minute"] = .integer(Int64(tpm)) }
            if let maxConcurrent { object["max_concurrent_requests"] = .integer(Int64(maxConcurrent)) }
            if let maxCostUsdPerDay { object["max_cost_usd_per_day"] = .double(maxCostUsdPerDay) }
            if let maxCostUsdPerMonth { object["max_cost_usd_per_month"] = .double(maxCostUsdPerMonth) }
            if admin { object["admin"] = true }
            return .object(object)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (only this once).")
        @Option(help: "The key's name, logged with each call.") var name: String
        @OptionGroup var limits: Limits
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.POST, "gateway-keys", body: limits.json(name: name)) }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a key's limits and budgets.")
        @Argument(help: "The key's name.") var name: String
        @OptionGroup var limits: Limits
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.PUT, "gateway-keys/\(name)", body: limits.json(name: nil)) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; every replica refuses it within a second.")
        @Argument(help: "The key's name.") var name: String
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.DELETE, "gateway-keys/\(name)") }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys and their limits (never the keys).")
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.GET, "gateway-keys") }
    }
}

struct Providers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage custom providers kept in the database.", subcommands: [List.self, Set.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List providers (never their keys).")
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.GET, "providers") }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or replace a provider.")
        @Argument(help: "The provider's name.") var name: String
        @Option(help: "Its chat endpoint URL (--url is the server to send the change to).") var endpoint: String
        @Option(help: "openai (default), anthropic, ollama, gemini or azure.") var format: String?
        @Option(help: "Model names starting with this route here.") var prefix: String?
        @Option(help: "An environment variable holding its key.") var apiKeyEnv: String?
        @Option(help: "Its key, stored encrypted (needs CHRONICLE_SECRET_KEY where the change is made).") var apiKey: String?
        @OptionGroup var target: AdminTarget
        func run() async throws {
            var object: [String: JSONValue] = ["url": .string(endpoint)]
            if let format { object["format"] = .string(format) }
            if let prefix { object["prefix"] = .string(prefix) }
            if let apiKeyEnv {
                object["api_key"] = .string(apiKeyEnv)
                object["api_key_source"] = "env"
            } else if let apiKey {
                object["api_key"] = .string(apiKey)
            }
            try await target.send(.PUT, "providers/\(name)", body: .object(object))
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a provider.")
        @Argument(help: "The provider's name.") var name: String
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.DELETE, "providers/\(name)") }
    }
}

struct Aliases: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage aliases kept in the database.", subcommands: [List.self, Set.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List aliases.")
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.GET, "aliases") }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or replace an alias.")
        @Argument(help: "The alias.") var name: String
        @Option(name: .customLong("model"), help: "A choice as provider/model, in order; repeat for fallbacks.")
        var models: [String]
        @Flag(help: "Start at a random choice.") var randomOrder = false
        @OptionGroup var target: AdminTarget
        func run() async throws {
            let choices = try models.map { entry -> JSONValue in
                guard let slash = entry.firstIndex(of: "/"), slash != entry.startIndex, slash != entry.index(before: entry.endIndex)
                else { throw ValidationError("--model \(entry): write provider/model") }
                return .object(["provider": .string(String(entry[..<slash])),
                                "model": .string(String(entry[entry.index(after: slash)...]))])
            }
            try await target.send(.PUT, "aliases/\(name)",
                                  body: .object(["models": .array(choices), "random_order": .bool(randomOrder)]))
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an alias.")
        @Argument(help: "The alias.") var name: String
        @OptionGroup var target: AdminTarget
        func run() async throws { try await target.send(.DELETE, "aliases/\(name)") }
    }
}
