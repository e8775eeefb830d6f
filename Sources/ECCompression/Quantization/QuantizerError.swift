/// Failures of the LSQ quantizer at run time (its configuration errors are
/// `CompressionConfigError`s).
public enum QuantizerError: Error, Equatable, CustomStringConvertible {
    /// The chief's step-size payload lacks a step size or has another shape.
    case payloadMismatch(key: String, expectedShape: [Int], found: [Int]?)
    /// A checkpoint's quantizer state is unreadable or of another version.
    case checkpointState(reason: String)
    /// A checkpoint lacks a step size of the plan, or has another shape.
    case checkpointTensor(name: String, expectedShape: [Int], found: [Int]?)
    /// The plan `quantizeGraph` wrote to a model_dir differs from the one this model and
    /// config give (another model, other scopes or widths).
    case planMismatch(modelDir: String, reason: String)

    public var description: String {
        switch self {
        case let .payloadMismatch(key, expected, found):
            return "quantizer: the chief's step sizes have \(key) " + (found.map { "of shape \($0)" } ?? "missing")
                + ", this rank's plan expects shape \(expected)"
        case let .checkpointState(reason):
            return "quantizer checkpoint state: \(reason)"
        case let .checkpointTensor(name, expected, found):
            return "\(name): checkpoint has " + (found.map { "shape \($0)" } ?? "no such tensor") + ", the quantizer expects \(expected)"
        case let .planMismatch(modelDir, reason):
            return "\(modelDir)/\(QuantizationPlan.fileName): \(reason); run quantizeGraph(mode: .train) again for this model and config"
        }
    }
}
