import AsyncHTTPClient
import ChronicleCore
@testable import ChronicleServer
import ChronicleStorage
import ChronicleTesting
import Foundation
import Logging
import NIOCore
import Testing

@Suite("The dashboard: embedded files, their headers, and the live tail of calls")
struct DashboardTests {
    static let assetsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/ChronicleServer/Dashboard/assets")

    /// The files embedded in the binary are exactly the files under Dashboard/assets (run
    /// scripts/embed-dashboard.py after editing one).
    @Test func embeddedAssetsMatchTheSourceFiles() throws {
        let enumerator = FileManager.default.enumerator(at: Self.assetsDirectory, includingPropertiesForKeys: nil)
        var onDisk: [String: String] = [:]
        let base = Self.assetsDirectory.standardizedFileURL.path + "/"
        while let url = enumerator?.nextObject() as? URL {
            guard ["html", "js", "css", "svg"].contains(url.pathExtension) else { continue }
            let name = String(url.standardizedFileURL.path.dropFirst(base.count))
            onDisk[name] = try String(contentsOf: url, encoding: .utf8)
        }
        #expect(!onDisk.isEmpty)
        #expect(Set(onDisk.keys) == Set(DashboardAssets.files.keys), "run scripts/embed-dashboard.py")
        for (name, text) in onDisk {
            #expect(DashboardAssets.files[name] == text, "\(name) changed: run scripts/embed-dashboard.py")
        }
    }

    /// All the dashboard's JavaScript and CSS together stay under 250 KB.
    @Test func scriptsAndStylesStaySmall() {
        let bytes = DashboardAssets.files.filter { $0.key.hasSuffix(".js") || $0.key.hasSuffix(".css") }
            .reduce(0) { $0 + $1.value.utf8.count }
        #expect(bytes > 0)
        #expect(bytes < 250 * 1024)
    }

    /// The page loads without the admin key, with a strict CSP, an ETag, and a 304 for a current copy.
    @Test func pageIsServedWithCSPAndETag() async throws {
        var security = SecuritySettings()
        security.adminKeyDigest = KeyDigest(of: "admin-secret")
        let server = try await RunningServer.start(configuration: GatewayConfiguration(), security: security)
        let page = try await server.send("/ui/", method: .GET)
        #expect(page.status == 200)
        #expect(page.headers["content-type"].first == "text/html; charset=utf-8")
        #expect(page.body.contains("/ui/app.js"))
        let csp = page.headers["content-security-policy"].first ?? ""
        #expect(csp.contains("default-src 'self'"))
        #expect(csp.contains("script-src 'self'"))
        #expect(!csp.contains("unsafe-inline"))
        let etag = try #require(page.headers["etag"].first)
        let again = try await server.send("/ui/", method: .GET, headers: [("if-none-match", etag)])
        #expect(again.status == 304)
        #expect(again.body.isEmpty)
        let script = try await server.send("/ui/app.js", method: .GET)
        #expect(script.status == 200)
        #expect(script.headers["content-type"].first == "text/javascript; charset=utf-8")
        let missing = try await server.send("/ui/missing.js", method: .GET)
        #expect(missing.status == 404)
        #expect(missing.headers["content-security-policy"].first == csp)
        let bare = try await server.send("/ui", method: .GET)
        #expect(bare.status == 200)
        #expect(bare.body == page.body)
        let session = try await server.json("/ui/session.json", method: .GET)
        #expect(session.json["key_required"] == true)
        // The data stays behind the key.
        let calls = try await server.send("/v1/calls/tail", method: .GET)
        #expect(calls.status == 401)
        await server.stop()
    }

    /// A call is pushed to the live tail once the database has committed it, so it can be read back at once.
    @Test func liveTailPushesStoredCalls() async throws {
        let upstream = try await MockUpstream.start(.json(try Fixtures.text("openai_text_response_nonstreaming.json")))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chronicle-tail-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("chronicle.db").path
        let store = try await SQLiteLogStore.open(path: path)
        try await store.migrate()
        let reader = try await SQLiteLogStore.open(path: path)
        let feed = LiveCallFeed()
        var configuration = LogWriter.Configuration()
        configuration.flushInterval = .milliseconds(20)
        configuration.onStored = feed.publish
        let writer = LogWriter(store: store, configuration: configuration)
        let server = try await RunningServer.start(
            configuration: GatewayConfiguration(providers: [CustomProviderConfig(name: "up", url: upstream.url(), prefix: "up/")]),
            sink: writer, reader: reader, services: [writer], liveCalls: feed)

        var request = HTTPClientRequest(url: server.base + "/v1/calls/tail")
        request.headers.add(name: "connection", value: "close")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(response.status.code == 200)
        #expect(response.headers["content-type"].first == "text/event-stream")
        var body = response.body.makeAsyncIterator()
        _ = try await body.next()  // the opening comment: subscribed
        #expect(feed.subscriberCount == 1)

        let chat = try await server.send("/v1/chat/completions", body: """
            {"model":"up/gpt-4o","messages":[{"role":"user","content":"hello tail"}]}
            """, headers: [("x-chronicle-application", "tail-app")])
        #expect(chat.status == 200)
        let callID = try #require(chat.headers["x-chronicle-call-id"].first)
        var text = ""
        while !text.contains("\n\n") || !text.contains("data:") {
            guard let chunk = try await body.next() else { break }
            text += String(buffer: chunk)
        }
        let data = try #require(sseEvents(text).first?.data)
        let calls = try JSONCoding.decode(JSONValue.self, from: Array(data.utf8))
        #expect(calls.arrayValue?.count == 1)
        #expect(calls.arrayValue?.first?["id"] == .string(callID))
        #expect(calls.arrayValue?.first?["application"] == "tail-app")
        // Committed before it was announced: the detail is there.
        let detail = try await server.json("/v1/calls/\(callID)", method: .GET)
        #expect(detail.status == 200)

        // Shutting down ends the open tail instead of waiting for its client.
        let stopping = ContinuousClock.now
        await server.stop()
        #expect(ContinuousClock.now - stopping < .seconds(10))
        await upstream.stop()
        try? await store.close()
        try? await reader.close()
    }
}
