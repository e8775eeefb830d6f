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
/// It reads the model's architecture (`model.json`, written with every run; for older save_dirs
/// the zoo model of the job state), the model tensors and the pruner's keep flags
/// (`pruner/keep/<group id>`; groups without flags keep every channel) from the newest
/// checkpoint of `modelDir` — or, when the save_dir has none, from what a `CompressionHook`
/// alone leaves (`pruner.safetensors`), as in the seed's flow
/// `CompressionHook(pruner, save_dir)` → `GapFinetune(save_dir)`. The small model's outputs
/// equal the masked large model's.
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

    /// - Parameters:
    ///   - inputShape, classes: the data the pruning run trained on (`JobData`'s signature),
    ///     Fashion-MNIST's by default; used only for save_dirs without `model.json` (a zoo
    ///     model is then rebuilt for that data).
    ///   - log: where newer checkpoints of `modelDir` that fail verification are named, with
    ///     the one used instead.
    public init(modelDir: String, inputShape: [Int] = [28, 28, 1], classes: Int = 10, log: Logger? = nil) throws {
        let dir = URL(fileURLWithPath: modelDir)
        let hookWeights = dir.appendingPathComponent(SavedRun.weightsFile("pruner"))
        let tensors: NamedTensors, tensorsPath: String, source: URL, state: JobState?
        if let latest = try SavedRun.latestCheckpoint(in: dir, onSkip: { reference, error in
            log?.warning("skipping checkpoint \(reference.url.path): \(error)")
        }) {
            (tensors, tensorsPath, source, state) = (latest.tensors, latest.tensorsPath, latest.url, try SavedRun.jobState(of: latest))
        } else if FileManager.default.fileExists(atPath: hookWeights.path) {
            tensors = try SafeTensors.read(from: hookWeights).tensors(file: hookWeights.path)
            (tensorsPath, source, state) = (hookWeights.path, hookWeights, nil)
        } else {
            _ = try SavedRun.requireLatestCheckpoint(in: modelDir, log: log)  // throws, naming the folder
            preconditionFailure("unreachable: no checkpoint was found")
        }
        let model = try SavedRun.modelSkeleton(in: dir, state: state, inputShape: inputShape, classes: classes)
        WeightLoader.assign(try WeightLoader.weights(for: model, from: tensors, file: tensorsPath), to: model)
        let latest = (tensors: tensors, tensorsPath: tensorsPath, url: source)

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
