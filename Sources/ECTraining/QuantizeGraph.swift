import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECTensor

/// What `quantizeGraph(_:mode:modelDir:config:)` did to the model.
public struct QuantizedGraph {
    public let mode: QuantizeMode
    /// Which layers are quantized at which widths, and which stay FP32 (and why).
    public let plan: QuantizationPlan
    /// `eval` / `export`: the quantizer installed on the model, holding the trained step sizes
    /// (frozen: nothing updates them outside a `CompressionHook`). Nil in `train` mode, where
    /// the caller makes the quantizer (`LSQQuantizer(modelDir:config:…)`) for its hook.
    public let quantizer: LSQQuantizer?
    /// `export`: the model with real integer weights and scales (int8 × int8 → int32 GEMMs).
    public let int8: Int8Model?
}

/// The seed's `quantize_graph(mode=, model_dir=, config=)` for a Swift model:
///
/// ```swift
/// let config = QuantizerConfig(bits: 8, wbits: 8, pretrainedModel: "fp32-run", stepInterval: 100, numTrials: 10)
/// try quantizeGraph(model, mode: .train, modelDir: "output", config: config)
/// let quantizer = try LSQQuantizer(modelDir: "output", config: config, calibration: images, learningRate: 0.01)
/// let session = try MonitoredSession(model: model, optimizer: sgd, communicator: world,
///                                    hooks: [CompressionHook(quantizer, saveDir: "output")])
/// ```
///
/// - `train`: loads `config.pretrainedModel` (a checkpoint folder, save_dir or `.safetensors`
///   file) into `model` when it is set, plans the quantization (every Conv2D/MatMul in scope;
///   `fp32_layers` and out-of-scope layers stay FP32) and writes the plan to
///   `modelDir/quantization_plan.json`. The `LSQQuantizer` made from `modelDir` inserts the
///   fake quantization and initialises the step sizes when the session starts.
/// - `eval`: `modelDir` is a quantization-aware training run's save_dir; its newest
///   checkpoint's weights and step sizes are loaded into `model`, and fake quantization with
///   those frozen step sizes is installed on it — evaluating the model measures exactly what
///   training quantized. When the run left its `quantization_plan.json`, `config` must give
///   the same plan (`QuantizerError.planMismatch` otherwise).
/// - `export`: as `eval`, and the result's `int8` is the model with real integer weights,
///   which `Int8Export.write(_:to:)` saves.
///
/// - Parameters:
///   - writePlan: `train` mode writes the plan file only when true (the chief of a multi-rank
///     job; the others plan identically without writing).
///   - log: where `eval`/`export` warn about newer checkpoints that failed verification.
/// - Throws: `CompressionConfigError` (a config that does not fit the model), `TrainingError`
///   (unreadable or incompatible pretrained weights, a `modelDir` without a checkpoint or
///   without quantizer state), `QuantizationPlanError` (the plan file cannot be written),
///   `Int8ModelError` (export of a model the integer path does not support).
@discardableResult
public func quantizeGraph(_ model: Model, mode: QuantizeMode, modelDir: String, config: QuantizerConfig,
                          writePlan: Bool = true, log: Logger? = nil) throws -> QuantizedGraph {
    try config.validate()
    switch mode {
    case .train:
        if let source = config.pretrainedModel { try WeightLoader.load(into: model, from: source, log: log) }
        let plan = try QuantizationPlan.build(model: model, config: config)
        if writePlan { try plan.write(to: URL(fileURLWithPath: modelDir)) }
        return QuantizedGraph(mode: mode, plan: plan, quantizer: nil, int8: nil)
    case .eval, .export:
        let latest = try SavedRun.requireLatestCheckpoint(in: modelDir, log: log)
        let quantizer = try restoreQuantized(model, from: latest, modelDir: modelDir, config: config)
        let int8 = mode == .export ? try Int8Model(model: model, quantizer: quantizer) : nil
        return QuantizedGraph(mode: mode, plan: quantizer.plan!, quantizer: quantizer, int8: int8)
    }
}

/// `eval` mode on a checkpoint already loaded from `modelDir`: its weights into `model`, and the
/// quantizer with its trained step sizes installed on it (checked against the run's plan).
func restoreQuantized(_ model: Model, from latest: Checkpoint, modelDir: String, config: QuantizerConfig) throws -> LSQQuantizer {
    WeightLoader.assign(try WeightLoader.weights(for: model, from: latest.tensors, file: latest.tensorsPath), to: model)
    guard let saved = try SavedRun.compressorState("quantizer", in: latest) else {
        throw TrainingError.incompatibleWeights(source: latest.url.path, reason: "it has no quantizer state: not a QAT run")
    }
    // The plan the run trained with, when it left one: the job file given now must give the
    // same (other widths or signedness would read the step sizes on the wrong grids).
    let dir = URL(fileURLWithPath: modelDir)
    let trained = FileManager.default.fileExists(atPath: dir.appendingPathComponent(QuantizationPlan.fileName).path)
        ? (try QuantizationPlan.read(from: dir), modelDir) : nil
    let quantizer = try LSQQuantizer(config: config, calibration: nil, learningRate: 0, expectedPlan: trained)
    try quantizer.prepare(model: model, communicator: SingleProcessCommunicator())
    try quantizer.restore(tensors: saved.tensors, state: saved.state)
    return quantizer
}

extension LSQQuantizer {
    /// The seed's `LSQQuantizer(model_dir=, config=)`: a quantizer that follows the plan
    /// `quantizeGraph(_:mode: .train, modelDir:config:)` wrote to `modelDir`.
    ///
    /// - Throws: `QuantizationPlanError` when `modelDir` holds no readable plan; at `prepare`,
    ///   `QuantizerError.planMismatch` when the plan was made for another model or config.
    public convenience init(modelDir: String, config: QuantizerConfig, calibration: Tensor?, learningRate: Float) throws {
        try self.init(config: config, calibration: calibration, learningRate: learningRate,
                      expectedPlan: (try QuantizationPlan.read(from: URL(fileURLWithPath: modelDir)), modelDir))
    }
}
