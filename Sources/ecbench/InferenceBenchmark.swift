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
        let paths = options.fp32Paths
        var throughput: [FP32Kernels.Path: [Double]] = [:], single = throughput, latency = throughput
        for _ in 0..<options.repeats {  // alternating (with --ab, the FP32 GEMM paths too)
            for path in paths {
                FP32Kernels.active = path
                let n = 40
                throughput[path, default: []].append(Double(n * 256) / time { for _ in 0..<n { infer(big) } })
                single[path, default: []].append(Double(n * 256) / time { for _ in 0..<n { onePass(big) } })
                let m = 2000
                latency[path, default: []].append(time { for _ in 0..<m { infer(one) } } / Double(m))
            }
        }
        FP32Kernels.active = paths[0]
        print("")
        print("== FP32 inference: fmnist-cnn, \(options.threads) thread(s), median of \(options.repeats)"
              + (paths.count > 1 ? ", FP32 GEMM \(paths.map(\.rawValue).joined(separator: " and ")) alternated round by round" : ""))
        for path in paths {
            let tag = paths.count > 1 ? "[\(path.rawValue)] " : ""
            print(String(format: "%@batch 256: %7.0f samples/s (Model.predict, %d slices at once); one pass with %d BLAS threads: %.0f   (ONNX Runtime ~21,000; TFLite ~16,000–19,700 on the AMD kind; docs/benchmarks.md)",
                         tag, median(throughput[path]!), Parallel.workers, options.threads, median(single[path]!)))
            print(String(format: "%@batch 1:   %7.1f µs        (ONNX Runtime ~65 µs; TFLite ~57–75 µs)", tag, median(latency[path]!) * 1e6))
        }
        if paths.count > 1 {
            let (own, blas) = (paths[0], paths[1])
            let r256 = median(throughput[own]!) / median(throughput[blas]!), r1 = median(latency[blas]!) / median(latency[own]!)
            let rOne = median(single[own]!) / median(single[blas]!)
            print(String(format: "%@ / OpenBLAS speed: batch 256 %.2f× (predict), %.2f× (one pass); batch 1 %.2f×", own.rawValue, r256, rOne, r1))
            print(String(format: "RESULT ab_batch256_ratio=%.3f ab_one_pass_ratio=%.3f ab_batch1_ratio=%.3f", r256, rOne, r1))
        }
        print(String(format: "RESULT inference_batch256_samples_per_second=%.0f one_pass_batch256_samples_per_second=%.0f batch1_us=%.1f",
                     median(throughput[paths[0]]!), median(single[paths[0]]!), median(latency[paths[0]]!) * 1e6))
    }
}
