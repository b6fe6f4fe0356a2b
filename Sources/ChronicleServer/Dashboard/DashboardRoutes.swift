import Crypto
import HTTPTypes
import Hummingbird
import NIOCore

/// The web dashboard at `/ui/`: static files embedded in the binary (``DashboardAssets``), so that the
/// binary copied alone still serves them. They hold no data (the pages read the read, usage and budget
/// APIs with the admin key), so they are served without a key.
///
/// Every response under `/ui` carries a strict Content-Security-Policy: scripts, styles, images and
/// requests from this origin only, no inline script or style, no framing. The pages render every recorded
/// string as text; the policy stops anything that would slip through anyway.
struct DashboardRoutes<Context: RequestContext>: Sendable {
    /// Whether the data APIs need a key, so that the page shows its login before asking them anything.
    let keyRequired: Bool

    static var contentSecurityPolicy: String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    func register(on router: Router<Context>) {
        // Says only whether a key is needed: the page asks for it before touching the APIs.
        let session = ByteBuffer(string: #"{"key_required":\#(keyRequired)}"#)
        router.get("/ui/session.json") { _, _ in
            var headers = Self.securityHeaders
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: session))
        }
        router.get("/ui") { request, _ in Self.serve(path: request.uri.path, request: request) }
        router.get("/ui/**") { request, _ in Self.serve(path: request.uri.path, request: request) }
    }

    /// The response for a path under `/ui`: the asset, a 304 when the client's copy is current, or a 404.
    /// `/ui` and `/ui/` are the page (it names its files by absolute paths, so either address works).
    static func serve(path: String, request: Request) -> Response {
        var headers = securityHeaders
        let name = path.hasPrefix("/ui/") ? String(path.dropFirst(4)) : ""
        guard let asset = DashboardAssets.served[name.isEmpty ? "index.html" : name] else {
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .notFound, headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(string: "Not found: \(name)\n")))
        }
        headers[.eTag] = asset.etag
        // Always revalidated: file names carry no version, and a 304 costs one small request.
        headers[.cacheControl] = "no-cache"
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == asset.etag
        }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.body))
    }

    static var securityHeaders: HTTPFields {
        var fields: HTTPFields = [.contentSecurityPolicy: contentSecurityPolicy, .xContentTypeOptions: "nosniff"]
        // Call ids in the page's address are nobody else's business.
        if let name = HTTPField.Name("Referrer-Policy") { fields[name] = "no-referrer" }
        return fields
    }
}

/// An embedded file as served: its bytes, type and entity tag.
struct ServedAsset: Sendable {
    let body: ByteBuffer
    let contentType: String
    let etag: String

    init(name: String, text: String) {
        body = ByteBuffer(string: text)
        contentType = Self.contentType(of: name)
        let digest = SHA256.hash(data: Array(text.utf8))
        etag = "\"" + digest.prefix(12).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined() + "\""
    }

    static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": return "text/html; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "json": return "application/json"
        default: return "application/octet-stream"
        }
    }
}

extension DashboardAssets {
    /// Every asset, ready to serve, keyed by its path under `/ui/`.
    static let served: [String: ServedAsset] = Dictionary(
        uniqueKeysWithValues: files.map { ($0.key, ServedAsset(name: $0.key, text: $0.value)) })
}
