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
        print(String(format: "FP32: %.2f ms/step   QAT W8A8: %.2f ms/step   → QAT/FP32 %.2f× (target ≤ 1.3×; TF QAT ~1.25×)",
                     median(a) * 1e3, median(b) * 1e3, median(b) / median(a)))
        print(String(format: "RESULT qat_over_fp32=%.3f", median(b) / median(a)))
    }
}
