import Foundation
import ECCheckpoint
import ECNN
import ECTensor

/// Loads model weights (parameters and batch-norm statistics) from any of:
/// - a checkpoint directory (`save_dir/checkpoints/step-00002814`),
/// - a `save_dir` (its newest valid checkpoint),
/// - a `.safetensors` file with our names (`conv1/weight`) or Keras names (`conv1.kernel`,
///   `conv1.bias`, `bn.gamma`, `bn.moving_mean`, … — TensorFlow's NHWC/HWIO layouts are ours,
///   so no transposition is needed).
///
/// Every model tensor must be present with its exact shape; tensors the model does not have
/// (optimizer state, compressor state) are ignored.
public enum WeightLoader {
    /// - Parameter log: where a save_dir's newer checkpoints that fail verification are named,
    ///   with the older one used instead (`SavedRun.requireLatestCheckpoint`).
    public static func load(into model: Model, from path: String, log: Logger? = nil) throws {
        assign(try weights(for: model, from: readTensors(from: path, log: log), file: path), to: model)
    }

    /// The model's tensors among `tensors` (Keras names mapped to scope paths), every one
    /// present with the model's shape — else an error naming the tensor and `file`. Other
    /// tensors (optimizer, compressor state) are ignored.
    public static func weights(for model: Model, from tensors: NamedTensors, file: String) throws -> NamedTensors {
        let weights = NamedTensors(tensors.sorted.compactMap { entry in
            let name = canonicalName(entry.name)
            return model.parameter(named: name) == nil ? nil : (name, entry.tensor)
        })
        let expected = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.shape) })
        try weights.validateShapes(expected, allowUnexpected: true, file: file)
        return weights
    }

    /// Sets every parameter of `model` from `weights` (as checked by `weights(for:from:file:)`).
    public static func assign(_ weights: NamedTensors, to model: Model) {
        for p in model.parameters { p.value = weights[p.name]! }
    }

    /// The Float tensors stored at `path` (file, checkpoint directory or save_dir: its newest
    /// checkpoint that verifies, newer damaged ones warned about through `log`).
    public static func readTensors(from path: String, log: Logger? = nil) throws -> NamedTensors {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TrainingError.incompatibleWeights(source: path, reason: "no such file or directory")
        }
        if !isDirectory.boolValue {
            return try SafeTensors.read(from: url).tensors(file: path)
        }
        let checkpoints = url.appendingPathComponent("checkpoints")
        if FileManager.default.fileExists(atPath: checkpoints.path) {
            return try SavedRun.requireLatestCheckpoint(in: path, log: log).tensors
        }
        return try CheckpointStore(directory: url.deletingLastPathComponent()).load(url).tensors
    }

    /// Maps Keras-style names (`conv1.kernel`) to scope paths (`conv1/weight`).
    static func canonicalName(_ name: String) -> String {
        guard !name.contains("/"), let dot = name.lastIndex(of: ".") else { return name }
        let scope = name[..<dot].replacingOccurrences(of: ".", with: "/")
        let leaf = String(name[name.index(after: dot)...])
        return scope + "/" + (leaf == "kernel" ? "weight" : leaf)
    }
}
