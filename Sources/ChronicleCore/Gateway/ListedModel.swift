/// One entry of `GET /v1/models`: a model name a client can send, and who serves it.
public struct ListedModel: Sendable, Hashable {
    /// The model string, as a client sends it (an alias, or a name that routes to its provider).
    public var id: String
    /// `chronicle` for an alias, otherwise the provider's name.
    public var ownedBy: String

    public init(id: String, ownedBy: String) {
        self.id = id
        self.ownedBy = ownedBy
    }
}

extension Registry {
    /// The aliases and the models they name; each configured provider's models (or its prefix); and each
    /// other provider's own list, which a built-in fills only while its key is set. Each id once, first wins.
    var listedModels: [ListedModel] {
        var seen = Set<String>()
        var listed: [ListedModel] = []
        func add(_ id: String, ownedBy: String) {
            guard !id.isEmpty, seen.insert(id).inserted else { return }
            listed.append(ListedModel(id: id, ownedBy: ownedBy))
        }
        let sortedAliases = aliases.values.sorted { $0.name < $1.name }
        for alias in sortedAliases { add(alias.name, ownedBy: "chronicle") }
        for alias in sortedAliases {
            for model in alias.models { add(model.model, ownedBy: model.provider) }
        }
        for name in order {
            guard let provider = providers[name] else { continue }
            for model in configuredModels[name] ?? provider.advertisedModels { add(model, ownedBy: name) }
        }
        return listed
    }
}
