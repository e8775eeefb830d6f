import EasyCompression
import Foundation

/// FP32 inference of fmnist-cnn: throughput at batch 256 and latency at batch 1.
struct InferenceBenchmark {
    let options: BenchOptions

    func run() throws {
        let test = try Dataset.load(.test)
        let model = ModelZoo.make("fmnist-cnn", seed: 1)!
        let (big, _) = test.gather(0..<256)
        let (one, _) = test.gather(0..<1)
        func infer(_ x: Tensor) { _ = model.predict(x) }
        func onePass(_ x: Tensor) { _ = model(Variable(x), .inference()) }
        for _ in 0..<5 { infer(big); infer(one); onePass(big) }
        var throughput: [Double] = [], single: [Double] = [], latency: [Double] = []
        for _ in 0..<options.repeats {  // alternating
            let n = 40
            throughput.append(Double(n * 256) / time { for _ in 0..<n { infer(big) } })
            single.append(Double(n * 256) / time { for _ in 0..<n { onePass(big) } })
            let m = 2000
            latency.append(time { for _ in 0..<m { infer(one) } } / Double(m))
        }
        print("")
        print("== FP32 inference: fmnist-cnn, \(options.threads) thread(s), median of \(options.repeats)")
        print(String(format: "batch 256: %7.0f samples/s (Model.predict, %d slices at once); one pass with %d BLAS threads: %.0f   (ONNX Runtime ~21,000; TFLite ~16,000–19,700 on the AMD kind; docs/benchmarks.md)",
                     median(throughput), Parallel.workers, options.threads, median(single)))
        print(String(format: "batch 1:   %7.1f µs        (ONNX Runtime ~65 µs; TFLite ~57–75 µs)", median(latency) * 1e6))
        print(String(format: "RESULT inference_batch256_samples_per_second=%.0f one_pass_batch256_samples_per_second=%.0f batch1_us=%.1f",
                     median(throughput), median(single), median(latency) * 1e6))
    }
}
