import ECCollective
import ECNN

/// Evaluates saved weights on a job's test set: the library function behind `easycompress eval`.
public enum EvalJob {
    public static func run(_ config: JobConfig, weights: String, communicator: Communicator,
                           log: Logger) throws -> EvaluationResult {
        TrainJob.configureThreads(config.threads)
        let model = try config.makeModel()
        try WeightLoader.load(into: model, from: weights)
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        try test.checkFits(model)
        return try Evaluator.evaluate(model, on: test, communicator: communicator)
    }
}
