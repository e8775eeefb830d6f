/// Failures of the LSQ quantizer at run time (its configuration errors are
/// `CompressionConfigError`s).
public enum QuantizerError: Error, Equatable, CustomStringConvertible {
    /// The chief's step-size payload lacks a step size or has another shape.
    case payloadMismatch(key: String, expectedShape: [Int], found: [Int]?)
    /// A checkpoint's quantizer state is unreadable or of another version.
    case checkpointState(reason: String)
    /// A checkpoint lacks a step size of the plan, or has another shape.
    case checkpointTensor(name: String, expectedShape: [Int], found: [Int]?)

    public var description: String {
        switch self {
        case let .payloadMismatch(key, expected, found):
            return "quantizer: the chief's step sizes have \(key) " + (found.map { "of shape \($0)" } ?? "missing")
                + ", this rank's plan expects shape \(expected)"
        case let .checkpointState(reason):
            return "quantizer checkpoint state: \(reason)"
        case let .checkpointTensor(name, expected, found):
            return "\(name): checkpoint has " + (found.map { "shape \($0)" } ?? "no such tensor") + ", the quantizer expects \(expected)"
        }
    }
}
