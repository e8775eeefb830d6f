import EasyCompression
import Foundation

/// The engine's side of `launch/bench peers`, which alternates these rounds with TensorFlow/Keras
/// and ONNX Runtime (Tools/peers_bench.py) on the same model, data and threads:
///
/// - `--mode peer-train`: fmnist-cnn training as the trainer runs it (SGD lr 0.05 momentum 0.9,
///   batch 64 on Fashion-MNIST, `--threads` thread replicas), 50 warm-up steps, then `--steps`
///   timed; samples/s and the process's peak RSS.
/// - `--mode peer-inference`: fmnist-cnn with TensorFlow's golden FP32 weights, exported to
///   `--out`/fmnist-cnn-fp32.onnx (the file ONNX Runtime runs), then the engine's own FP32
///   inference of the same model on the first test images: batch 256 (`Model.predict`) and
///   batch 1, median of 5 rounds of ~0.6 s each.
struct PeerBenchmark {
    let options: BenchOptions

    func train() throws {
        let data = try Dataset.load(.train)
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        let session = try MonitoredSession(model: model, optimizer: try SGD(learningRate: 0.05, momentum: 0.9))
        session.threadReplicas = options.threads  // as the trainer runs a model without batch norm
        var batches = try BatchSchedule(dataset: data, batchSize: 64, seed: 1).makeIterator()
        func step() throws {
            let b = batches.next()
            try session.run(images: b.images, labels: b.labels, globalBatchSize: b.globalCount)
        }
        for _ in 0..<50 { try step() }
        let cpu0 = processCPUSeconds()
        let seconds = try time { for _ in 0..<options.steps { try step() } }
        let cpu = (processCPUSeconds() - cpu0) / Double(options.steps)
        let rate = Double(64 * options.steps) / seconds
        print(String(format: "engine: fmnist-cnn training, batch 64, %d thread replicas, %d steps after 50: %.2f ms/step, %.0f samples/s, "
                     + "CPU time %.2f ms/step (all threads), peak RSS %.0f MB",
                     options.threads, options.steps, seconds / Double(options.steps) * 1e3, rate, cpu * 1e3, peakRSSMegabytes()))
        print(String(format: "RESULT engine_train_samples_per_second=%.1f engine_cpu_ms_per_step=%.3f engine_peak_rss_mb=%.0f",
                     rate, cpu * 1e3, peakRSSMegabytes()))
    }

    func inference() throws {
        let out = URL(fileURLWithPath: options.out ?? ".build/peers")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        try WeightLoader.load(into: model, from: goldenWeightsPath)
        try ONNXExporter.export(model).data.write(to: out.appendingPathComponent("fmnist-cnn-fp32.onnx"))
        let test = try Dataset.load(.test)
        let speed = InferenceSpeed.measure(model, on: test, seconds: 3)
        print(String(format: "engine: fmnist-cnn FP32 inference, %d threads: batch 256 %.0f samples/s, batch 1 %.1f µs",
                     Parallel.workers, speed.batch256SamplesPerSecond, speed.batch1Microseconds))
        print(String(format: "RESULT engine_b256_samples_per_second=%.0f engine_b1_us=%.1f",
                     speed.batch256SamplesPerSecond, speed.batch1Microseconds))
    }
}
