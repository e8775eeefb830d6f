import Foundation
import ECCheckpoint
import ECCompression
import ECExport
import ECNN
import ECTensor

/// `easycompress export`: turns a save_dir into a file other programs run.
///
/// - `int8`: a quantization-aware training run as real int8 weights with their scales
///   (safetensors, `Int8Export`); reports the integer path's test accuracy beside the
///   fake-quant model's.
/// - `onnx`: any run as ONNX (`ONNXExporter`): FP32, extracted from a pruning run or a
///   fine-tuned extracted model, or QDQ int8 for a QAT run (`ExportSource` decides which);
///   reports the engine's test accuracy of the exported model (fake-quant for QDQ), which an
///   ONNX runtime should reproduce.
public enum ExportJob {
    /// The file formats `export` writes.
    public enum Format: String, CaseIterable {
        case int8, onnx
    }

    public struct Result {
        public let file: URL
        /// For int8: the fake-quant model's test accuracy.
        public let fakeQuantAccuracy: Double
        /// For int8: the integer path's test accuracy.
        public let int8Accuracy: Double
    }

    public struct ONNXResult {
        public let file: URL
        public let kind: ExportSource.Kind
        /// The engine's test accuracy of the exported model (with fake quantization for QDQ).
        public let engineAccuracy: Double
        /// Node count per ONNX operator type.
        public let operators: [String: Int]
    }

    /// `export --format int8`.
    ///
    /// - Parameters:
    ///   - config: the QAT job (its `compression.quantizer` gives the plan; its data the test set).
    ///   - from: the job's save_dir (its newest checkpoint holds weights and step sizes).
    ///   - output: the safetensors file to write.
    public static func run(_ config: JobConfig, from dir: String, output: String, log: Logger) throws -> Result {
        let source = try ExportSource.load(config, from: dir, requireQuantizer: true)
        let url = URL(fileURLWithPath: output)
        try Int8Export.write(model: source.model, quantizer: source.quantizer!, to: url)
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        let int8 = try Int8Model.load(from: url, model: try config.makeModel())
        let result = Result(file: url, fakeQuantAccuracy: try Evaluator.evaluate(source.model, on: test).accuracy,
                            int8Accuracy: int8.accuracy(on: test))
        log.info(String(format: "wrote %@: int8 weights and scales; test accuracy int8 %.4f, fake-quant %.4f",
                        url.path, result.int8Accuracy, result.fakeQuantAccuracy))
        return result
    }

    /// `export --format onnx`.
    ///
    /// - Parameters:
    ///   - config: the job that wrote `dir` (model, data; `compression.quantizer` for QDQ).
    ///   - from: the save_dir (its newest checkpoint).
    ///   - output: the `.onnx` file to write (atomically).
    public static func runONNX(_ config: JobConfig, from dir: String, output: String, log: Logger) throws -> ONNXResult {
        let source = try ExportSource.load(config, from: dir)
        let onnx = try ONNXExporter.export(source.model, quantization: try source.quantizer.map { try ONNXQuantization($0) })
        let url = URL(fileURLWithPath: output)
        try AtomicFile.write(onnx.data, to: url)
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        let result = ONNXResult(file: url, kind: source.kind, engineAccuracy: try Evaluator.evaluate(source.model, on: test).accuracy,
                                operators: onnx.operators)
        let ops = result.operators.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        log.info(String(format: "wrote %@: %@ %@ model, ONNX opset %d (%@); engine test accuracy %.4f",
                        url.path, source.kind.rawValue, source.model.name, ONNXExporter.opset, ops, result.engineAccuracy))
        return result
    }
}
