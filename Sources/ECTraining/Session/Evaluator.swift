import ECCollective
import ECNN
import ECTensor

/// Test-set metrics, identical on every rank (allreduced).
public struct EvaluationResult: Codable, Equatable {
    public let accuracy: Double
    public let loss: Double
    public let samples: Int
}

/// Evaluates a model in inference mode over a dataset, each rank taking its shard of every
/// evaluation batch (`EvaluationBatches`), with the sums (correct, loss, count) allreduced so
/// every rank gets the totals.
public enum Evaluator {
    public static func evaluate(_ model: Model, on data: Dataset, batchSize: Int = 500,
                                communicator: Communicator = SingleProcessCommunicator(),
                                options: InferenceOptions = .standard) throws -> EvaluationResult {
        var correct = 0.0, lossSum = 0.0, count = 0.0
        for (x, y) in try EvaluationBatches(dataset: data, batchSize: batchSize, rank: communicator.rank,
                                            worldSize: communicator.size) where !y.isEmpty {
            let logits = Variable(model.predict(x, options: options))
            lossSum += Double(logits.softmaxCrossEntropy(labels: y, normalizer: 1).value.scalarValue)
            let predicted = logits.value.argmaxRows()
            for i in 0..<y.count where predicted[i] == y[i] { correct += 1 }
            count += Double(y.count)
        }
        var totals: [Double] = [correct, lossSum, count]
        try totals.withUnsafeMutableBufferPointer { try communicator.allreduce($0, op: .sum) }
        let n = max(totals[2], 1)
        return EvaluationResult(accuracy: totals[0] / n, loss: totals[1] / n, samples: Int(totals[2]))
    }
}
