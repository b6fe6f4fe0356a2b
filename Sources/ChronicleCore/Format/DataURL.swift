/// A base64 `data:` URL, as OpenAI-format image parts carry inline images: `data:image/png;base64,iVBOR…`.
struct DataURL: Sendable, Hashable {
    /// The media type, e.g. `image/png`.
    var mediaType: String
    /// The base64 payload, as it was.
    var base64: String

    /// Parses `url`, or returns nil when it is not a base64 data URL.
    init?(_ url: String) {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","),
              url[..<comma].hasSuffix(";base64")
        else { return nil }
        mediaType = String(url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(";base64".count))
        base64 = String(url[url.index(after: comma)...])
    }
}
