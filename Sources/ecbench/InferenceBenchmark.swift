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
        func infer(_ x: Tensor) { _ = model(Variable(x), .inference()) }
        for _ in 0..<5 { infer(big); infer(one) }
        var throughput: [Double] = [], latency: [Double] = []
        for _ in 0..<options.repeats {
            let n = 40
            throughput.append(Double(n * 256) / time { for _ in 0..<n { infer(big) } })
            let m = 2000
            latency.append(time { for _ in 0..<m { infer(one) } } / Double(m))
        }
        print("")
        print("== FP32 inference: fmnist-cnn, \(options.threads) thread(s), median of \(options.repeats)")
        print(String(format: "batch 256: %7.0f samples/s   (ONNX Runtime ~21,000; TFLite ~16,000–19,700; PEERS.md)", median(throughput)))
        print(String(format: "batch 1:   %7.1f µs        (ONNX Runtime ~65 µs; TFLite ~57–75 µs)", median(latency) * 1e6))
    }
}
