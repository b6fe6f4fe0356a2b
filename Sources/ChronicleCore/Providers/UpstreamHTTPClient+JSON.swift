extension UpstreamHTTPClient {
    /// A whole JSON answer, for a provider whose answer is translated rather than relayed.
    /// - Throws: ``ProviderErrorKind/parsingResponse`` with the body when it is not JSON.
    func readJSON(_ response: UpstreamResponse, idleTimeout: Duration) async throws(ProviderError) -> JSONValue {
        let bytes = try await readBody(response, idleTimeout: idleTimeout)
        do {
            return try JSONCoding.decode(JSONValue.self, from: bytes.readableBytesView)
        } catch {
            throw ProviderError(kind: .parsingResponse, status: Int(response.status.code),
                                body: Self.errorBody(bytes),
                                message: "Could not parse the provider's response: \(describeDecodingError(error))")
        }
    }
}
