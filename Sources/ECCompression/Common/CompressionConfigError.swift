/// A compressor configuration value outside what the seed allows (tier 2: "a clear
/// error naming the key, the value and the allowed range — never a crash, never a silent
/// clamp").
///
/// Keys are written as in job files: the section, a dot and the seed's snake_case key
/// (`pruner.compression_ratio`), so the message points at the line to fix.
public enum CompressionConfigError: Error, Equatable, CustomStringConvertible {
    /// A number outside its range; `allowed` reads after "must be" (`in [0, 1]`, `> 0`).
    case outOfRange(key: String, value: String, allowed: String)
    /// A string that is none of the allowed choices.
    case notOneOf(key: String, value: String, allowed: [String])
    /// An op type no compressor of this kind can act on.
    case unknownOpType(key: String, value: String, allowed: [String])
    /// An empty scope path in a scope list (it would match nothing, or everything).
    case emptyScope(key: String, index: Int)
    /// A layer name that is no layer of the model with one of `opTypes` (`layers` lists those
    /// that are, in execution order).
    case unknownLayer(key: String, value: String, opTypes: [String], model: String, layers: [String])
    /// A path that does not exist.
    case missingFile(key: String, path: String)
    /// A key given together with its alias (`pretrained_model` and the seed's `pretrain_model`).
    case conflictingKeys(key: String, alias: String)
    /// A scope of an include/exclude list that matches nothing the compressor acts on
    /// (`ScopeFilter.requireMatches`): `noun` says what a candidate is, `candidates` lists them.
    case unmatchedScope(key: String, scope: String, noun: String, model: String, candidates: [String])
    /// A value inside its range that cannot mean what was asked (a ratio that would remove every
    /// weight); `reason` says why and what to use instead.
    case meaningless(key: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .outOfRange(key, value, allowed):
            return "\(key) must be \(allowed), got \(value)"
        case let .notOneOf(key, value, allowed):
            return "\(key) must be \(Self.choices(allowed)), got \"\(value)\""
        case let .unknownOpType(key, value, allowed):
            return "\(key): unknown op type '\(value)' (allowed: \(allowed.joined(separator: ", ")))"
        case let .emptyScope(key, index):
            return "\(key)[\(index)] is an empty scope; hint: scopes are \"/\"-separated paths such as \"block1/conv2\""
        case let .unknownLayer(key, value, opTypes, model, layers):
            return "\(key): '\(value)' is not a \(opTypes.joined(separator: "/")) layer of \(model) "
                + "(layers: \(layers.joined(separator: ", ")))"
        case let .missingFile(key, path):
            return "\(key): no such file or directory: \(path.isEmpty ? "\"\"" : path)"
        case let .conflictingKeys(key, alias):
            return "\(key) and \(alias) are both given (\(alias) is the seed's alias of \(key)); hint: keep one"
        case let .unmatchedScope(key, scope, noun, model, candidates):
            let plural = noun.split(separator: " ").last.map { String($0) + "s" } ?? "candidates"
            return "\(key): '\(scope)' matches no \(noun) of \(model) (\(plural): \(candidates.joined(separator: ", ")))"
        case let .meaningless(key, value, reason):
            return "\(key) = \(value): \(reason)"
        }
    }

    /// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
    private static func choices(_ allowed: [String]) -> String {
        let quoted = allowed.map { "\"\($0)\"" }
        guard quoted.count > 1 else { return quoted.first ?? "" }
        return quoted.dropLast().joined(separator: ", ") + " or " + quoted.last!
    }

    /// A number as a user wrote it: `0` and `2` for whole values, `1.5` otherwise, `nan`, `inf`.
    static func format(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return "\(value)"
    }
}
