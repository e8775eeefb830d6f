import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECTensor

/// A trained model read back from a save_dir for export: what `easycompress export` writes.
///
/// The save_dir's newest checkpoint decides the kind:
/// - a quantization-aware training run (the job names `compression.quantizer`, the checkpoint
///   holds its step sizes): the model with its quantizer restored;
/// - a pruning run (the checkpoint holds `pruner/keep/…` flags): the physically smaller model
///   extracted from it (`GapFinetune`), whose outputs equal the masked model's;
/// - a fine-tuned extracted model (`easycompress finetune`'s save_dir: the zoo model with fewer
///   channels): the extracted architecture rebuilt from the checkpoint's shapes;
/// - else the FP32 model as trained.
public struct ExportSource {
    public enum Kind: String {
        case fp32 = "FP32"
        case extracted = "extracted (physically pruned)"
        case quantized = "LSQ-quantized"
    }

    public let model: Model
    public let kind: Kind
    /// The restored quantizer (prepared on `model`), for `.quantized`.
    public let quantizer: LSQQuantizer?
    /// The checkpoint the weights came from.
    public let checkpoint: URL

    /// Reads `dir` (a save_dir) as the job `config` describes it.
    ///
    /// - Parameter requireQuantizer: refuse anything but a QAT run (int8 export).
    /// - Throws: `ConfigError` when the job and the save_dir disagree (model name, quantizer
    ///   missing on either side); `TrainingError` / `CheckpointError` for a missing, corrupt or
    ///   unfitting checkpoint.
    /// - Parameter data: the job's data signature (the model is built for it); nil loads it
    ///   from the job's `dataset:`.
    /// - Parameter log: where newer checkpoints that failed verification are warned about.
    public static func load(_ config: JobConfig, from dir: String, requireQuantizer: Bool = false,
                            data: DataSignature? = nil, log: Logger? = nil) throws -> ExportSource {
        if requireQuantizer && config.quantizer == nil { throw ConfigError.missingKey(path: "compression.quantizer") }
        let latest = try SavedRun.requireLatestCheckpoint(in: dir, log: log)
        let state = try SavedRun.jobState(of: latest)
        guard state.model == config.model else {
            throw ConfigError.invalid(path: "model", reason: "\(dir) holds a \(state.model), the job names \(config.model)")
        }
        let signature = try data ?? JobData.load(config.dataset, train: .labelsOnly).signature
        let model = try config.makeModel(for: signature)
        let savedQuantizer = try SavedRun.compressorState("quantizer", in: latest)

        if let qconfig = config.quantizer {
            let quantizer = try restoreQuantized(model, from: latest, modelDir: dir, config: qconfig)  // quantizeGraph's eval mode
            return ExportSource(model: model, kind: .quantized, quantizer: quantizer, checkpoint: latest.url)
        }
        if savedQuantizer != nil {
            throw ConfigError.invalid(path: "compression.quantizer",
                                      reason: "\(dir) is a quantization-aware training run; give its job file (with compression.quantizer)")
        }
        if latest.tensors.names.contains(where: { $0.hasPrefix("pruner/keep/") }) {
            let ft = try GapFinetune(modelDir: dir, inputShape: signature.imageShape, classes: signature.classes)
            return ExportSource(model: ft.model, kind: .extracted, quantizer: nil, checkpoint: latest.url)
        }
        do {
            WeightLoader.assign(try WeightLoader.weights(for: model, from: latest.tensors, file: latest.tensorsPath), to: model)
            return ExportSource(model: model, kind: .fp32, quantizer: nil, checkpoint: latest.url)
        } catch {
            guard let small = GapFinetune.skeleton(of: model, fitting: latest.tensors) else { throw error }
            WeightLoader.assign(try WeightLoader.weights(for: small, from: latest.tensors, file: latest.tensorsPath), to: small)
            return ExportSource(model: small, kind: .extracted, quantizer: nil, checkpoint: latest.url)
        }
    }
}

extension GapFinetune {
    /// The extracted architecture of `dense` whose parameters have exactly the shapes of
    /// `tensors` (the checkpoint of a fine-tuned extracted model), or nil when no channel
    /// selection gives them. Only the kept counts matter for the shapes: the first channels of
    /// each narrower group are taken, and the weights are loaded afterwards.
    public static func skeleton(of dense: Model, fitting tensors: NamedTensors) -> Model? {
        let groups = ChannelGroups.build(model: dense)
        var keep: [String: [Bool]] = [:]
        for group in groups {
            guard let producer = group.producers.first, let kept = tensors[producer]?.shape.last,
                  (1...group.channels).contains(kept) else { return nil }
            if kept == group.channels { continue }
            guard group.prunable else { return nil }
            keep[group.id] = (0..<group.channels).map { $0 < kept }
        }
        guard !keep.isEmpty else { return nil }
        let small = ModelSurgery.shrink(model: dense, groups: groups, keep: keep)
        return small.parameters.allSatisfy({ tensors[$0.name]?.shape == $0.shape }) ? small : nil
    }
}
