import ECCollective
import ECNN

/// Evaluates saved weights on a job's test set: the library function behind `easycompress eval`.
public enum EvalJob {
    public static func run(_ config: JobConfig, weights: String, communicator: Communicator,
                           log: Logger) throws -> EvaluationResult {
        TrainJob.configureThreads(config.threads)
        let data = try JobData.load(config.dataset, train: .labelsOnly)
        let model = try config.makeModel(for: data.signature)
        try WeightLoader.load(into: model, from: weights)
        return try Evaluator.evaluate(model, on: data.test, communicator: communicator)
    }
}
