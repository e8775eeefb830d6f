/// Which scopes a compressor may touch: the seed's `include_scopes` / `exclude_scopes`.
///
/// Scopes are "/"-separated name paths (`block1/conv2/weight`). A scope matches itself and
/// everything under it: `block1` matches `block1` and `block1/conv2`, never `block10`. An empty
/// include list means every scope; an exclude match always wins over an include match.
public struct ScopeFilter: Equatable, Sendable {
    /// Scopes that may be touched; empty = all.
    public let include: [String]
    /// Scopes that are never touched; wins over `include`.
    public let exclude: [String]

    /// A filter from the config's scope lists (a trailing "/" on a scope is ignored).
    public init(include: [String] = [], exclude: [String] = []) {
        self.include = include.map(ScopeFilter.normalised)
        self.exclude = exclude.map(ScopeFilter.normalised)
    }

    /// The filter that lets everything through.
    public static let all = ScopeFilter()

    /// Whether `layerScope` (a layer's scope or a parameter's path) passes the filter.
    public func contains(_ layerScope: String) -> Bool {
        let path = ScopeFilter.normalised(layerScope)
        if exclude.contains(where: { ScopeFilter.scope($0, matches: path) }) { return false }
        return include.isEmpty || include.contains { ScopeFilter.scope($0, matches: path) }
    }

    /// Whether an exclude scope matches `layerScope` (it may not be touched at all).
    public func excludes(_ layerScope: String) -> Bool {
        let path = ScopeFilter.normalised(layerScope)
        return exclude.contains { ScopeFilter.scope($0, matches: path) }
    }

    /// Whether `scope` is `path` or one of its enclosing scopes (the empty scope encloses all).
    public static func scope(_ scope: String, matches path: String) -> Bool {
        scope.isEmpty || path == scope || path.hasPrefix(scope + "/")
    }

    private static func normalised(_ scope: String) -> String {
        var s = Substring(scope)
        while s.hasSuffix("/") { s = s.dropLast() }
        return String(s)
    }
}

extension ScopeFilter {
    /// The check every compressor makes of its scope lists against the model (a typo would
    /// otherwise silently compress too little, or the layer an exclude scope meant to protect):
    /// every scope of every list must match at least one of `candidates` (parameter paths or
    /// layer scopes, whatever the compressor filters).
    ///
    /// - Parameters:
    ///   - lists: the config's lists by seed key (`sparsifier.include_scopes`, …), checked in order.
    ///   - candidates: what the scopes are matched against.
    ///   - noun: what a candidate is, for the message (`Conv2D/MatMul kernel`, `Conv2D/MatMul layer`).
    ///   - model: the model's name, for the message.
    /// - Throws: `CompressionConfigError.unmatchedScope` naming the first scope that matches nothing.
    public static func requireMatches(_ lists: [(key: String, scopes: [String])], candidates: [String],
                                      noun: String, model: String) throws {
        for (key, scopes) in lists {
            if let unmatched = scopes.first(where: { scope in
                !candidates.contains { ScopeFilter.scope(normalised(scope), matches: $0) }
            }) {
                throw CompressionConfigError.unmatchedScope(key: key, scope: unmatched, noun: noun, model: model,
                                                            candidates: candidates.sorted())
            }
        }
    }
}
