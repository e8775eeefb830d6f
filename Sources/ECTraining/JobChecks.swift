import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECTensor

/// What `JobChecks.run` built while checking a job, handed to the training that follows.
struct CheckedJob {
    let train: Dataset
    let test: Dataset
    /// The model to train: built, `init_from` / `pretrained_model` loaded.
    let model: Model
    /// The quantizer's plan, for the chief to write once the checks have passed.
    let quantizationPlan: QuantizationPlan?
    /// The compressors training will run (fresh: they are prepared by their hooks).
    let compressors: [Compressor]
}

/// Everything `train` and `finetune` check before they write anything, in one place: a job
/// that fails any check leaves its save_dir exactly as it was (docs/training.md).
///
/// In order: the save_dir (chief: writable, no run there unless `--resume` / `--overwrite`);
/// the data; the model; the quantizer against the model; `init_from` and `pretrained_model`
/// loaded into it; data shape, batch size against the data and the ranks; the optimizer and its
/// schedule; each compressor prepared on a scratch copy of the model (scopes, groups, plan);
/// with `resume`, the checkpoint to continue from fully loaded and checked against the job
/// (model, batch size, seed, shapes, optimizer state, every compressor's saved state).
enum JobChecks {
    static func run(_ config: JobConfig, communicator: Communicator, log: Logger, resume: Bool, overwrite: Bool,
                    data loaded: JobData? = nil, makeModel: (() throws -> Model)?) throws -> CheckedJob {
        try checkSaveDir(config.saveDir, communicator: communicator, resume: resume, overwrite: overwrite)
        if config.initFrom != nil, config.quantizer?.pretrainedModel != nil {
            throw ConfigError.invalid(path: "compression.quantizer.pretrained_model",
                                      reason: "the job also has init_from: give the starting weights once")
        }
        let data = try loaded ?? JobData.load(config.dataset)
        guard let train = data.train else { preconditionFailure("a training job needs the training split: JobData.load(_:train: .all)") }
        let test = data.test
        let build = makeModel ?? { try config.makeModel(for: data.signature) }
        let model = try build()
        try data.signature.requireFits(model)
        log.info("data: \(data.summary)")
        if let q = config.quantizer {
            do { try q.validate(against: model) } catch {
                throw ConfigError.invalid(path: "compression.quantizer", reason: "\(error)")
            }
        }
        if let source = config.initFrom {
            try WeightLoader.load(into: model, from: source, log: log)
        }
        var plan: QuantizationPlan?
        if let q = config.quantizer {  // loads pretrained_model; the plan is written after the checks
            plan = try quantizeGraph(model, mode: .train, modelDir: config.saveDir, config: q, writePlan: false, log: log).plan
        }
        try checkBatch(config, trainingSamples: train.count, ranks: communicator.size)
        let schedule = try BatchSchedule(dataset: train, batchSize: config.batchSize, seed: config.seed)
        let totalSteps = config.steps ?? config.epochs * schedule.stepsPerEpoch
        let optimizer = try TrainJob.makeOptimizer(config.optimizer, totalSteps: totalSteps)

        let compressors = try config.makeCompressors(calibration: train.gather(0..<min(256, train.count)).images)
        // Trial copies on a scratch model: preparing the real ones is their hooks' job (and
        // the quantizer's changes the model it is prepared on).
        let scratch = try build()
        let trial = try config.makeCompressors(calibration: nil)
        for compressor in trial {  // the job's own faults first, then the checkpoint's
            do {
                try compressor.prepare(model: scratch, communicator: SingleProcessCommunicator())
            } catch {
                throw ConfigError.invalid(path: "compression.\(compressor.kind)", reason: "\(error)")
            }
        }
        if resume {
            let hook = CheckpointHook(every: 0, saveDir: URL(fileURLWithPath: config.saveDir), keepLast: config.keepCheckpoints,
                                      seed: config.seed, batchSize: config.batchSize, compressors: trial, log: .silent)
            let saved = try hook.restore(model: scratch, optimizer: optimizer, worldSize: communicator.size)?.compressors ?? [:]
            for compressor in trial {
                if let state = saved[compressor.kind] { try compressor.restore(tensors: state.tensors, state: state.state) }
            }
        }
        return CheckedJob(train: train, test: test, model: model, quantizationPlan: plan, compressors: compressors)
    }

    /// The save_dir checks (chief only: only the chief's node needs the save_dir): `--resume`
    /// and `--overwrite` are not both given; the directory can be written; it holds no run
    /// unless one of them says what to do with it.
    static func checkSaveDir(_ path: String, communicator: Communicator, resume: Bool, overwrite: Bool) throws {
        if resume && overwrite {
            throw ConfigError.invalid(path: "resume", reason: "--resume (or resume: true) continues the run in save_dir "
                                      + "and --overwrite replaces it; give one of them")
        }
        guard communicator.isChief else { return }
        let dir = SaveDirectory(path: path)
        try dir.checkWritable()
        if !resume && !overwrite, let run = dir.existingRun() { throw dir.runExistsError(run) }
    }

    /// A global batch larger than the training set (each step would be the whole set, and no
    /// epoch longer than one step), or smaller than the number of ranks (some rank would get
    /// no sample at any step), is an error.
    static func checkBatch(_ config: JobConfig, trainingSamples n: Int, ranks: Int) throws {
        if config.batchSize > n {
            let limited = config.dataset.limitTrain.map { _ in " (dataset.limit_train)" } ?? ""
            throw ConfigError.invalid(path: "batch_size", reason: "\(config.batchSize) is larger than the training set "
                                      + "of \(n) samples\(limited), so every step would see the whole set; "
                                      + "hint: use batch_size ≤ \(n)")
        }
        if config.batchSize < ranks {
            throw ConfigError.invalid(path: "batch_size", reason: "\(config.batchSize) samples per step cannot be shared by "
                                      + "\(ranks) ranks: some rank would train on nothing; hint: use batch_size ≥ \(ranks) "
                                      + "(it is the global batch, split across ranks), or fewer ranks")
        }
    }
}

extension Logger {
    /// A logger that prints nothing (checks that run the same code as training later, whose
    /// warnings training prints then).
    static let silent = Logger(rank: -1, worldSize: 1, quiet: true)
}
