import ECCheckpoint
import ECTensor
import Foundation

/// The pruner's JSON state beside its checkpoint tensors.
struct PrunerState: Codable, Equatable {
    static let currentVersion = 1

    let formatVersion: Int
    let trialsDone: Int
    let lastDecisionStep: Int?
    /// Whether the importance EMA has its first score (the next update averages into it).
    let importanceInitialized: Bool
    /// The prunable groups' ids, in order: a checkpoint of another model or scopes is refused.
    let groups: [String]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", trialsDone = "trials_done", lastDecisionStep = "last_decision_step"
        case importanceInitialized = "importance_initialized", groups
    }
}

extension Pruner {
    /// `pruner/importance/<group id>` (the EMA, Float32 `[channels]`) and `pruner/keep/<group id>`
    /// (1 kept, 0 pruned, `[channels]`) for every prunable group.
    public func checkpointTensors() -> NamedTensors {
        var tensors = NamedTensors()
        for group in prunableGroups {
            tensors[Self.importanceName(group.id)] = Tensor(shape: [group.channels], scalars: importance[group.id]!)
            tensors[Self.keepName(group.id)] = Tensor(shape: [group.channels], scalars: keep[group.id]!.map { $0 ? 1 : 0 })
        }
        return tensors
    }

    /// `{"format_version", "trials_done", "last_decision_step", "importance_initialized",
    /// "groups"}` as JSON.
    public func checkpointState() throws -> Data {
        try VersionedJSON.encode(PrunerState(formatVersion: PrunerState.currentVersion, trialsDone: trialsDone,
                                             lastDecisionStep: lastDecisionStep, importanceInitialized: importanceInitialized,
                                             groups: prunableGroups.map(\.id)))
    }

    /// Restores what `checkpointTensors`/`checkpointState` saved, after `prepare` on the same
    /// model and config. Tensors not named `pruner/…` are ignored; nothing changes on a throw.
    ///
    /// - Throws: `PrunerError.notPrepared`, `.checkpointState`, `.checkpointUnsupportedVersion`,
    ///   `.checkpointMissingTensor`, `.checkpointUnexpectedTensor`, `.checkpointShapeMismatch`,
    ///   `.checkpointInvalidValue`.
    public func restore(tensors: NamedTensors, state: Data) throws {
        guard communicator != nil else { throw PrunerError.notPrepared(operation: "restore") }
        let saved: PrunerState
        do {
            saved = try VersionedJSON.decode(PrunerState.self, from: state, version: PrunerState.currentVersion)
        } catch let .unsupportedVersion(found, supported) {
            throw PrunerError.checkpointUnsupportedVersion(found: found, supported: supported)
        } catch let .malformed(reason) {
            throw PrunerError.checkpointState(reason: "unreadable JSON (\(reason))")
        }
        let prunable = prunableGroups
        guard saved.groups == prunable.map(\.id) else {
            throw PrunerError.checkpointState(reason: "written for prunable groups \(saved.groups), "
                                              + "this model has \(prunable.map(\.id))")
        }
        let progress = TrialProgress(trialsDone: saved.trialsDone, lastDecisionStep: saved.lastDecisionStep)
        if let problem = progress.problem(numTrials: config.numTrials) { throw PrunerError.checkpointState(reason: problem) }
        let expected = Set(prunable.flatMap { [Self.importanceName($0.id), Self.keepName($0.id)] })
        if let unexpected = tensors.names.first(where: { $0.hasPrefix(kind + "/") && !expected.contains($0) }) {
            throw PrunerError.checkpointUnexpectedTensor(name: unexpected)
        }
        var newImportance: [String: [Float]] = [:], newKeep: [String: [Bool]] = [:]
        for group in prunable {
            let scores = try Self.tensor(Self.importanceName(group.id), in: tensors, channels: group.channels)
            let flags = try Self.tensor(Self.keepName(group.id), in: tensors, channels: group.channels).scalars
            if let bad = flags.first(where: { $0 != 0 && $0 != 1 }) {
                throw PrunerError.checkpointInvalidValue(name: Self.keepName(group.id),
                                                         reason: "keep flag \(bad), expected 0 or 1")
            }
            guard flags.contains(1) else {
                throw PrunerError.checkpointInvalidValue(name: Self.keepName(group.id), reason: "no channel kept")
            }
            newImportance[group.id] = scores.scalars
            newKeep[group.id] = flags.map { $0 == 1 }
        }
        importance = newImportance
        importanceInitialized = saved.importanceInitialized
        self.progress = progress
        setKeep(newKeep)
    }

    static func importanceName(_ group: String) -> String { "pruner/importance/\(group)" }
    static func keepName(_ group: String) -> String { "pruner/keep/\(group)" }

    /// The tensor `name`, which must have shape `[channels]`.
    private static func tensor(_ name: String, in tensors: NamedTensors, channels: Int) throws -> Tensor {
        guard let tensor = tensors[name] else { throw PrunerError.checkpointMissingTensor(name: name) }
        guard tensor.shape == [channels] else {
            throw PrunerError.checkpointShapeMismatch(name: name, found: tensor.shape, expected: [channels])
        }
        return tensor
    }
}
