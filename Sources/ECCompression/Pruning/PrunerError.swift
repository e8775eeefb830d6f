/// The pruner's failures (tier 2): channel groups that do not fit the model, decisions that do
/// not fit the groups, and checkpoints that do not fit either. Each case carries the offending
/// name and value and what was expected.
public enum PrunerError: Error, Equatable, CustomStringConvertible {
    /// `afterStep`, `summarySection` or `restore` before `prepare`.
    case notPrepared(operation: String)
    /// A channel group that cannot describe the model (missing parameter, wrong period, …).
    case invalidGroup(group: String, reason: String)
    /// A positive ratio, but no channel group inside the scopes may be pruned (the classifier's
    /// outputs never are), so the job would prune nothing.
    case nothingToPrune(model: String, includeScopes: [String], excludeScopes: [String])
    /// The broadcast decisions do not fit the groups (missing or unknown entry, wrong shape,
    /// a group left without channels, a pruned channel revived).
    case decisionMismatch(group: String, reason: String)
    /// A tensor the checkpoint must hold for the current groups is absent.
    case checkpointMissingTensor(name: String)
    /// A `pruner/` tensor the current groups do not explain (the model or scopes changed).
    case checkpointUnexpectedTensor(name: String)
    /// A checkpoint tensor whose shape is not the group's.
    case checkpointShapeMismatch(name: String, found: [Int], expected: [Int])
    /// A checkpoint tensor with an invalid value (a keep flag other than 0/1, a NaN importance,
    /// a group with no kept channel).
    case checkpointInvalidValue(name: String, reason: String)
    /// The JSON state is unreadable or inconsistent.
    case checkpointState(reason: String)
    /// A state written by another format version.
    case checkpointUnsupportedVersion(found: Int, supported: Int)

    public var description: String {
        switch self {
        case let .notPrepared(operation):
            return "pruner: \(operation) called before prepare(model:communicator:)"
        case let .invalidGroup(group, reason):
            return "pruner: channel group '\(group)': \(reason)"
        case let .nothingToPrune(model, include, exclude):
            return "pruner: no channel group of \(model) inside include_scopes \(include) and outside exclude_scopes "
                + "\(exclude) can be pruned (the classifier's outputs never are), so nothing would be pruned; "
                + "hint: include a hidden layer such as \"conv1\" or \"fc1\""
        case let .decisionMismatch(group, reason):
            return "pruner: broadcast decision for group '\(group)': \(reason); hint: every rank must run the same model "
                + "and pruner configuration"
        case let .checkpointMissingTensor(name):
            return "pruner: checkpoint has no tensor '\(name)'; hint: it was written for another model or other scopes"
        case let .checkpointUnexpectedTensor(name):
            return "pruner: checkpoint tensor '\(name)' matches no channel group of this model; "
                + "hint: it was written for another model or other scopes"
        case let .checkpointShapeMismatch(name, found, expected):
            return "pruner: \(name): checkpoint has shape \(found), the model's group expects \(expected)"
        case let .checkpointInvalidValue(name, reason):
            return "pruner: \(name): \(reason)"
        case let .checkpointState(reason):
            return "pruner: checkpoint state: \(reason)"
        case let .checkpointUnsupportedVersion(found, supported):
            return "pruner: checkpoint state format version \(found) is not supported, this build reads version \(supported)"
        }
    }
}
