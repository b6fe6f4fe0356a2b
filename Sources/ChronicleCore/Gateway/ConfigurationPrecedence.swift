/// How settings from several sources combine: configuration files in the order read, then the
/// environment, then command-line flags, each source later than the one before.
///
/// - A scalar (or a table read as one value, such as `[retry]`) set by a later source replaces the earlier
///   value, whatever it is, `false` and `0` included; a source that does not set it leaves it alone.
/// - In a named list (providers, aliases, API keys, gateway keys), a later entry replaces the earlier
///   entry of the same name, in the earlier entry's place; entries with new names are appended.
/// - Any other list is concatenated.
public enum ConfigurationPrecedence {
    /// `earlier` with `later` laid over it by name: a later entry replaces the earlier one of the same name,
    /// keeping its position (routing ties go to the earlier position), and new names are appended in order.
    public static func mergeNamed<Entry>(_ earlier: [Entry], _ later: [Entry], name: (Entry) -> String) -> [Entry] {
        var merged = earlier
        var positions: [String: Int] = [:]
        for (index, entry) in merged.enumerated() { positions[name(entry)] = index }
        for entry in later {
            if let index = positions[name(entry)] {
                merged[index] = entry
            } else {
                positions[name(entry)] = merged.count
                merged.append(entry)
            }
        }
        return merged
    }
}
