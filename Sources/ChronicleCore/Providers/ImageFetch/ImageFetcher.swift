import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fetches image URLs for providers that take only inline bytes, within an ``ImageFetchPolicy``.
///
/// Every hop is checked: its scheme, then every address its host resolves to. The connection then goes to
/// the checked address (the name is not resolved a second time), so a DNS answer that changes between the
/// check and the connection cannot reach a refused address. Redirects are followed here, one checked hop at
/// a time, never by the HTTP client.
struct ImageFetcher: Sendable {
    let policy: ImageFetchPolicy

    /// An image's bytes and media type.
    struct Image: Sendable {
        var mediaType: String
        var bytes: [UInt8]
    }

    /// Why a fetch was refused or failed, in words for the client.
    struct Failure: Error, Sendable {
        var reason: String
    }

    /// Replaces each web image URL in the messages with a base64 `data:` URL of its bytes.
    /// - Throws: ``ProviderError`` (`transforming_request`, 400) naming the part whose fetch failed.
    func inlineImages(in request: ChatRequest) async throws(ProviderError) -> ChatRequest {
        var request = request
        for messageIndex in request.messages.indices {
            guard case .parts(var parts)? = request.messages[messageIndex].content else { continue }
            var changed = false
            for partIndex in parts.indices {
                guard let url = parts[partIndex].imageURL, !url.hasPrefix("data:") else { continue }
                let image: Image
                do {
                    image = try await fetch(url)
                } catch {
                    throw ProviderError(
                        kind: .transformingRequest,
                        message: "messages[\(messageIndex)].content[\(partIndex)].image_url: \(error.reason)")
                }
                var imageURL = parts[partIndex].fields["image_url"]?.objectValue ?? [:]
                imageURL["url"] = .string("data:\(image.mediaType);base64,\(Data(image.bytes).base64EncodedString())")
                parts[partIndex].fields["image_url"] = .object(imageURL)
                changed = true
            }
            if changed { request.messages[messageIndex].content = .parts(parts) }
        }
        return request
    }

    /// Fetches `url`, following at most the policy's redirects, all within its timeout.
    func fetch(_ url: String) async throws(Failure) -> Image {
        let deadline = NIODeadline.now() + TimeAmount(policy.timeout)
        var current = url
        var redirects = 0
        while true {
            switch try await fetchHop(current, deadline: deadline) {
            case .image(let image):
                return image
            case .redirect(let location):
                redirects += 1
                guard redirects <= policy.maxRedirects else {
                    throw Failure(reason: "the image URL redirects more than \(policy.maxRedirects) times")
                }
                guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteString else {
                    throw Failure(reason: "the image URL redirects to an invalid URL")
                }
                current = next
            }
        }
    }

    private enum Hop {
        case image(Image)
        case redirect(String)
    }

    private func fetchHop(_ url: String, deadline: NIODeadline) async throws(Failure) -> Hop {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw Failure(reason: "the image URL is not a valid URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw Failure(reason: "image URLs must be http or https, not \(scheme)")
        }
        guard var host = components.host, !host.isEmpty else { throw Failure(reason: "the image URL has no host") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let address = try await checkedAddress(host)

        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(10))
        // The connection goes to the address checked above, not to a second resolution of the name.
        if IPAddress(host) == nil { configuration.dnsOverride = [host: address.description] }
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let result: Result<Hop, Failure>
        do {
            result = .success(try await get(url, with: client, deadline: deadline))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return try result.get()
    }

    private func get(_ url: String, with client: HTTPClient, deadline: NIODeadline) async throws(Failure) -> Hop {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "accept", value: "image/*")
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: deadline)
        } catch {
            throw Failure(reason: Self.describe(error))
        }
        let status = Int(response.status.code)
        if (300..<400).contains(status) {
            guard let location = response.headers.first(name: "location") else {
                throw Failure(reason: "the image URL answered \(status) without a Location")
            }
            return .redirect(location)
        }
        guard (200..<300).contains(status) else { throw Failure(reason: "the image URL answered \(status)") }
        let mediaType = (response.headers.first(name: "content-type") ?? "")
            .split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard mediaType.hasPrefix("image/") else {
            throw Failure(reason: "the image URL did not return an image (content-type \"\(mediaType)\")")
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > policy.maxBytes {
            throw Failure(reason: "the image is larger than \(policy.maxBytes) bytes")
        }
        var bytes: [UInt8] = []
        do {
            for try await part in response.body {
                guard bytes.count + part.readableBytes <= policy.maxBytes else {
                    throw Failure(reason: "the image is larger than \(policy.maxBytes) bytes")
                }
                bytes += part.readableBytesView
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(reason: Self.describe(error))
        }
        return .image(Image(mediaType: mediaType, bytes: bytes))
    }

    /// The address to connect to for `host`, after checking every address it resolves to.
    private func checkedAddress(_ host: String) async throws(Failure) -> IPAddress {
        let addresses: [IPAddress]
        if let literal = IPAddress(host) {
            addresses = [literal]
        } else {
            do {
                addresses = try await NIOThreadPool.singleton.runIfActive { try Self.resolve(host) }
            } catch {
                throw Failure(reason: "could not resolve the image URL's host \(host)")
            }
        }
        // IPv4 first: a host with both families is more often reachable over IPv4.
        guard let first = addresses.first(where: { $0.bytes.count == 4 }) ?? addresses.first else {
            throw Failure(reason: "the image URL's host \(host) has no address")
        }
        if policy.allowsHost(host) { return first }
        // One refused address refuses the host: otherwise the connection could land on it.
        if let refused = addresses.first(where: { !policy.allows($0) }) {
            throw Failure(reason: "the image URL's host resolves to \(refused), a loopback, private, link-local or metadata address, which is not allowed")
        }
        return first
    }

    /// Every address `host` resolves to (blocking; runs on the thread pool).
    private static func resolve(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { throw Failure(reason: "") }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let sockaddr = info.pointee.ai_addr {
                switch info.pointee.ai_family {
                case AF_INET:
                    let bytes = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    }
                    if let address = IPAddress(bytes: bytes), !addresses.contains(address) { addresses.append(address) }
                case AF_INET6:
                    let bytes = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                    if let address = IPAddress(bytes: bytes), !addresses.contains(address) { addresses.append(address) }
                default:
                    break
                }
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
                return "fetching the image timed out"
            }
            return "could not fetch the image (\(String(describing: error).replacingOccurrences(of: "HTTPClientError.", with: "")))"
        }
        return "could not fetch the image (\(error))"
    }
}
