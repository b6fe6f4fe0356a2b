/// Why a request could not be routed to any provider. These are the caller's errors: 400 or 404, never 500.
public enum LookupError: Error, Sendable, Hashable {
    case modelNotSpecified
    case unknownProvider(String)
    case unknownAPIKey(String)
    case aliasUnknownProvider(alias: String, provider: String)
    case aliasUnknownAPIKey(alias: String, key: String)
    case noDefaultProvider(model: String)
    case aliasEmpty(String)

    /// The `kind` string of the error body.
    public var kind: String {
        switch self {
        case .modelNotSpecified: return "missing_model"
        case .unknownProvider: return "unknown_provider"
        case .unknownAPIKey: return "unknown_api_key"
        case .aliasUnknownProvider: return "alias_unknown_provider"
        case .aliasUnknownAPIKey: return "alias_unknown_api_key"
        case .noDefaultProvider: return "model_not_found"
        case .aliasEmpty: return "alias_empty"
        }
    }

    public var httpStatus: Int {
        switch self {
        case .noDefaultProvider: return 404
        default: return 400
        }
    }

    public var message: String {
        switch self {
        case .modelNotSpecified:
            return "No model was specified: set \"model\" in the body or the x-chronicle-model header"
        case .unknownProvider(let name): return "Unknown provider '\(name)'"
        case .unknownAPIKey(let name): return "Unknown API key name '\(name)'"
        case .aliasUnknownProvider(let alias, let provider):
            return "Alias '\(alias)' refers to unknown provider '\(provider)'"
        case .aliasUnknownAPIKey(let alias, let key): return "Alias '\(alias)' refers to unknown API key '\(key)'"
        case .noDefaultProvider(let model):
            return "No provider serves model '\(model)': use a provider prefix such as 'groq/', an alias, or the provider option"
        case .aliasEmpty(let alias): return "Alias '\(alias)' has no models"
        }
    }
}
