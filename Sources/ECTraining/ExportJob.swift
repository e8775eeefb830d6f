import Foundation
import ECCheckpoint
import ECCollective
import ECCompression
import ECNN
import ECTensor

/// `easycompress export --format int8`: turns a quantization-aware training run's save_dir into
/// real int8 weights with their scales (safetensors, `Int8Export`), and reports the integer
/// path's test accuracy beside the fake-quant model's.
public enum ExportJob {
    public struct Result {
        public let file: URL
        public let fakeQuantAccuracy: Double
        public let int8Accuracy: Double
    }

    /// - Parameters:
    ///   - config: the QAT job (its `compression.quantizer` gives the plan; its data the test set).
    ///   - from: the job's save_dir (its newest checkpoint holds weights and step sizes).
    ///   - output: the safetensors file to write.
    public static func run(_ config: JobConfig, from dir: String, output: String, log: Logger) throws -> Result {
        guard let qconfig = config.quantizer else {
            throw ConfigError.missingKey(path: "compression.quantizer")
        }
        let model = try config.makeModel()
        let graph = try quantizeGraph(model, mode: .export, modelDir: dir, config: qconfig)
        let url = URL(fileURLWithPath: output)
        try Int8Export.write(graph.int8!, to: url)
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        let int8 = try Int8Model.load(from: url, model: try config.makeModel())
        let result = Result(file: url, fakeQuantAccuracy: try Evaluator.evaluate(model, on: test).accuracy,
                            int8Accuracy: int8.accuracy(on: test))
        log.info(String(format: "wrote %@: int8 weights and scales; test accuracy int8 %.4f, fake-quant %.4f",
                        url.path, result.int8Accuracy, result.fakeQuantAccuracy))
        return result
    }
}
