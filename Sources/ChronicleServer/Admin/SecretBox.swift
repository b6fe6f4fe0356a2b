import Crypto
import Foundation

/// Encrypts provider keys stored through the admin API (AES-256-GCM), under the master key from
/// `CHRONICLE_SECRET_KEY`. Stored form: `v1:` and the base64 of nonce, ciphertext and tag.
public struct SecretBox: Sendable {
    /// The `chronicle_api_keys.source` / `api_key_source` of an encrypted value.
    public static let source = "encrypted"
    private static let prefix = "v1:"
    private let key: SymmetricKey

    /// - Parameter masterKey: 32 bytes in base64 (`openssl rand -base64 32`) or 64 hexadecimal digits; any
    ///   other text is taken as a passphrase and hashed with SHA-256 to a key.
    public init(masterKey: String) {
        let trimmed = masterKey.trimmingCharacters(in: .whitespacesAndNewlines)
        if let data = Data(base64Encoded: trimmed), data.count == 32 {
            key = SymmetricKey(data: data)
        } else if trimmed.count == 64, let digest = KeyDigest(hex: trimmed) {
            key = SymmetricKey(data: digest.bytes)
        } else {
            key = SymmetricKey(data: SHA256.hash(data: Data(trimmed.utf8)))
        }
    }

    /// The box for `CHRONICLE_SECRET_KEY`, or nil when it is not set.
    public static func fromEnvironment(_ environment: (String) -> String? = { getenv($0).map { String(cString: $0) } })
        -> SecretBox?
    {
        guard let value = environment("CHRONICLE_SECRET_KEY"), !value.isEmpty else { return nil }
        return SecretBox(masterKey: value)
    }

    public func seal(_ plaintext: String) throws -> String {
        let sealed = try AES.GCM.seal(Data(plaintext.utf8), using: key)
        guard let combined = sealed.combined else { throw SecretBoxError("cannot encode the sealed key") }
        return Self.prefix + combined.base64EncodedString()
    }

    public func open(_ stored: String) throws -> String {
        guard stored.hasPrefix(Self.prefix), let data = Data(base64Encoded: String(stored.dropFirst(Self.prefix.count)))
        else { throw SecretBoxError("not an encrypted key") }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw SecretBoxError("cannot decrypt with CHRONICLE_SECRET_KEY (was it changed?)")
        }
    }
}

public struct SecretBoxError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
