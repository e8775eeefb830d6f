/// Failures of a training run that are not configuration or data errors.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// `--debug` found ranks holding different values for a tensor.
    case replicasDiverged(step: Int, tensor: String)
    /// Weights to load do not fit the model.
    case incompatibleWeights(source: String, reason: String)
    /// A fault injected for tests (`EC_FAULT_INJECT`).
    case injectedFault(rank: Int, step: Int)
    /// A collective of synchronised batch norm failed inside a forward or backward pass.
    case syncBatchNorm(reason: String)
    /// The parameters a rank received from the chief at the start are not the ones the chief
    /// sent (their XXH64 checksums differ); `tensor` is the first that differs in name order.
    case initialBroadcastCorrupted(rank: Int, tensor: String, received: UInt64, sent: UInt64)
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
        case let .syncBatchNorm(reason):
            return "synchronised batch norm: \(reason)"
        case let .initialBroadcastCorrupted(rank, tensor, received, sent):
            return "initial parameter broadcast (chief → every rank, before step 1) arrived corrupted on rank \(rank): "
                + "'\(tensor)' hashes to \(hex(received)), the chief sent \(hex(sent)) (XXH64; first differing tensor in name order)"
        case let .noUsableCheckpoint(directory, damaged):
            return "cannot resume: every checkpoint in \(directory) fails verification (\(damaged.joined(separator: "; "))); "
                + "nothing was changed. Hint: restore a checkpoint from a copy, or start again with --overwrite"
        }
    }
}

/// `0x` and sixteen lower-case hex digits.
private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
}
