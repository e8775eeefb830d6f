import ECCollective
import ECNN

/// Evaluates saved weights on a job's test set: the library function behind `easycompress eval`.
public enum EvalJob {
    /// - Parameter weights: a checkpoint directory, save_dir or safetensors file; nil scores an
    ///   imported model's own weights (`model: {onnx: FILE}`), or the job's save_dir for a zoo
    ///   model.
    public static func run(_ config: JobConfig, weights: String?, communicator: Communicator,
                           log: Logger) throws -> EvaluationResult {
        TrainJob.configureThreads(config.threads)
        let model = try config.makeModel()
        if let source = weights ?? (config.modelFile == nil ? config.saveDir : nil) {
            try WeightLoader.load(into: model, from: source, log: log)
        }
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        try test.checkFits(model)
        return try Evaluator.evaluate(model, on: test, communicator: communicator)
    }
}
