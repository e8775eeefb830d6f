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
    /// Trains the job on this rank (every rank calls it).
    ///
    /// With `resume`, training continues from the newest checkpoint in `save_dir` (weights,
    /// optimizer state, step and data position) instead of starting over. A save_dir that
    /// already holds a run is refused unless `resume` (continue it) or `overwrite` (replace it:
    /// its run files are removed once every check has passed) is given.
    ///
    /// `model` replaces the zoo model the job names (GapFinetune's extracted model); `data`, the
    /// job's data when the caller has loaded them already (`JobData.load`).
    ///
    /// Everything is checked before anything is written (`JobChecks`): the job's values, the
    /// data, the model, `init_from` / `pretrained_model`, the compressors against the model,
    /// the checkpoint to resume from, and the save_dir; a job that fails any check leaves its
    /// save_dir exactly as it was. Then the chief saves the job as `save_dir/config.json` and,
    /// unless the job says `report: false`, writes `save_dir/report.html` (`RunReport`) at the end.
    public static func run(_ config: JobConfig, communicator: Communicator, log: Logger,
                           resume: Bool = false, overwrite: Bool = false, data loaded: JobData? = nil,
                           model makeModel: (() throws -> Model)? = nil) throws -> TrainOutcome {
        configureThreads(config.threads)
        let checked = try JobChecks.run(config, communicator: communicator, log: log, resume: resume, overwrite: overwrite,
                                        data: loaded, makeModel: makeModel)
        // Every rank has passed its checks before the chief writes: a rank that failed has
        // aborted the job (`failJob`) and the others never get past this barrier.
        try communicator.barrier()
        if communicator.isChief {
            let dir = SaveDirectory(path: config.saveDir)
            if overwrite, let old = dir.existingRun() {
                try dir.clearRun()
                log.info("--overwrite: removed the run that was in \(config.saveDir) (\(old))")
            }
            try dir.create()
            try AtomicFile.write(config.recordedJSON(), to: dir.url.appendingPathComponent("config.json"))
            try checked.quantizationPlan?.write(to: dir.url)
        }
        if let source = config.initFrom ?? config.quantizer?.pretrainedModel {
            log.info("initialised \(checked.model.name) from \(source)")
        }
        var run = RunConfig(saveDir: config.saveDir, communicator: communicator, log: log)
        run.logEvery = config.logEvery
        run.checkpointEvery = config.checkpointEvery
        run.keepCheckpoints = config.keepCheckpoints
        run.debugCheckEvery = config.debugCheckEvery
        run.bucketBytes = config.bucketBytes
        run.resume = resume
        run.threadReplicas = config.threadReplicas
        run.syncBatchNorm = config.syncBatchNorm
        let model = checked.model
        let estimator = Estimator(modelFn: { model }, optimizerFn: { try makeOptimizer(config.optimizer, totalSteps: $0) },
                                  config: run)
        let outcome = try trainAndEvaluate(
            estimator: estimator,
            trainSpec: TrainSpec(data: checked.train, batchSize: config.batchSize, seed: config.seed, epochs: config.epochs,
                                 maxSteps: config.steps),
            evalSpec: EvalSpec(data: checked.test, everySteps: config.evalEvery),
            compressors: checked.compressors)
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
