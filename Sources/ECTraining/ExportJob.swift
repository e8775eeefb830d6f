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
        /// For a model with 3×3 convolutions not trained Winograd-aware: its accuracy when they
        /// run on the int8 Winograd kernel anyway (post-training Winograd steps) — what
        /// `int8_winograd` training is measured against.
        public let postTrainingWinogradAccuracy: Double?
    }

    /// `--format bsr`: the newest checkpoint of a sparsity run's save_dir, with its block-sparse
    /// kernels in BSR form (`BlockSparseExport`); the file is read back into a fresh model and
    /// its test accuracy (block-sparse inference) is reported beside the dense path's.
    public static func runBlockSparse(_ config: JobConfig, from dir: String, output: String, log: Logger) throws
        -> (file: URL, blockSparseAccuracy: Double, denseAccuracy: Double) {
        let latest = try SavedRun.requireLatestCheckpoint(in: dir)
        let model = try config.makeModel()
        WeightLoader.assign(try WeightLoader.weights(for: model, from: latest.tensors, file: latest.tensorsPath), to: model)
        let url = URL(fileURLWithPath: output)
        let sparse = try BlockSparseExport.write(model: model, to: url)
        let loaded = try config.makeModel()
        try BlockSparseExport.load(from: url, into: loaded)
        let test = try Dataset.load(.test, directory: config.dataset.path, limit: config.dataset.limitTest)
        let sparseAccuracy = try Evaluator.evaluate(loaded, on: test).accuracy
        SparseInference.enabled = false
        defer { SparseInference.enabled = true }
        let denseAccuracy = try Evaluator.evaluate(model, on: test).accuracy
        let kernels = sparse.map { String(format: "%@ (%.0f%% zero blocks)", $0.kernel, $0.zeroBlockFraction * 100) }
        log.info("wrote \(url.path): block-sparse kernels: " + (kernels.isEmpty ? "none" : kernels.joined(separator: ", "))
                 + String(format: "; test accuracy block-sparse %.4f, dense %.4f", sparseAccuracy, denseAccuracy))
        return (url, sparseAccuracy, denseAccuracy)
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
        var winograd: Double?
        if let quantizer = graph.quantizer {
            let calibration = try Dataset.load(.train, directory: config.dataset.path, limit: 256).images
            let deployed = try Int8Model.postTrainingWinograd(model: model, quantizer: quantizer, calibration: calibration)
            if deployed.winogradLayers.count > graph.int8!.winogradLayers.count { winograd = deployed.accuracy(on: test) }
        }
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
}
