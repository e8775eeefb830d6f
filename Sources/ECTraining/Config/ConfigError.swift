/// A bad job configuration: each case names the key (as a dotted path), the value and what
/// was expected.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case unknownKey(path: String, suggestion: String?)
    case missingKey(path: String)
    case wrongType(path: String, expected: String, got: String)
    case outOfRange(path: String, value: String, allowed: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "cannot read config \(file): \(reason)"
        case let .unknownKey(path, suggestion):
            return "unknown config key '\(path)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
        case let .missingKey(path):
            return "missing required config key '\(path)'"
        case let .wrongType(path, expected, got):
            return "\(path) must be \(expected), got \(got)"
        case let .outOfRange(path, value, allowed):
            return "\(path) must be \(allowed), got \(value)"
        case let .invalid(path, reason):
            return "\(path): \(reason)"
        }
    }
}
