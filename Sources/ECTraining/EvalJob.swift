import ECCollective
import ECNN
import Foundation

/// Evaluates saved weights on a job's test set: the library function behind `easycompress eval`.
public enum EvalJob {
    /// - Parameter weights: a checkpoint directory, save_dir or safetensors file; nil scores an
    ///   imported model's own weights (`model: {onnx: FILE}`), or the job's save_dir for a zoo
    ///   model. When the weights belong to a save_dir that describes its model (`model.json`,
    ///   e.g. a fine-tuned extracted model), that architecture is scored.
    public static func run(_ config: JobConfig, weights: String?, communicator: Communicator,
                           log: Logger) throws -> EvaluationResult {
        TrainJob.configureThreads(config.threads)
        let data = try JobData.load(config.dataset, train: .labelsOnly)
        let source = weights ?? (config.modelFile == nil ? config.saveDir : nil)
        let model: Model
        if let dir = source.flatMap(saveDir(of:)), let description = try SavedRun.modelDescription(in: dir) {
            model = try Model(description: description)
            try data.signature.requireFits(model)
        } else {
            model = try config.makeModel(for: data.signature)
        }
        if let source { try WeightLoader.load(into: model, from: source, log: log) }
        return try Evaluator.evaluate(model, on: data.test, communicator: communicator)
    }

    /// The save_dir a weights path belongs to: itself, or the save_dir of a checkpoint
    /// directory (`<save_dir>/checkpoints/step-…`); nil for a file.
    static func saveDir(of path: String) -> URL? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().lastPathComponent == "checkpoints" ? url.deletingLastPathComponent().deletingLastPathComponent() : url
    }
}
