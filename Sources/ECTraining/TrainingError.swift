/// Failures of a training run that are not configuration or data errors.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// `--debug` found ranks holding different values for a tensor.
    case replicasDiverged(step: Int, tensor: String)
    /// Weights to load do not fit the model.
    case incompatibleWeights(source: String, reason: String)
    /// A fault injected for tests (`EC_FAULT_INJECT`).
    case injectedFault(rank: Int, step: Int)
    /// Resuming, but every checkpoint in `directory` failed verification (`damaged`: each
    /// checkpoint's folder name and error, newest first).
    case noUsableCheckpoint(directory: String, damaged: [String])

    public var description: String {
        switch self {
        case let .replicasDiverged(step, tensor):
            return "replicas diverged at step \(step): '\(tensor)' differs between ranks (first differing tensor in name order)"
        case let .incompatibleWeights(source, reason):
            return "cannot load weights from \(source): \(reason)"
        case let .injectedFault(rank, step):
            return "injected fault on rank \(rank) at step \(step) (EC_FAULT_INJECT)"
        case let .noUsableCheckpoint(directory, damaged):
            return "cannot resume: every checkpoint in \(directory) fails verification (\(damaged.joined(separator: "; "))); "
                + "nothing was changed. Hint: restore a checkpoint from a copy, or start again with --overwrite"
        }
    }
}
