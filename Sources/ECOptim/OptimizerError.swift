import Foundation

/// A user or checkpoint error raised by an optimizer or learning-rate schedule: a
/// hyperparameter out of range, or optimizer state that does not fit the model.
///
/// Each case carries the offending name and value together with what was expected, and
/// `description` renders them as one line suitable for a CLI error.
public enum OptimizerError: Error, Equatable, Sendable {
    /// A hyperparameter out of its allowed range: `"optimizer.lr must be > 0, got -0.1"`.
    /// `key` is the config spelling (`optimizer.weight_decay`), `requirement` the allowed range.
    case invalidValue(key: String, value: String, requirement: String)
    /// An optimizer state entry the model needs is absent from the imported state.
    case missingState(name: String, expectedShape: [Int])
    /// An imported state entry whose shape differs from its parameter's.
    case shapeMismatch(name: String, checkpointShape: [Int], expectedShape: [Int])
    /// An entry under `optimizer/` that this optimizer and model do not know.
    case unexpectedState(name: String, reason: String)
    /// An `optimizer/step` entry that does not hold a valid step count.
    case invalidStepCount(name: String, values: [Float])
}

extension OptimizerError: CustomStringConvertible, LocalizedError {
    public var description: String {
        switch self {
        case let .invalidValue(key, value, requirement):
            return "\(key) must be \(requirement), got \(value)"
        case let .missingState(name, expectedShape):
            return "optimizer state has no '\(name)' (expected shape \(formatShape(expectedShape))); "
                + "the state was saved by another optimizer or for another model"
        case let .shapeMismatch(name, checkpointShape, expectedShape):
            return "\(name): checkpoint has shape \(formatShape(checkpointShape)), "
                + "model expects \(formatShape(expectedShape))"
        case let .unexpectedState(name, reason):
            return "optimizer state has unexpected entry '\(name)': \(reason)"
        case let .invalidStepCount(name, values):
            return "\(name) must hold [high, low] with step = high·2^24 + low, both integers in "
                + "[0, 2^24), got \(values)"
        }
    }

    public var errorDescription: String? { description }
}

/// `[64,32,3,3]`: the compact shape spelling used in every error message.
func formatShape(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ",") + "]"
}
