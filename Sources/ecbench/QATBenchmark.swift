import EasyCompression
import Foundation

/// QAT (W8A8 LSQ fake quantization, step sizes learning) vs FP32 training step time on
/// fmnist-cnn at batch 64, alternating in the same run.
struct QATBenchmark {
    let options: BenchOptions

    func run() throws {
        let data = try Dataset.load(.train)
        func session(quantized: Bool) throws -> (MonitoredSession, BatchIterator) {
            let model = ModelZoo.make("fmnist-cnn", seed: 1)!
            var hooks: [SessionRunHook] = []
            if quantized {
                var c = QuantizerConfig()
                c.signed = false
                c.stepInterval = 50
                c.numTrials = 1_000_000
                hooks.append(CompressionHook(try LSQQuantizer(config: c, calibration: data.gather(0..<256).images,
                                                              learningRate: 0.01)))
            }
            let s = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.01, momentum: 0.9), hooks: hooks)
            s.threadReplicas = options.threads  // as the trainer does (the calibrated quantizer supports them)
            return (s, try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator())
        }
        var (fp32, fp32Batches) = try session(quantized: false)
        var (qat, qatBatches) = try session(quantized: true)
        func steps(_ s: MonitoredSession, _ it: inout BatchIterator, _ n: Int) throws -> Double {
            try time { for _ in 0..<n { let b = it.next(); try s.run(images: b.images, labels: b.labels, globalBatchSize: 64) } }
                / Double(n)
        }
        _ = try steps(fp32, &fp32Batches, 10); _ = try steps(qat, &qatBatches, 10)
        var a: [Double] = [], b: [Double] = []
        for _ in 0..<options.repeats {
            a.append(try steps(fp32, &fp32Batches, options.steps / 2))
            b.append(try steps(qat, &qatBatches, options.steps / 2))
        }
        print("")
        print("== QAT vs FP32 training step: fmnist-cnn, batch 64, \(options.threads) thread(s), alternating")
        print(String(format: "FP32: %.2f ms/step   QAT W8A8: %.2f ms/step   → QAT/FP32 %.2f× (goal ≤ 1.15×; TF QAT ~1.25×)",
                     median(a) * 1e3, median(b) * 1e3, median(b) / median(a)))
        print(String(format: "RESULT qat_over_fp32=%.3f", median(b) / median(a)))

        try runInference(model: qat.model, quantizer: (qat.hooks.first as! CompressionHook).compressor as! LSQQuantizer)
    }

    /// `--mode int8`: the integer path alone, on TensorFlow's golden fmnist-cnn quantized W8A8
    /// (calibrated, not trained), with the Winograd kernel too; `--from SAVE_DIR`: on a QAT
    /// run's model instead (e.g. `launch/bench own-models`' qat8 run of an imported model).
    func runInt8Only() throws {
        if let dir = options.from { return try saved(dir) }
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        try WeightLoader.load(into: model, from: goldenWeightsPath)
        var c = QuantizerConfig()
        c.signed = false
        let quantizer = try LSQQuantizer(config: c, calibration: try Dataset.load(.train, limit: 256).images, learningRate: 0.01)
        try quantizer.prepare(model: model, communicator: SingleProcessCommunicator())
        try runInference(model: model, quantizer: quantizer)
    }

    /// The integer path of the QAT run in `dir` (its recorded job, `config.json`) against the
    /// same job's model in FP32 with the weights it started from (an imported model's own).
    func saved(_ dir: String) throws {
        let config = try JobConfig.load(savedIn: dir)
        let data = try JobData.load(config.dataset, train: .labelsOnly)
        let source = try ExportSource.load(config, from: dir, requireQuantizer: true, data: data.signature)
        let int8 = try Int8Model(model: source.model, quantizer: source.quantizer!)
        let plain = try config.makeModel(for: data.signature)
        print("== int8 path of \(dir) (\(source.model.name), \(int8.winogradLayers.count) Winograd layers) vs the same model in FP32")
        compare(fp32: { plain.predict($0) }, int8: { int8($0) }, test: data.test, peers: nil)
    }

    /// The integer path of `model` as `quantizer` quantizes it vs the FP32 engine, same run.
    func runInference(model: Model, quantizer: LSQQuantizer) throws {
        let int8 = try Int8Model(model: model, quantizer: quantizer)
        let plain = ModelZoo.make("fmnist-cnn", seed: 1)!
        compare(fp32: { plain.predict($0) }, int8: { int8($0) }, test: try Dataset.load(.test),
                peers: "TFLite int8 on the AMD kind: ~59,000 samples/s, 22 µs; docs/benchmarks.md")
    }

    /// Batch-256 and batch-1 times of `fp32` and `int8`, alternated, medians of `repeats`;
    /// `peers` is printed beside them.
    func compare(fp32 plain: (Tensor) -> Tensor, int8: (Tensor) -> Tensor, test: Dataset, peers: String?) {
        let (big, _) = test.gather(0..<256), (one, _) = test.gather(0..<1)
        func rate(_ body: () -> Void, _ n: Int) -> Double { median((0..<3).map { _ in time { for _ in 0..<n { body() } } / Double(n) }) }
        var f256: [Double] = [], i256: [Double] = [], f1: [Double] = [], i1: [Double] = []
        for _ in 0..<options.repeats {  // alternating
            f256.append(rate({ _ = plain(big) }, 10)); i256.append(rate({ _ = int8(big) }, 10))
            f1.append(rate({ _ = plain(one) }, 300)); i1.append(rate({ _ = int8(one) }, 300))
        }
        let (a, b, c, d) = (median(f256), median(i256), median(f1), median(i1))
        print(String(format: "int8 inference: batch 256 %.0f samples/s vs FP32 %.0f (%.2f×); batch 1 %.1f µs vs FP32 %.1f µs",
                     256 / b, 256 / a, a / b, d * 1e6, c * 1e6) + (peers.map { "   (\($0))" } ?? ""))
        print(String(format: "RESULT int8_over_fp32_b256=%.3f int8_samples_per_second=%.0f int8_batch1_us=%.1f fp32_samples_per_second=%.0f",
                     a / b, 256 / b, d * 1e6, 256 / a))
    }
}
