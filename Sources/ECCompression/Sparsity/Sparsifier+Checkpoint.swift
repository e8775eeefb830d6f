import ECCheckpoint
import ECTensor
import Foundation

/// The sparsifier's JSON state beside its checkpoint tensors.
struct SparsifierState: Codable, Equatable {
    static let currentVersion = 1

    let formatVersion: Int
    let trialsDone: Int
    let lastDecisionStep: Int?
    /// The sparsified kernels, in order: a checkpoint of another model or scopes is refused.
    let kernels: [String]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", trialsDone = "trials_done", lastDecisionStep = "last_decision_step", kernels
    }
}

extension Sparsifier {
    /// `sparsifier/mask/<kernel>`: the block mask `[gridRows, gridColumns]`, 1 kept, 0 zeroed.
    public func checkpointTensors() -> NamedTensors { decisionTensors }

    /// `{"format_version", "trials_done", "last_decision_step", "kernels"}` as JSON.
    public func checkpointState() throws -> Data {
        try VersionedJSON.encode(SparsifierState(formatVersion: SparsifierState.currentVersion, trialsDone: trialsDone,
                                                 lastDecisionStep: lastDecisionStep, kernels: kernels.map(\.parameter)))
    }

    /// Restores what `checkpointTensors`/`checkpointState` saved, after `prepare` on the same
    /// model and config. Tensors not named `sparsifier/…` are ignored; nothing changes on a throw.
    public func restore(tensors: NamedTensors, state: Data) throws {
        guard communicator != nil else { throw SparsifierError.notPrepared(operation: "restore") }
        let saved: SparsifierState
        do {
            saved = try VersionedJSON.decode(SparsifierState.self, from: state, version: SparsifierState.currentVersion)
        } catch {
            throw SparsifierError.checkpointState(reason: error.description)
        }
        guard saved.kernels == kernels.map(\.parameter) else {
            throw SparsifierError.checkpointState(reason: "written for kernels \(saved.kernels), "
                                                  + "this model and scopes have \(kernels.map(\.parameter))")
        }
        let progress = TrialProgress(trialsDone: saved.trialsDone, lastDecisionStep: saved.lastDecisionStep)
        if let problem = progress.problem(numTrials: config.numTrials) { throw SparsifierError.checkpointState(reason: problem) }
        let expected = Set(kernels.map { Self.maskName($0.parameter) })
        if let unexpected = tensors.names.first(where: { $0.hasPrefix(kind + "/") && !expected.contains($0) }) {
            throw SparsifierError.checkpointUnexpectedTensor(name: unexpected)
        }
        var flags: [String: [Bool]] = [:]
        for k in kernels {
            let name = Self.maskName(k.parameter)
            guard let t = tensors[name] else { throw SparsifierError.checkpointMissingTensor(name: name) }
            guard t.shape == k.grid.maskShape else {
                throw SparsifierError.checkpointInvalidTensor(name: name, reason: "shape \(t.shape), expected \(k.grid.maskShape)")
            }
            let values = t.scalars
            if let bad = values.first(where: { $0 != 0 && $0 != 1 }) {
                throw SparsifierError.checkpointInvalidTensor(name: name, reason: "mask value \(bad), expected 0 or 1")
            }
            flags[k.parameter] = values.map { $0 == 1 }
        }
        self.progress = progress
        setKeep(flags)
    }
}
