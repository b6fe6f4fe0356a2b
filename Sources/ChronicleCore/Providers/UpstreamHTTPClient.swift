import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Which client carries upstream calls.
public enum UpstreamHTTPClientKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Pooled HTTP/1.1 connections per event loop, built on SwiftNIO directly (the default).
    case nio = "nio"
    /// AsyncHTTPClient: HTTP/2 where the upstream offers it, and whatever proxy its `HTTPClient` is set up with.
    case asyncHTTPClient = "async-http-client"
}

/// The HTTP plumbing every HTTP provider shares: the transport (pooled HTTP/1.1 connections per event
/// loop, or AsyncHTTPClient), the header timeout, error kinds by upstream status, rate-limit headers, and
/// reading bodies with an idle timeout.
public struct UpstreamHTTPClient: Sendable {
    public let httpClient: HTTPClient
    public let clock: any GatewayClock
    public let userAgent: String
    /// The most an upstream error body or non-streamed response may hold.
    public var maxResponseSize = 64 * 1024 * 1024
    /// How image URLs are fetched for providers that take only inline bytes.
    public var imageFetchPolicy = ImageFetchPolicy()
    /// The pooled HTTP/1.1 transport; `nil` when calls go through `httpClient`.
    let pools: HTTP1Pools?

    /// - Parameters:
    ///   - httpClient: AsyncHTTPClient, used for every call with `.asyncHTTPClient`; with `.nio` its event
    ///     loop group (normally the server's) carries the pooled connections.
    ///   - kind: the transport; `.nio` unless the operator chose otherwise.
    ///   - pool: settings of the pooled transport (TLS trust roots, timeouts, idle limits).
    public init(httpClient: HTTPClient, clock: any GatewayClock = SystemClock(), userAgent: String = "chronicle",
                kind: UpstreamHTTPClientKind = .nio, pool: HTTP1PoolConfiguration = HTTP1PoolConfiguration()) {
        self.httpClient = httpClient
        self.clock = clock
        self.userAgent = userAgent
        pools = kind == .nio ? HTTP1Pools(group: httpClient.eventLoopGroup, configuration: pool) : nil
    }

    /// Which transport carries calls.
    public var kind: UpstreamHTTPClientKind { pools == nil ? .asyncHTTPClient : .nio }

    /// Closes the pooled connections (the AsyncHTTPClient, if any, is its owner's to shut down).
    public func shutdown() async {
        await pools?.shutdown()
    }

    /// Upstream connections the pooled transport holds open now (0 with AsyncHTTPClient); for tests.
    public func openPooledConnections() async -> Int {
        await pools?.openConnections() ?? 0
    }

    /// POSTs `body` to `url` and returns the response once its headers arrive with a 2xx status.
    ///
    /// - Throws: ``ProviderError`` for connection failures, a timeout, or a non-2xx status (body included).
    public func post(url: String, headers: HTTPHeaders, body: ByteBuffer, timeout: Duration) async throws(ProviderError)
        -> UpstreamResponse
    {
        var headers = headers
        headers.replaceOrAdd(name: "content-type", value: "application/json")
        headers.replaceOrAdd(name: "user-agent", value: userAgent)
        let response: UpstreamResponse
        if let pools {
            response = try await Self.send(url: url, headers: headers, body: body, pools: pools, clock: clock,
                                           timeout: timeout)
        } else {
            let request: HTTPClient.Request
            do {
                request = try HTTPClient.Request(url: url, method: .POST, headers: headers, body: .byteBuffer(body))
            } catch {
                throw Self.mapTransportError(error, timeout: timeout)
            }
            response = try await AsyncHTTPClientExchange.send(request, client: httpClient, clock: clock, timeout: timeout)
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            let status = Int(response.status.code)
            let retryAfter = RateLimitHeaders.retryAfter(from: response.headers)
            let body = try? await readBody(response, limit: 1024 * 1024, idleTimeout: timeout)
            throw ProviderError.upstream(status: status, body: body.map(Self.errorBody), retryAfter: retryAfter)
        }
        return response
    }

    /// Sends over the pool of the caller's event loop and waits for the head, at most `timeout` from now
    /// (connecting included).
    private static func send(url: String, headers: HTTPHeaders, body: ByteBuffer, pools: HTTP1Pools,
                             clock: any GatewayClock, timeout: Duration) async throws(ProviderError) -> UpstreamResponse
    {
        let exchange = UpstreamExchange(eventLoop: pools.eventLoopForCaller(), clock: clock)
        exchange.startHeadTimer(timeout)
        pools.execute(url: url, headers: headers, body: body, exchange: exchange)
        let head: HTTPResponseHead
        do {
            head = try await exchange.awaitHead()
        } catch {
            throw mapTransportError(error, timeout: timeout)
        }
        return UpstreamResponse(status: head.status, headers: head.headers, body: UpstreamBody(exchange: exchange))
    }

    /// Reads a whole response body, failing if it grows past `limit` or stalls for `idleTimeout`.
    public func readBody(_ response: UpstreamResponse, limit: Int? = nil, idleTimeout: Duration) async throws(ProviderError)
        -> ByteBuffer
    {
        let limit = limit ?? maxResponseSize
        // The first part is kept as is: most bodies arrive in one.
        var collected = try await response.body.next(idleTimeout: idleTimeout) ?? ByteBuffer()
        while true {
            guard collected.readableBytes <= limit else {
                throw ProviderError(kind: .parsingResponse, message: "Provider response is larger than \(limit) bytes")
            }
            guard var part = try await response.body.next(idleTimeout: idleTimeout) else { return collected }
            collected.writeBuffer(&part)
        }
    }

    /// The error body as JSON, or as a JSON string when it is not JSON.
    static func errorBody(_ buffer: ByteBuffer) -> JSONValue {
        let bytes = buffer.readableBytesView
        if let value = try? JSONCoding.decode(JSONValue.self, from: bytes) { return value }
        return .string(String(decoding: bytes, as: UTF8.self))
    }

    static func mapTransportError(_ error: any Error, timeout: Duration) -> ProviderError {
        switch error {
        case let error as ProviderError:
            return error
        case is TimeoutError:
            return ProviderError(kind: .timeout, message: "Provider sent no response headers within \(timeout.milliseconds) ms")
        case is CancellationError:
            return ProviderError(kind: .cancelled)
        case let error as HTTPClientError where error == .cancelled:
            return ProviderError(kind: .cancelled)
        case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout:
            return ProviderError(kind: .timeout)
        case let error as HTTPClientError where error == .remoteConnectionClosed:
            return ProviderError(kind: .connectionClosed, message: "Provider closed the connection before responding")
        default:
            return ProviderError(kind: .connection, message: "Could not reach the provider: \(Self.describe(error))")
        }
    }

    /// A transport failure while the body was being read.
    static func mapBodyTransportError(_ error: any Error) -> ProviderError {
        switch error {
        case let error as ProviderError: error
        case let error as HTTPClientError where error == .cancelled: ProviderError(kind: .cancelled)
        default: ProviderError(kind: .connectionClosed, message: "Provider connection failed mid-response: \(error)")
        }
    }

    /// A short description of a transport error without URLs' user-info or headers.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return error.shortDescription }
        return String(describing: error)
    }
}

extension HTTPClientError {
    fileprivate var shortDescription: String {
        String(describing: self).replacingOccurrences(of: "HTTPClientError.", with: "")
    }
}

/// Reads how long a rate-limited upstream wants us to wait, from every header providers use.
public enum RateLimitHeaders {
    /// The wait requested by `retry-after-ms`, `Retry-After` (seconds or HTTP date), OpenAI's
    /// `x-ratelimit-reset-*` durations, or Anthropic's `anthropic-ratelimit-*-reset` times, in that order.
    public static func retryAfter(from headers: HTTPHeaders, now: Date = Date()) -> Duration? {
        if let value = headers.first(name: "retry-after-ms"), let ms = Double(value.trimmingCharacters(in: .whitespaces)), ms >= 0 {
            return .milliseconds(Int64(ms.rounded(.up)))
        }
        if let value = headers.first(name: "retry-after") {
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            if let seconds = Double(trimmed), seconds >= 0 {
                return .milliseconds(Int64((seconds * 1000).rounded(.up)))
            }
            if let date = httpDate(trimmed) {
                return .milliseconds(max(0, Int64((date.timeIntervalSince(now) * 1000).rounded(.up))))
            }
        }
        let resets = ["requests", "tokens"].compactMap { kind -> (Duration, Bool)? in
            guard let value = headers.first(name: "x-ratelimit-reset-\(kind)"), let wait = parseGoDuration(value)
            else { return nil }
            let exhausted = headers.first(name: "x-ratelimit-remaining-\(kind)").flatMap { Int($0) } == 0
            return (wait, exhausted)
        }
        if !resets.isEmpty {
            let exhausted = resets.filter(\.1).map(\.0)
            return (exhausted.isEmpty ? resets.map(\.0) : exhausted).max()
        }
        let anthropicResets = ["requests", "tokens", "input-tokens", "output-tokens"].compactMap { kind -> Date? in
            guard headers.first(name: "anthropic-ratelimit-\(kind)-remaining").flatMap({ Int($0) }) == 0,
                let value = headers.first(name: "anthropic-ratelimit-\(kind)-reset")
            else { return nil }
            return iso8601Date(value)
        }
        if let latest = anthropicResets.max() {
            return .milliseconds(max(0, Int64((latest.timeIntervalSince(now) * 1000).rounded(.up))))
        }
        return nil
    }

    /// Parses durations such as `1s`, `6m0s`, `20ms`, `1h2m3.5s` (OpenAI's reset header format).
    static func parseGoDuration(_ text: String) -> Duration? {
        var total = 0.0
        var number = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let value = Double(number) else { return false }
            switch unit {
            case "h": total += value * 3_600_000
            case "m": total += value * 60_000
            case "s", "": total += value * 1000
            case "ms": total += value
            case "us", "µs": total += value / 1000
            case "ns": total += value / 1_000_000
            default: return false
            }
            sawAny = true
            number = ""
            unit = ""
            return true
        }
        for character in text.trimmingCharacters(in: .whitespaces) {
            if character.isNumber || character == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(character)
            } else {
                unit.append(character)
            }
        }
        if !number.isEmpty { guard flush() else { return nil } }
        return sawAny ? .milliseconds(Int64(total.rounded(.up))) : nil
    }

    private static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    private static func iso8601Date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
