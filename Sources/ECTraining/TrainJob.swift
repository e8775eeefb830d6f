import ECReport
import Foundation
import ECCheckpoint
import ECCollective
import ECNN
import ECOptim
import ECTensor

/// What a finished training run leaves behind.
public struct TrainOutcome {
    public let summary: TrainSummary
    public let model: Model
    public let saveDir: URL
}

/// Runs a training job described by a `JobConfig`: the library function behind
/// `easycompress train`. Every rank calls it; the chief alone logs and writes `save_dir`.
public enum TrainJob {
    ///
    /// With `resume`, training continues from the newest checkpoint in `save_dir` (weights,
    /// optimizer state, step and data position) instead of starting over.
    ///
    /// `model` replaces the zoo model the job names (GapFinetune's extracted model); `data`, the
    /// job's data when the caller has loaded them already (`JobData.load`).
    ///
    /// The data are loaded and the model built (a zoo model for the data's image shape and
    /// classes; a given one checked against them) before anything is written. The chief then
    /// saves the job as `save_dir/config.json` and, unless the job says `report: false`, writes
    /// `save_dir/report.html` (`RunReport`) at the end.
    public static func run(_ config: JobConfig, communicator: Communicator, log: Logger,
                           resume: Bool = false, data loaded: JobData? = nil,
                           model makeModel: (() throws -> Model)? = nil) throws -> TrainOutcome {
        configureThreads(config.threads)
        let data = try loaded ?? JobData.load(config.dataset)
        guard let train = data.train else { preconditionFailure("TrainJob needs the training split: JobData.load(_:train: .all)") }
        let test = data.test
        let built = try makeModel?() ?? config.makeModel(for: data.signature)
        try data.signature.requireFits(built)
        log.info("data: \(data.summary)")
        var run = RunConfig(saveDir: config.saveDir, communicator: communicator, log: log)
        run.logEvery = config.logEvery
        run.checkpointEvery = config.checkpointEvery
        run.keepCheckpoints = config.keepCheckpoints
        run.debugCheckEvery = config.debugCheckEvery
        run.bucketBytes = config.bucketBytes
        run.overlapGradients = config.overlapGradients
        run.resume = resume
        run.threadReplicas = config.threadReplicas
        run.syncBatchNorm = config.syncBatchNorm
        if config.initFrom != nil, config.quantizer?.pretrainedModel != nil {
            throw ConfigError.invalid(path: "compression.quantizer.pretrained_model",
                                      reason: "the job also has init_from: give the starting weights once")
        }
        let estimator = Estimator(modelFn: {
            let model = built
            if let q = config.quantizer {
                do { try q.validate(against: model) } catch {
                    throw ConfigError.invalid(path: "compression.quantizer", reason: "\(error)")
                }
            }
            if let source = config.initFrom {
                try WeightLoader.load(into: model, from: source)
            }
            if let q = config.quantizer {  // loads pretrained_model, writes save_dir/quantization_plan.json
                try quantizeGraph(model, mode: .train, modelDir: config.saveDir, config: q, writePlan: communicator.isChief)
            }
            if let source = config.initFrom ?? config.quantizer?.pretrainedModel {
                log.info("initialised \(model.name) from \(source)")
            }
            return model
        }, optimizerFn: { try makeOptimizer(config.optimizer, totalSteps: $0) }, config: run)
        let calibration = train.gather(0..<min(256, train.count)).images
        if communicator.isChief {
            let dir = URL(fileURLWithPath: config.saveDir)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try AtomicFile.write(config.recordedJSON(), to: dir.appendingPathComponent("config.json"))
        }
        let outcome = try trainAndEvaluate(
            estimator: estimator,
            trainSpec: TrainSpec(data: train, batchSize: config.batchSize, seed: config.seed, epochs: config.epochs,
                                 maxSteps: config.steps),
            evalSpec: EvalSpec(data: test, everySteps: config.evalEvery),
            compressors: try config.makeCompressors(calibration: calibration))
        if config.report && communicator.isChief { RunReport.write(saveDir: outcome.saveDir, log: log) }
        return outcome
    }

    /// Sets OpenBLAS and element-wise worker threads: the configured count, else the cores of
    /// this node divided by the ranks on it (ranks × threads ≤ cores).
    public static func configureThreads(_ requested: Int?) {
        let env = ProcessInfo.processInfo.environment
        let threads: Int
        if let requested {
            threads = requested
        } else if let s = env["OPENBLAS_NUM_THREADS"], let n = Int(s), n > 0 {
            threads = n
        } else {
            let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
            threads = max(1, ProcessInfo.processInfo.activeProcessorCount / max(local, 1))
        }
        BLAS.setThreads(threads)
        Parallel.workers = threads
    }

    /// The optimizer a job's `optimizer:` section describes.
    public static func makeOptimizer(_ c: JobConfig.OptimizerConfig, totalSteps: Int) throws -> Optimizer {
        let lr = Float(c.lr)
        let warmup = c.schedule.warmupSteps
        let schedule: LRSchedule
        switch c.schedule.name {
        case "step": schedule = .stepDecay(lr, stepSize: c.schedule.stepSize, gamma: Float(c.schedule.gamma), warmupSteps: warmup)
        case "cosine": schedule = .cosine(lr, totalSteps: max(totalSteps, 1), minLearningRate: Float(c.schedule.minLR),
                                          warmupSteps: warmup)
        default: schedule = .constant(lr, warmupSteps: warmup)
        }
        try schedule.validate()
        switch c.name {
        case "adam":
            return try Adam(schedule: schedule, beta1: Float(c.beta1), beta2: Float(c.beta2), epsilon: Float(c.epsilon),
                        weightDecay: Float(c.weightDecay))
        case "adamw":
            return try AdamW(schedule: schedule, beta1: Float(c.beta1), beta2: Float(c.beta2), epsilon: Float(c.epsilon),
                         weightDecay: Float(c.weightDecay))
        default:
            return try SGD(schedule: schedule, momentum: Float(c.momentum), nesterov: c.nesterov, weightDecay: Float(c.weightDecay))
        }
    }
}
