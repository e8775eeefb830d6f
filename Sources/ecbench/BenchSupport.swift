import EasyCompression
import Foundation

struct BenchOptions {
    var threads = 2
    var steps = 300
    var repeats = 3
    var mode = "all"
    /// Where `--mode onnx` writes its files.
    var out: String?
    /// `--ab`: train and inference alternate the engine's FP32 kernels and OpenBLAS round by
    /// round in one process (ratios from interleaved rounds, not from separate runs).
    var ab = false

    static func parse<S: Sequence>(_ args: S) -> BenchOptions where S.Element == String {
        var o = BenchOptions()
        var it = args.makeIterator()
        while let a = it.next() {
            switch a {
            case "--threads": o.threads = Int(it.next() ?? "") ?? o.threads
            case "--steps": o.steps = Int(it.next() ?? "") ?? o.steps
            case "--repeats": o.repeats = Int(it.next() ?? "") ?? o.repeats
            case "--mode": o.mode = it.next() ?? o.mode
            case "--out": o.out = it.next()
            case "--ab": o.ab = true
            default:
                FileHandle.standardError.write(Data("usage: ecbench [--mode train|inference|dp-train|collectives|pruner|qat|int8|sparse|onnx|gemm] [--threads N] [--steps N] [--repeats N] [--out DIR] [--ab]\n".utf8))
                exit(2)
            }
        }
        return o
    }
}

/// Seconds taken by `body`.
func time(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now()
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

/// Peak resident set size (getrusage ru_maxrss, KiB on Linux).
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// TensorFlow's golden fmnist-cnn weights: under `$EC_SHARED_DIR`, else `../shared` beside the
/// repository (as the tests' TestPaths).
var goldenWeightsPath: String {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let shared = ProcessInfo.processInfo.environment["EC_SHARED_DIR"].map { URL(fileURLWithPath: $0) }
        ?? repository.deletingLastPathComponent().appendingPathComponent("shared")
    return shared.appendingPathComponent("golden/fmnist_cnn_tf_fp32.safetensors").path
}

extension BenchOptions {
    /// The FP32 GEMM paths a benchmark alternates: the active one, and OpenBLAS with `--ab`.
    var fp32Paths: [FP32Kernels.Path] {
        ab && FP32Kernels.active != .openblas ? [FP32Kernels.active, .openblas] : [FP32Kernels.active]
    }
}
