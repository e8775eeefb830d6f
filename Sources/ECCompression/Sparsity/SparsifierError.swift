/// The sparsifier's failures (tier 2): decisions that do not fit the model and checkpoints
/// that do not fit either. Each case carries the offending name and value and what was expected.
public enum SparsifierError: Error, Equatable, CustomStringConvertible {
    /// `afterStep`, `summarySection` or `restore` before `prepare`.
    case notPrepared(operation: String)
    /// The scopes select no Conv2D / MatMul kernel of the model.
    case nothingToSparsify(model: String, includeScopes: [String], excludeScopes: [String])
    /// The broadcast decision does not fit the kernels (missing or unknown entry, wrong shape,
    /// a zeroed block revived).
    case decisionMismatch(parameter: String, reason: String)
    /// A tensor the checkpoint must hold is absent.
    case checkpointMissingTensor(name: String)
    /// A `sparsifier/` tensor the current kernels do not explain.
    case checkpointUnexpectedTensor(name: String)
    /// A checkpoint mask whose shape is not the kernel's block grid, or holding values other than 0/1.
    case checkpointInvalidTensor(name: String, reason: String)
    /// The JSON state is unreadable, inconsistent, or of another format version.
    case checkpointState(reason: String)

    public var description: String {
        switch self {
        case let .notPrepared(operation):
            return "sparsifier: \(operation) called before prepare(model:communicator:)"
        case let .nothingToSparsify(model, include, exclude):
            return "sparsifier: no Conv2D/MatMul kernel of \(model) is inside include_scopes \(include) "
                + "and outside exclude_scopes \(exclude); hint: scopes are layer names such as \"conv1\" or \"fc1\""
        case let .decisionMismatch(parameter, reason):
            return "sparsifier: broadcast decision for '\(parameter)': \(reason); hint: every rank must run the same model "
                + "and sparsifier configuration"
        case let .checkpointMissingTensor(name):
            return "sparsifier: checkpoint has no tensor '\(name)'; hint: it was written for another model or other scopes"
        case let .checkpointUnexpectedTensor(name):
            return "sparsifier: checkpoint tensor '\(name)' matches no sparsified kernel of this model; "
                + "hint: it was written for another model or other scopes"
        case let .checkpointInvalidTensor(name, reason):
            return "sparsifier: \(name): \(reason)"
        case let .checkpointState(reason):
            return "sparsifier: checkpoint state: \(reason)"
        }
    }
}
