import Foundation
import ECCompression
import ECExport
import ECNN
import ECTensor

/// A training job as the CLI reads it from YAML/JSON (seed snake_case keys). Every value is
/// validated when parsed; unknown keys are errors naming the key.
public struct JobConfig {
    /// The model's name: a zoo entry, or an imported file's stem.
    public var model: String = "fmnist-cnn"
    /// `model: {onnx: FILE}`: the user's own model, imported from ONNX (nil: a zoo model).
    public var modelFile: String?
    public var dataset = DatasetConfig()
    /// Training length: `epochs` unless `steps` is given (steps win).
    public var epochs: Int = 3
    public var steps: Int?
    /// Global batch size (split across ranks).
    public var batchSize: Int = 64
    public var optimizer = OptimizerConfig()
    public var seed: UInt64 = 42
    /// Evaluate on the test set every N steps (0: only at the end of each epoch and of training).
    public var evalEvery: Int = 0
    /// Write a checkpoint every N steps (0: only at the end).
    public var checkpointEvery: Int = 0
    /// Checkpoints kept on disk.
    public var keepCheckpoints: Int = 3
    /// Log (and write a metrics line) every N steps.
    public var logEvery: Int = 50
    public var saveDir: String = "runs/job"
    /// Start from the weights of a checkpoint directory, save_dir or safetensors file (fresh optimizer).
    public var initFrom: String?
    /// Resume automatically: a relaunched job continues from save_dir's newest checkpoint when
    /// there is one (as `--resume`), for schedulers that restart failed jobs.
    public var resume: Bool = false
    /// OpenBLAS threads per rank (default: cores / ranks on this node).
    public var threads: Int?
    /// Forward/backward passes run at once per rank, each on a slice of the shard (default:
    /// one per thread; models with batch norm use 1).
    public var threadReplicas: Int?
    /// Batch norm with the global batch's statistics (all ranks and thread replicas).
    public var syncBatchNorm = false
    /// Cross-rank consistency check interval in steps (0 = off; `--debug` sets it).
    public var debugCheckEvery: Int = 0
    /// Gradient allreduce bucket size in bytes (default chosen by measurement: 1 MiB).
    public var bucketBytes: Int = DistributedOptimizer.defaultBucketBytes
    /// Sum gradient buckets over the ranks while backward runs (docs/distributed.md).
    public var overlapGradients: Bool = DistributedOptimizer.defaultOverlap
    /// Write `save_dir/report.html` at the end of the run (`report: false` turns it off).
    public var report: Bool = true
    /// `compression.pruner` (nil: no pruning).
    public var pruner: PrunerConfig?
    /// `compression.quantizer` (nil: no quantization-aware training).
    public var quantizer: QuantizerConfig?
    /// `compression.sparsifier` (nil: no sparsity).
    public var sparsifier: SparsifierConfig?
    /// The job file's values as read (saved as `save_dir/config.json`).
    public var raw: [String: Any] = [:]

    public init() {}

    /// `dataset:` — where the images and labels come from and how pixels are normalised
    /// (docs/training.md, "Data from arrays"). `JobData.load` reads it.
    public struct DatasetConfig {
        /// `format`: `idx` (the default), `npz` or `npy`.
        public var format: DatasetFormat = .idx
        /// `path` (`idx`): the directory of IDX files.
        public var path: String = "/usr/share/datasets/fashion-mnist"
        /// `train` / `test` (`npz`): archives holding arrays `x` (images) and `y` (labels).
        public var train: String?
        public var test: String?
        /// `train_x`, `train_y`, `test_x`, `test_y` (`npy`): one array per file.
        public var trainX: String?
        public var trainY: String?
        public var testX: String?
        public var testY: String?
        /// `layout` (`npz`, `npy`): where 4-dimensional images keep their channels; nil infers it.
        public var layout: ImageLayout?
        /// `classes`: the class count; nil takes the largest label + 1.
        public var classes: Int?
        /// `scale`, `mean`, `std`.
        public var normalization = PixelNormalization()
        public var limitTrain: Int?
        public var limitTest: Int?
        public init() {}

        /// The keys only one format reads.
        static let formatKeys: [(DatasetFormat, [String])] = [
            (.idx, ["path"]), (.npz, ["train", "test"]), (.npy, ["train_x", "train_y", "test_x", "test_y"]),
        ]
        /// The largest `classes` a job may have (and the largest label + 1).
        public static let maxClasses = 100_000
    }

    public struct OptimizerConfig {
        public var name: String = "sgd"
        public var lr: Double = 0.05
        public var momentum: Double = 0.9
        public var nesterov: Bool = false
        public var weightDecay: Double = 0
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var epsilon: Double = 1e-8
        public var schedule = ScheduleConfig()
        public init() {}
    }

    public struct ScheduleConfig {
        public var name: String = "constant"
        public var warmupSteps: Int = 0
        public var stepSize: Int = 1000
        public var gamma: Double = 0.1
        public var minLR: Double = 0
        public init() {}
    }
}

extension JobConfig {
    /// Reads a job from a config file.
    public static func load(file: String) throws -> JobConfig {
        try parse(ConfigNode.load(file: file))
    }

    /// Reads a job from a parsed config tree, validating every key.
    public static func parse(_ node: ConfigNode) throws -> JobConfig {
        var c = JobConfig()
        c.raw = node.plainValues
        if node.has("model"), (try? node.child("model")) != nil, let m = try node.child("model") {
            let path = try m.string("onnx")
            guard !path.isEmpty else {
                throw ConfigError.outOfRange(path: "model.onnx", value: "\"\"", allowed: "the path of an .onnx file")
            }
            try m.finish()
            c.modelFile = path
            c.model = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        } else {
            c.model = try node.string("model", default: c.model, allowed: ModelZoo.names)
        }
        if let d = try node.child("dataset") { c.dataset = try parseDataset(d) }
        c.epochs = try node.int("epochs", default: c.epochs, min: 1, max: maxTrainingLength)
        c.steps = try node.optionalInt("steps", min: 1, max: maxTrainingLength)
        c.batchSize = try node.int("batch_size", default: c.batchSize, min: 1)
        if let o = try node.child("optimizer") {
            c.optimizer.name = try o.string("name", default: "sgd", allowed: ["sgd", "adam", "adamw"])
            try refuseInapplicableKeys(of: o, for: c.optimizer.name)
            c.optimizer.lr = try o.double("lr", default: c.optimizer.lr, min: 0, exclusiveMin: true)
            c.optimizer.momentum = try o.double("momentum", default: c.optimizer.name == "sgd" ? 0.9 : 0, min: 0, max: 0.999999)
            c.optimizer.nesterov = try o.bool("nesterov", default: false)
            c.optimizer.weightDecay = try o.double("weight_decay", default: 0, min: 0)
            c.optimizer.beta1 = try o.double("beta1", default: 0.9, min: 0, max: 0.999999)
            c.optimizer.beta2 = try o.double("beta2", default: 0.999, min: 0, max: 0.999999)
            c.optimizer.epsilon = try o.double("epsilon", default: 1e-8, min: 0, exclusiveMin: true)
            if let s = try o.child("schedule") {
                c.optimizer.schedule.name = try s.string("name", default: "constant", allowed: ["constant", "step", "cosine"])
                try refuseInapplicableKeys(of: s, for: c.optimizer.schedule.name)
                c.optimizer.schedule.warmupSteps = try s.int("warmup_steps", default: 0, min: 0)
                c.optimizer.schedule.stepSize = try s.int("step_size", default: 1000, min: 1)
                c.optimizer.schedule.gamma = try s.double("gamma", default: 0.1, min: 0, exclusiveMin: true)
                c.optimizer.schedule.minLR = try s.double("min_lr", default: 0, min: 0)
                try s.finish()
            }
            try o.finish()
        }
        c.seed = UInt64(try node.int("seed", default: Int(c.seed), min: 0))
        c.evalEvery = try node.int("eval_every", default: 0, min: 0)
        c.checkpointEvery = try node.int("checkpoint_every", default: 0, min: 0)
        c.keepCheckpoints = try node.int("keep_checkpoints", default: 3, min: 1)
        c.logEvery = try node.int("log_every", default: 50, min: 1)
        c.saveDir = try node.string("save_dir", default: c.saveDir)
        c.initFrom = try node.optionalString("init_from")
        c.resume = try node.bool("resume", default: false)
        c.threads = try node.optionalInt("threads", min: 1, max: 256)
        c.threadReplicas = try node.optionalInt("thread_replicas", min: 1, max: 256)
        c.syncBatchNorm = try node.bool("sync_batch_norm", default: false)
        c.debugCheckEvery = try node.int("debug_check_every", default: 0, min: 0)
        c.bucketBytes = try node.int("bucket_bytes", default: c.bucketBytes, min: 1024)
        c.overlapGradients = try node.bool("overlap_gradients", default: c.overlapGradients)
        c.report = try node.bool("report", default: true)
        if let comp = try node.child("compression") {
            if let p = try comp.child("pruner") { c.pruner = try parsePruner(p) }
            if let q = try comp.child("quantizer") { c.quantizer = try parseQuantizer(q) }
            if let s = try comp.child("sparsifier") { c.sparsifier = try parseSparsifier(s) }
            try comp.finish()
        }
        try node.finish()
        return c
    }
}

extension JobConfig {
    /// `dataset:`: the keys of the chosen format (a key of another format is an error naming
    /// both), the layout, the class count and the normalisation, each checked.
    static func parseDataset(_ d: ConfigNode) throws -> DatasetConfig {
        var c = DatasetConfig()
        let formatGiven = d.has("format")
        c.format = DatasetFormat(rawValue: try d.string("format", default: "idx", allowed: DatasetFormat.allCases.map(\.rawValue)))!
        let ownKeys = DatasetConfig.formatKeys.first { $0.0 == c.format }!.1
        for (other, keys) in DatasetConfig.formatKeys where other != c.format {
            for key in keys where d.has(key) {
                throw ConfigError.invalid(path: d.keyPath(key), reason: "is a key of format \(other.rawValue), but the dataset is format "
                                          + "\(c.format.rawValue)\(formatGiven ? "" : " (the default)"), which reads "
                                          + ownKeys.joined(separator: ", ") + "; give format: \(other.rawValue) and its keys, "
                                          + "or remove \(key)")
            }
        }
        switch c.format {
        case .idx:
            c.path = try d.string("path", default: c.path)
            if d.has("layout") {
                throw ConfigError.invalid(path: d.keyPath("layout"), reason: "IDX images are N×H×W (one channel); "
                                          + "layout is for format npz or npy")
            }
        case .npz:
            c.train = try d.string("train")
            c.test = try d.string("test")
        case .npy:
            c.trainX = try d.string("train_x")
            c.trainY = try d.string("train_y")
            c.testX = try d.string("test_x")
            c.testY = try d.string("test_y")
        }
        if c.format != .idx, let layout = try d.optionalString("layout") {
            guard let parsed = ImageLayout(rawValue: layout) else {
                throw ConfigError.outOfRange(path: d.keyPath("layout"), value: "\"\(layout)\"",
                                             allowed: "one of \"nhwc\", \"nchw\" (leave it out to infer it from the shape)")
            }
            c.layout = parsed
        }
        c.classes = try d.optionalInt("classes", min: 1, max: DatasetConfig.maxClasses)
        c.normalization.scale = d.has("scale") ? try d.double("scale", min: 0, exclusiveMin: true) : nil
        c.normalization.mean = try d.numbers("mean") ?? []
        c.normalization.std = try d.numbers("std", min: 0, exclusiveMin: true) ?? []
        let (mean, std) = (c.normalization.mean, c.normalization.std)
        if mean.count > 1, std.count > 1, mean.count != std.count {
            throw ConfigError.invalid(path: d.keyPath("std"), reason: "\(std.count) values but mean has \(mean.count): "
                                      + "give one per channel (or one number for all)")
        }
        c.limitTrain = try d.optionalInt("limit_train", min: 1)
        c.limitTest = try d.optionalInt("limit_test", min: 1)
        try d.finish()
        return c
    }
}

extension JobConfig {
    /// The model the job names: imported from its ONNX file (with the file's weights), or the
    /// zoo model initialised from the job's seed.
    ///
    /// - Throws: `ONNXImportError` for a file that cannot be imported; `ConfigError` for an
    ///   unknown zoo name.
    public func makeModel() throws -> Model {
        if let modelFile { return try ONNXImporter.load(contentsOf: URL(fileURLWithPath: modelFile)) }
        guard let model = ModelZoo.make(model, seed: seed) else {
            throw ConfigError.outOfRange(path: "model", value: "\"\(model)\"",
                                         allowed: "one of " + ModelZoo.names.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        return model
    }
}

extension JobConfig {
    /// Whether the job names any compressor.
    public var hasCompressors: Bool { pruner != nil || quantizer != nil || sparsifier != nil }

    /// The compressors the job's `compression:` section names; `calibration` (a batch of
    /// training inputs) initialises the quantizer's activation step sizes.
    public func makeCompressors(calibration: Tensor?) throws -> [Compressor] {
        var compressors: [Compressor] = []
        if let pruner { compressors.append(try Pruner(config: pruner)) }
        if let quantizer {
            compressors.append(try LSQQuantizer(config: quantizer, calibration: calibration, learningRate: Float(optimizer.lr)))
        }
        if let sparsifier { compressors.append(try Sparsifier(config: sparsifier)) }
        return compressors
    }

    /// `compression.quantizer` with the seed's keys and defaults (`pretrain_model` accepted
    /// for `pretrained_model`), checked here with the config path.
    static func parseQuantizer(_ n: ConfigNode) throws -> QuantizerConfig {
        let d = QuantizerConfig()
        var q = QuantizerConfig()
        q.bits = try n.int("bits", default: d.bits, min: 1, max: 8)
        q.wbits = try n.int("wbits", default: d.wbits, min: 1, max: 8)
        q.signed = try n.bool("signed", default: d.signed)
        let pretrained = try n.optionalString("pretrained_model"), alias = try n.optionalString("pretrain_model")
        if pretrained != nil && alias != nil {
            throw ConfigError.invalid(path: n.keyPath("pretrain_model"), reason: "give pretrained_model or its alias pretrain_model, not both")
        }
        q.pretrainedModel = pretrained ?? alias
        q.stepInterval = try n.int("step_interval", default: d.stepInterval, min: 1)
        q.numTrials = try n.int("num_trials", default: d.numTrials, min: 1)
        q.includeScopes = try n.stringList("include_scopes", default: d.includeScopes)
        q.excludeScopes = try n.stringList("exclude_scopes", default: d.excludeScopes)
        q.fp32Layers = try n.stringList("fp32_layers", default: d.fp32Layers)
        q.postQuant = try n.bool("post_quant", default: d.postQuant)
        q.int8Winograd = try n.bool("int8_winograd", default: d.int8Winograd)
        q.perChannel = try n.bool("per_channel", default: d.perChannel)
        q.unsignedAfterReLU = try n.bool("unsigned_after_relu", default: d.unsignedAfterReLU)
        try n.finish()
        do {
            try q.validate()
        } catch {
            throw ConfigError.invalid(path: n.path, reason: "\(error)")
        }
        return q
    }

    /// `compression.sparsifier` with the seed's keys and defaults plus `pattern: "N:M"`; every
    /// value checked here (with the config path), the rest by `SparsifierConfig.validate()`.
    /// A pattern fixes the sparsity ((M − N)/M) and the blocks (single weights), so giving
    /// `target_sparse_ratio` or `sparse_block_shape` with it is an error rather than ignored.
    static func parseSparsifier(_ n: ConfigNode) throws -> SparsifierConfig {
        let d = SparsifierConfig()
        var s = SparsifierConfig()
        s.targetSparseRatio = try n.double("target_sparse_ratio", default: d.targetSparseRatio, min: 0, max: 1)
        if let shape = try n.intList("sparse_block_shape") {
            guard shape.count == 2 else {
                throw ConfigError.outOfRange(path: n.keyPath("sparse_block_shape"), value: "\(shape)",
                                             allowed: "two integers [rows, columns] (inputs, outputs per block)")
            }
            guard shape.allSatisfy({ $0 > 0 }) else {
                throw ConfigError.outOfRange(path: n.keyPath("sparse_block_shape"), value: "\(shape)",
                                             allowed: "> 0 in both dimensions")
            }
            s.sparseBlockShape = shape
        }
        s.stepInterval = try n.int("step_interval", default: d.stepInterval, min: 1)
        s.numTrials = try n.int("num_trials", default: d.numTrials, min: 1)
        s.includeScopes = try n.stringList("include_scopes", default: d.includeScopes)
        s.excludeScopes = try n.stringList("exclude_scopes", default: d.excludeScopes)
        s.sortRange = SparseSortRange(rawValue: try n.string("sort_range", default: d.sortRange.rawValue,
                                                             allowed: SparseSortRange.allowed.map(\.rawValue)))
        if let text = try n.optionalString("pattern") {
            guard let pattern = NMPattern(parsing: text) else {
                throw ConfigError.outOfRange(path: n.keyPath("pattern"), value: "\"\(text)\"", allowed: NMPattern.allowedText)
            }
            for key in ["target_sparse_ratio", "sparse_block_shape"] where n.has(key) {
                throw ConfigError.invalid(path: n.keyPath(key), reason: "not used with pattern \"\(text)\" (its sparsity is "
                                          + "(M − N)/M of single weights); hint: remove \(key) or the pattern")
            }
            s.pattern = pattern
        }
        try n.finish()
        do {
            try s.validate()
        } catch {
            throw ConfigError.invalid(path: n.path, reason: "\(error)")
        }
        return s
    }

    /// `compression.pruner` with the seed's keys and defaults; every value checked here (with
    /// the config path), the rest by `PrunerConfig.validate()` (with the seed key).
    static func parsePruner(_ n: ConfigNode) throws -> PrunerConfig {
        let d = PrunerConfig()
        var p = PrunerConfig()
        p.compressionRatio = try n.double("compression_ratio", default: d.compressionRatio, min: 0, max: 1)
        p.stepInterval = try n.int("step_interval", default: d.stepInterval, min: 1)
        p.numTrials = try n.int("num_trials", default: d.numTrials, min: 1)
        p.includeScopes = try n.stringList("include_scopes", default: d.includeScopes)
        p.excludeScopes = try n.stringList("exclude_scopes", default: d.excludeScopes)
        p.pruneSortRange = PruneSortRange(rawValue: try n.string("prune_sort_range", default: d.pruneSortRange.rawValue,
                                                                 allowed: ["global", "local"]))
        p.prunableOpTypes = try n.stringList("prunable_op_types", default: d.prunableOpTypes)
        p.emaAlpha = try n.double("ema_alpha", default: d.emaAlpha, min: 0, max: 1, exclusiveMin: true)
        p.channelMultiple = try n.int("channel_multiple", default: d.channelMultiple, min: 1,
                                      max: PrunerConfig.maxChannelMultiple)
        p.narrowChannelMultiple = try n.optionalInt("narrow_channel_multiple", min: 1,
                                                    max: PrunerConfig.maxChannelMultiple)
        p.sortCost = PruneSortCost(rawValue: try n.string("sort_cost", default: d.sortCost.rawValue,
                                                          allowed: PruneSortCost.allowed.map(\.rawValue)))
        try n.finish()
        do {
            try p.validate()
        } catch {
            throw ConfigError.invalid(path: n.path, reason: "\(error)")
        }
        return p
    }
}

extension JobConfig {
    /// The job file's values as pretty JSON with sorted keys: what the chief saves as
    /// `save_dir/config.json` (the report shows it). Values JSON cannot hold (a YAML `.nan`, a
    /// date) are written as their text.
    public func recordedJSON() throws -> Data {
        func plain(_ value: Any) -> Any {
            switch value {
            case let map as [String: Any]: return map.mapValues(plain)
            case let list as [Any]: return list.map(plain)
            case let d as Double: return d.isFinite ? d : "\(d)"
            case is String, is Int, is Bool, is NSNull: return value
            default: return "\(value)"
            }
        }
        return try JSONSerialization.data(withJSONObject: plain(raw), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
}
