import Foundation
import ECCheckpoint
import ECNN
import ECTensor

/// Reading back what a training job left in its `save_dir`: the newest checkpoint, its job
/// state, and each compressor's saved part.
public enum SavedRun {
    /// The newest valid checkpoint of `saveDir/checkpoints`, or nil when there is none. Newer
    /// ones that fail verification (corrupt, interrupted) are passed to `onSkip` with the reason.
    public static func latestCheckpoint(in saveDir: URL,
                                        onSkip: (CheckpointReference, CheckpointError) -> Void = { _, _ in }) throws -> Checkpoint? {
        let store = CheckpointStore(directory: saveDir.appendingPathComponent("checkpoints"))
        guard FileManager.default.fileExists(atPath: store.directory.path) else { return nil }
        return try store.loadLatest(onSkip: onSkip)
    }

    /// As `latestCheckpoint(in:onSkip:)`, but a missing checkpoint is an error naming the folder
    /// (and, when every checkpoint failed verification, why the newest one did).
    public static func requireLatestCheckpoint(in saveDir: String,
                                               onSkip: (CheckpointReference, CheckpointError) -> Void = { _, _ in }) throws -> Checkpoint {
        let dir = URL(fileURLWithPath: saveDir)
        var firstSkipped: String?
        let latest = try latestCheckpoint(in: dir) { reference, error in
            if firstSkipped == nil { firstSkipped = "\(reference.url.path): \(error)" }
            onSkip(reference, error)
        }
        guard let latest else {
            let checkpoints = dir.appendingPathComponent("checkpoints").path
            throw TrainingError.incompatibleWeights(
                source: saveDir, reason: firstSkipped.map { "no valid checkpoint in \(checkpoints) (newest: \($0))" }
                    ?? "no checkpoint in \(checkpoints)")
        }
        return latest
    }

    /// `requireLatestCheckpoint`, warning through `log` about each newer checkpoint skipped and
    /// naming the one used instead — the one helper `eval`, `export`, `init_from` and
    /// `pretrained_model` share, so no command scores or exports an older checkpoint silently
    /// (`inspect` lists the skipped ones in its output; `--resume` warns in `CheckpointHook`).
    static func requireLatestCheckpoint(in saveDir: String, log: Logger?) throws -> Checkpoint {
        var skipped = 0
        let latest = try requireLatestCheckpoint(in: saveDir) { reference, error in
            skipped += 1
            log?.warning("skipping checkpoint \(reference.url.path): \(error)")
        }
        if skipped > 0 {
            log?.warning("using \(latest.url.path) (step \(latest.step)), the newest checkpoint of \(saveDir) that verifies")
        }
        return latest
    }

    /// The checkpoint's job state (`state.json`).
    public static func jobState(of checkpoint: Checkpoint) throws -> JobState {
        do {
            return try JSONDecoder().decode(JobState.self, from: checkpoint.state)
        } catch {
            throw TrainingError.incompatibleWeights(source: checkpoint.url.path, reason: "state.json is not a job state: \(error)")
        }
    }

    /// The tensors (`<kind>/…`) and JSON state a compressor of `kind` saved in the checkpoint,
    /// or nil when it holds no state for that kind.
    public static func compressorState(_ kind: String, in checkpoint: Checkpoint) throws -> CheckpointHook.CompressorState? {
        let object = try? JSONSerialization.jsonObject(with: checkpoint.state) as? [String: Any]
        guard let json = (object?["compressors"] as? [String: Any])?[kind] else { return nil }
        let prefix = kind + "/"
        let own = NamedTensors(checkpoint.tensors.sorted.filter { $0.name.hasPrefix(prefix) }.map { ($0.name, $0.tensor) })
        return CheckpointHook.CompressorState(tensors: own, state: try JSONSerialization.data(withJSONObject: json))
    }

    /// `save_dir/model.json`: the model's architecture (`ModelDescription`), so that the model
    /// can be rebuilt from the save_dir alone — imported and extracted models included.
    public static let modelFile = "model.json"
    /// `save_dir/<kind>.safetensors`: the model's weights and one compressor's decisions as its
    /// `CompressionHook` left them at the end of training (what `GapFinetune` reads —
    /// `pruner.safetensors` — when the save_dir has no checkpoint).
    public static func weightsFile(_ kind: String) -> String { "\(kind).safetensors" }

    /// Writes `model.json` (and, with `tensors`, `<kind>.safetensors`) into `saveDir`, atomically.
    public static func writeModel(_ model: Model, tensors: (kind: String, NamedTensors)? = nil, to saveDir: URL) throws {
        try FileManager.default.createDirectory(at: saveDir, withIntermediateDirectories: true)
        try AtomicFile.write(try VersionedJSON.encode(model.modelDescription, pretty: true),
                             to: saveDir.appendingPathComponent(modelFile))
        if let (kind, t) = tensors { try SafeTensors(tensors: t).write(to: saveDir.appendingPathComponent(weightsFile(kind))) }
    }

    /// The architecture recorded in `saveDir/model.json`, nil when there is none.
    public static func modelDescription(in saveDir: URL) throws -> ModelDescription? {
        let url = saveDir.appendingPathComponent(modelFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try VersionedJSON.decode(ModelDescription.self, from: try Data(contentsOf: url), version: ModelDescription.formatVersion)
        } catch {
            throw TrainingError.incompatibleWeights(source: url.path, reason: "not a model description: \(error)")
        }
    }

    /// The model a save_dir holds, with zero weights: `model.json` when present, else the zoo
    /// model its job state names.
    public static func modelSkeleton(in saveDir: URL, state: JobState?, inputShape: [Int] = [28, 28, 1],
                                     classes: Int = 10) throws -> Model {
        if let description = try modelDescription(in: saveDir) {
            do { return try Model(description: description) } catch {
                throw TrainingError.incompatibleWeights(source: saveDir.appendingPathComponent(modelFile).path, reason: "\(error)")
            }
        }
        guard let state, let model = ModelZoo.make(state.model, seed: state.seed, inputShape: inputShape, classes: classes) else {
            throw TrainingError.incompatibleWeights(source: saveDir.path, reason: "no \(modelFile) and "
                + (state.map { "'\($0.model)' is not a built-in model" } ?? "no checkpoint naming a built-in model"))
        }
        return model
    }
}
