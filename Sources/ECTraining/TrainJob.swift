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
    public static func run(_ config: JobConfig, communicator: Communicator, log: Logger,
                           resume: Bool = false) throws -> TrainOutcome {
        configureThreads(config.threads)
        let model = try config.makeModel()
        let train = try Dataset.load(.train, directory: config.dataset.path, limit: config.dataset.limitTrain)
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        try checkInput(model: model, data: train)
        if let source = config.initFrom {
            try WeightLoader.load(into: model, from: source)
            log.info("initialised \(model.name) from \(source)")
        }
        let schedule = try BatchSchedule(dataset: train, batchSize: config.batchSize, seed: config.seed)
        let totalSteps = config.steps ?? config.epochs * schedule.stepsPerEpoch
        let optimizer = try makeOptimizer(config.optimizer, totalSteps: totalSteps)

        let saveDir = URL(fileURLWithPath: config.saveDir)
        if communicator.isChief {
            try FileManager.default.createDirectory(at: saveDir, withIntermediateDirectories: true)
        }
        let metrics = try MetricsLog(url: saveDir.appendingPathComponent("metrics.jsonl"), enabled: communicator.isChief)
        let logging = LoggingHook(every: config.logEvery, totalSteps: totalSteps, metrics: metrics, log: log)
        let evaluation = EvaluationHook(every: config.evalEvery, data: test, metrics: metrics, log: log)
        var hooks: [SessionRunHook] = [StopAtStepHook(lastStep: totalSteps), logging, evaluation]
        if config.debugCheckEvery > 0 { hooks.append(ConsistencyCheckHook(every: config.debugCheckEvery)) }
        hooks += FaultInjectionHook.fromEnvironment() as [SessionRunHook]
        let checkpoints = CheckpointHook(every: config.checkpointEvery, saveDir: saveDir, keepLast: config.keepCheckpoints,
                                         config: config, log: log)
        hooks.append(checkpoints)

        var start = (step: 0, position: BatchPosition(epoch: 0, stepInEpoch: 0))
        if resume, let restored = try restore(model: model, optimizer: optimizer, saveDir: saveDir, config: config,
                                               worldSize: communicator.size) {
            start = restored
            checkpoints.position = restored.position
            log.info("resumed from step \(restored.step) of \(saveDir.path)")
        }
        log.info("training \(model.name) (\(model.parameterCount) params) on \(train.count) samples, "
                 + "\(totalSteps) steps of global batch \(config.batchSize) on \(communicator.size) rank(s)")
        let session = try MonitoredSession(model: model, optimizer: optimizer, communicator: communicator,
                                           hooks: hooks, bucketBytes: config.bucketBytes, startStep: start.step)
        var batches = try schedule.makeIterator(startingAt: start.position,
                                                rank: communicator.rank, worldSize: communicator.size)
        let clock = DispatchTime.now()
        while !session.shouldStop {
            let batch = batches.next()
            checkpoints.position = batches.position
            try session.run(images: batch.images, labels: batch.labels, globalBatchSize: batch.globalCount)
            let endOfEpoch = batches.position.stepInEpoch == 0
            if config.evalEvery == 0, endOfEpoch, !session.shouldStop {
                try evaluation.evaluate(session, step: session.globalStep)
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - clock.uptimeNanoseconds) / 1e9
        let final = try evaluation.evaluate(session, step: session.globalStep)
        try checkpoints.save(session, step: session.globalStep)
        try session.close()

        let summary = TrainSummary(
            model: model.name, worldSize: communicator.size, steps: session.globalStep,
            epochs: Double(session.globalStep) / Double(schedule.stepsPerEpoch), batchSize: config.batchSize,
            seed: config.seed, testAccuracy: final.accuracy, testLoss: final.loss, params: model.parameterCount,
            flops: model.flops, trainSamplesPerSecond: logging.steadySamplesPerSecond > 0
                ? logging.steadySamplesPerSecond : logging.samplesPerSecond,
            trainSeconds: seconds, layers: model.layerSummaries,
            evaluations: evaluation.history.map {
                .init(step: $0.step, testAccuracy: $0.result.accuracy, testLoss: $0.result.loss)
            })
        if communicator.isChief {
            try AtomicFile.write(summary.jsonData(), to: saveDir.appendingPathComponent("summary.json"))
            log.info(summary.table)
            log.info("results in \(saveDir.path)/ (summary.json, metrics.jsonl, checkpoints/)")
        }
        return TrainOutcome(summary: summary, model: model, saveDir: saveDir)
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

    /// Loads the newest checkpoint of `saveDir` into the model and optimizer; nil when there is none.
    static func restore(model: Model, optimizer: Optimizer, saveDir: URL, config: JobConfig,
                        worldSize: Int) throws -> (step: Int, position: BatchPosition)? {
        let store = CheckpointStore(directory: saveDir.appendingPathComponent("checkpoints"))
        guard FileManager.default.fileExists(atPath: store.directory.path),
              let checkpoint = try store.loadLatest() else { return nil }
        let state: JobState
        do {
            state = try JSONDecoder().decode(JobState.self, from: checkpoint.state)
        } catch {
            throw TrainingError.incompatibleWeights(source: checkpoint.url.path, reason: "state.json is not a job state: \(error)")
        }
        guard state.model == model.name, state.batchSize == config.batchSize, state.seed == config.seed else {
            throw TrainingError.incompatibleWeights(
                source: checkpoint.url.path,
                reason: "it was written by a job with model \(state.model), batch_size \(state.batchSize), seed \(state.seed); "
                    + "this job has \(model.name), \(config.batchSize), \(config.seed)")
        }
        let expected = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0.shape) })
        let weights = NamedTensors(checkpoint.tensors.sorted.filter { expected[$0.name] != nil }.map { ($0.name, $0.tensor) })
        try weights.validateShapes(expected, file: checkpoint.tensorsPath)
        try optimizer.importState(checkpoint.tensors, for: model.parameters)
        for p in model.parameters { p.value = weights[p.name]! }
        return (state.step, state.position)
    }

    static func checkInput(model: Model, data: Dataset) throws {
        guard data.imageShape == model.inputShape else {
            throw ConfigError.invalid(path: "dataset.path",
                                      reason: "images are \(data.imageShape) but \(model.name) expects \(model.inputShape)")
        }
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
