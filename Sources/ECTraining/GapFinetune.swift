import Foundation
import ECCheckpoint
import ECCompression
import ECNN
import ECTensor

/// Builds the physically smaller model from a pruned `save_dir` (the seed's
/// `GapFinetune(model_dir)` with its custom getter): reduced channel counts, the surviving
/// weights already loaded — no restore step — ready to fine-tune and save.
///
/// ```swift
/// let ft = try GapFinetune(modelDir: "runs/fmnist-cnn-pruned")
/// let small = ft.model            // conv1 16 channels instead of 32, …
/// ```
///
/// It reads the newest checkpoint of `modelDir`: the job state (zoo model and seed), the model
/// tensors, and the pruner's keep flags (`pruner/keep/<group id>`; groups without flags keep
/// every channel). The small model's outputs equal the masked large model's.
public final class GapFinetune {
    /// The physically smaller model, weights loaded.
    public let model: Model
    /// The large model with the checkpoint's (masked) weights.
    public let original: Model
    /// The channel groups and the channels each keeps.
    public let groups: [ChannelGroup]
    public let keep: [String: [Bool]]
    /// Where the weights came from.
    public let checkpoint: URL

    /// - Parameter log: where newer checkpoints of `modelDir` that fail verification are named,
    ///   with the one used instead.
    public init(modelDir: String, log: Logger? = nil) throws {
        let latest = try SavedRun.requireLatestCheckpoint(in: modelDir, log: log)
        let state = try SavedRun.jobState(of: latest)
        guard let model = ModelZoo.make(state.model, seed: state.seed) else {
            throw TrainingError.incompatibleWeights(source: latest.url.path, reason: "unknown model '\(state.model)'")
        }
        WeightLoader.assign(try WeightLoader.weights(for: model, from: latest.tensors, file: latest.tensorsPath), to: model)

        let groups = ChannelGroups.build(model: model)
        var keep: [String: [Bool]] = [:]
        for group in groups {
            guard let flags = latest.tensors["pruner/keep/\(group.id)"] else { continue }
            guard flags.shape == [group.channels], flags.scalars.allSatisfy({ $0 == 0 || $0 == 1 }),
                  flags.scalars.contains(1) else {
                throw TrainingError.incompatibleWeights(
                    source: latest.tensorsPath,
                    reason: "pruner/keep/\(group.id) must be \(group.channels) flags of 0 or 1 with at least one 1, "
                        + "got shape \(flags.shape)")
            }
            keep[group.id] = flags.scalars.map { $0 == 1 }
        }
        guard !keep.isEmpty else {
            throw TrainingError.incompatibleWeights(source: latest.tensorsPath,
                                                    reason: "no pruner keep flags: was this save_dir written by a pruning job?")
        }
        ModelSurgery.applyMasks(model: model, groups: groups, keep: keep)
        original = model
        self.groups = groups
        self.keep = keep
        checkpoint = latest.url
        self.model = ModelSurgery.shrink(model: model, groups: groups, keep: keep)
    }
}
