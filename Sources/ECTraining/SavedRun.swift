import Foundation
import ECCheckpoint
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
}
