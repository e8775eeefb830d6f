import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECOptim
import ECTensor

/// Where and how an `Estimator` runs (the seed's `tf.estimator.RunConfig`).
public struct RunConfig {
    public var saveDir: String
    public var communicator: Communicator
    public var log: Logger
    /// Progress / metrics line every N steps.
    public var logEvery = 50
    /// Checkpoint every N steps (0: at the end only); checkpoints kept.
    public var checkpointEvery = 0
    public var keepCheckpoints = 3
    /// Cross-rank parameter checksum every N steps (0: off).
    public var debugCheckEvery = 0
    public var bucketBytes = DistributedOptimizer.defaultBucketBytes
    /// Gradient buckets summed during backward (`DistributedOptimizer.overlapBackward`).
    public var overlapGradients = DistributedOptimizer.defaultOverlap
    /// Continue from the newest checkpoint in `saveDir`.
    public var resume = false
    /// Thread replicas per rank (`MonitoredSession.threadReplicas`); nil: one per element-wise
    /// worker thread (`Parallel.workers`, the rank's share of the cores).
    public var threadReplicas: Int?
    /// Synchronised batch norm (`MonitoredSession.syncBatchNorm`).
    public var syncBatchNorm = false

    public init(saveDir: String, communicator: Communicator = SingleProcessCommunicator(),
                log: Logger = Logger()) {
        self.saveDir = saveDir
        self.communicator = communicator
        self.log = log
    }
}

/// A model and how to train it (the seed's `tf.estimator.Estimator`): `modelFn` builds the
/// network, `optimizerFn` the optimizer for a given number of training steps.
public final class Estimator {
    public let modelFn: () throws -> Model
    public let optimizerFn: (_ totalSteps: Int) throws -> Optimizer
    public let config: RunConfig

    public init(modelFn: @escaping () throws -> Model, optimizerFn: @escaping (_ totalSteps: Int) throws -> Optimizer,
                config: RunConfig) {
        self.modelFn = modelFn
        self.optimizerFn = optimizerFn
        self.config = config
    }
}

/// What to train on (the seed's `tf.estimator.TrainSpec`): the training set, the global batch,
/// the data-order seed, and the length — `maxSteps`, else `epochs` passes.
public struct TrainSpec {
    public var data: Dataset
    public var batchSize: Int
    public var seed: UInt64
    public var epochs: Int
    public var maxSteps: Int?

    public init(data: Dataset, batchSize: Int, seed: UInt64, epochs: Int = 1, maxSteps: Int? = nil) {
        self.data = data
        self.batchSize = batchSize
        self.seed = seed
        self.epochs = epochs
        self.maxSteps = maxSteps
    }
}

/// What to evaluate on (the seed's `tf.estimator.EvalSpec`): every `everySteps` steps, or
/// after each epoch when 0; always at the end.
public struct EvalSpec {
    public var data: Dataset
    public var everySteps: Int

    public init(data: Dataset, everySteps: Int = 0) {
        self.data = data
        self.everySteps = everySteps
    }
}

/// Trains with periodic evaluation and the given compressors, on every rank of
/// `estimator.config.communicator` (the seed's `easycompression.train_and_evaluate`, which
/// replaces `tf.estimator.train_and_evaluate`). The chief writes `saveDir`: checkpoints,
/// `metrics.jsonl`, `summary.json` (with one section per compressor).
public func trainAndEvaluate(estimator: Estimator, trainSpec: TrainSpec, evalSpec: EvalSpec,
                             compressors: [Compressor] = []) throws -> TrainOutcome {
    try TrainLoop(estimator: estimator, trainSpec: trainSpec, evalSpec: evalSpec, compressors: compressors).run()
}
