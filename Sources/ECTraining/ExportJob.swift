import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECExport
import ECNN
import ECTensor

/// `easycompress export`: turns a save_dir into a file other programs (or the engine's integer
/// and block-sparse paths) run.
///
/// - `int8`: a quantization-aware training run as real int8 weights with their scales
///   (safetensors, `Int8Export`; Winograd layers as Winograd-domain codes); reports the integer
///   path's test accuracy beside the fake-quant model's.
/// - `onnx`: any run as ONNX (`ONNXExporter`): FP32, extracted from a pruning run or a
///   fine-tuned extracted model, or QDQ int8 for a QAT run (`ExportSource` decides which);
///   reports the engine's test accuracy of the exported model (fake-quant for QDQ), which an
///   ONNX runtime should reproduce.
/// - `bsr`: a sparsity run with its block-sparse kernels in BSR form (`BlockSparseExport`).
public enum ExportJob {
    /// The file formats `export` writes.
    public enum Format: String, CaseIterable {
        case int8, onnx, bsr
    }

    public struct Result {
        public let file: URL
        /// The fake-quant model's test accuracy.
        public let fakeQuantAccuracy: Double
        /// The integer path's test accuracy.
        public let int8Accuracy: Double
        /// For a model with 3×3 convolutions not trained Winograd-aware: its accuracy when they
        /// run on the int8 Winograd kernel anyway (post-training Winograd steps) — what
        /// `int8_winograd` training is measured against.
        public let postTrainingWinogradAccuracy: Double?
    }

    public struct ONNXResult {
        public let file: URL
        public let kind: ExportSource.Kind
        /// The engine's test accuracy of the exported model (with fake quantization for QDQ).
        public let engineAccuracy: Double
        /// Node count per ONNX operator type.
        public let operators: [String: Int]
    }

    /// `--format bsr`: the newest checkpoint of a sparsity run's save_dir, with its block-sparse
    /// kernels in BSR form (`BlockSparseExport`); the file is read back into a fresh model and
    /// its test accuracy (block-sparse inference) is reported beside the dense path's.
    public static func runBlockSparse(_ config: JobConfig, from dir: String, output: String, log: Logger) throws
        -> (file: URL, blockSparseAccuracy: Double, denseAccuracy: Double) {
        let latest = try SavedRun.requireLatestCheckpoint(in: dir, log: log)
        let data = try JobData.load(config.dataset, train: .labelsOnly)
        let model = try config.makeModel(for: data.signature)
        WeightLoader.assign(try WeightLoader.weights(for: model, from: latest.tensors, file: latest.tensorsPath), to: model)
        let url = URL(fileURLWithPath: output)
        let sparse = try BlockSparseExport.write(model: model, to: url)
        let loaded = try config.makeModel(for: data.signature)
        try BlockSparseExport.load(from: url, into: loaded)
        let test = data.test
        let sparseAccuracy = try Evaluator.evaluate(loaded, on: test).accuracy
        let denseAccuracy = try Evaluator.evaluate(model, on: test, options: .dense).accuracy
        let kernels = sparse.map { String(format: "%@ (%.0f%% zero blocks)", $0.kernel, $0.zeroBlockFraction * 100) }
        log.info("wrote \(url.path): block-sparse kernels: " + (kernels.isEmpty ? "none" : kernels.joined(separator: ", "))
                 + String(format: "; test accuracy block-sparse %.4f, dense %.4f", sparseAccuracy, denseAccuracy))
        return (url, sparseAccuracy, denseAccuracy)
    }

    /// `export --format int8`.
    ///
    /// - Parameters:
    ///   - config: the QAT job (its `compression.quantizer` gives the plan; its data the test set).
    ///   - from: the job's save_dir (its newest checkpoint holds weights and step sizes).
    ///   - output: the safetensors file to write.
    public static func runInt8(_ config: JobConfig, from dir: String, output: String, log: Logger) throws -> Result {
        let data = try JobData.load(config.dataset, train: .first(256))
        let source = try ExportSource.load(config, from: dir, requireQuantizer: true, data: data.signature, log: log)
        let model = source.model, quantizer = source.quantizer!
        let url = URL(fileURLWithPath: output)
        let exported = try Int8Model(model: model, quantizer: quantizer)
        try Int8Export.write(exported, to: url)
        let test = data.test
        let int8 = try Int8Model.load(from: url, model: try config.makeModel(for: data.signature))
        let calibration = data.train!.images
        let deployed = try exported.postTrainingWinograd(model: model, quantizer: quantizer, calibration: calibration)
        let winograd = deployed.winogradLayers.count > exported.winogradLayers.count ? deployed.accuracy(on: test) : nil
        let result = Result(file: url, fakeQuantAccuracy: try Evaluator.evaluate(model, on: test).accuracy,
                            int8Accuracy: int8.accuracy(on: test), postTrainingWinogradAccuracy: winograd)
        let kernel = int8.winogradLayers.isEmpty ? "" : " (\(int8.winogradLayers.count) layers on the int8 Winograd kernel)"
        log.info(String(format: "wrote %@: int8 weights and scales; test accuracy int8 %.4f, fake-quant %.4f",
                        url.path, result.int8Accuracy, result.fakeQuantAccuracy) + kernel)
        if let winograd {
            log.info(String(format: "the same model with its 3×3 convolutions on the int8 Winograd kernel "
                            + "(post-training Winograd steps): test accuracy %.4f", winograd))
        }
        return result
    }

    /// `export --format onnx`.
    ///
    /// - Parameters:
    ///   - config: the job that wrote `dir` (model, data; `compression.quantizer` for QDQ).
    ///   - from: the save_dir (its newest checkpoint).
    ///   - output: the `.onnx` file to write (atomically).
    public static func runONNX(_ config: JobConfig, from dir: String, output: String, log: Logger) throws -> ONNXResult {
        let data = try JobData.load(config.dataset, train: .labelsOnly)
        let source = try ExportSource.load(config, from: dir, data: data.signature, log: log)
        let onnx = try ONNXExporter.export(source.model, quantization: try source.quantizer.map { try ONNXQuantization($0) })
        let url = URL(fileURLWithPath: output)
        try AtomicFile.write(onnx.data, to: url)
        let test = data.test
        let result = ONNXResult(file: url, kind: source.kind, engineAccuracy: try Evaluator.evaluate(source.model, on: test).accuracy,
                                operators: onnx.operators)
        let ops = result.operators.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        log.info(String(format: "wrote %@: %@ %@ model, ONNX opset %d (%@); engine test accuracy %.4f",
                        url.path, source.kind.rawValue, source.model.name, ONNXExporter.opset, ops, result.engineAccuracy))
        return result
    }
}
