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
        let state = SparsifierState(formatVersion: SparsifierState.currentVersion, trialsDone: trialsDone,
                                    lastDecisionStep: lastDecisionStep, kernels: kernels.map(\.parameter))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(state)
    }

    /// Restores what `checkpointTensors`/`checkpointState` saved, after `prepare` on the same
    /// model and config. Tensors not named `sparsifier/…` are ignored; nothing changes on a throw.
    public func restore(tensors: NamedTensors, state: Data) throws {
        guard communicator != nil else { throw SparsifierError.notPrepared(operation: "restore") }
        let saved: SparsifierState
        do {
            saved = try JSONDecoder().decode(SparsifierState.self, from: state)
        } catch {
            throw SparsifierError.checkpointState(reason: "unreadable JSON (\(error))")
        }
        guard saved.formatVersion == SparsifierState.currentVersion else {
            throw SparsifierError.checkpointState(reason: "format version \(saved.formatVersion) is not supported, "
                                                  + "this build reads version \(SparsifierState.currentVersion)")
        }
        guard saved.kernels == kernels.map(\.parameter) else {
            throw SparsifierError.checkpointState(reason: "written for kernels \(saved.kernels), "
                                                  + "this model and scopes have \(kernels.map(\.parameter))")
        }
        guard (0...config.numTrials).contains(saved.trialsDone), (saved.trialsDone == 0) == (saved.lastDecisionStep == nil) else {
            throw SparsifierError.checkpointState(reason: "trials_done \(saved.trialsDone) and last_decision_step "
                                                  + "\(saved.lastDecisionStep.map(String.init) ?? "null") do not fit "
                                                  + "num_trials \(config.numTrials)")
        }
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
        trialsDone = saved.trialsDone
        lastDecisionStep = saved.lastDecisionStep
        setKeep(flags)
    }
}
