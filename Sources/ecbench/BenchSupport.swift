import EasyCompression
import Foundation

struct BenchOptions {
    var threads = 2
    var steps = 300
    var repeats = 3
    var mode = "all"
    /// Where `--mode onnx` / `torchvision` write their files.
    var out: String?
    /// Where `--mode torchvision` reads the exported architectures.
    var dir: String?
    /// `--only NAME` (repeatable): the architectures `--mode torchvision` checks.
    var only: Set<String>?
    /// `--ab`: train and inference alternate the engine's FP32 kernels and OpenBLAS round by
    /// round in one process (ratios from interleaved rounds, not from separate runs).
    var ab = false
    /// The pruning run `--mode pruner` measures (default `runs/fmnist-cnn-pruned`, launch/demo's).
    var from: String?
    /// `--mode scale`: the model (fmnist-cnn, mlp-12m), samples per rank, gradients summed
    /// during backward (`--overlap 1`) or after it (`--overlap 0`).
    var model: String?
    var batch: Int?
    var overlap = true

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
            case "--dir": o.dir = it.next()
            case "--only": o.only = (o.only ?? []).union([it.next() ?? ""])
            case "--ab": o.ab = true
            case "--from": o.from = it.next()
            case "--model": o.model = it.next()
            case "--batch": o.batch = Int(it.next() ?? "")
            case "--overlap": o.overlap = it.next() != "0"
            default:
                FileHandle.standardError.write(Data("usage: ecbench [--mode train|inference|dp-train|collectives|bn|pruner|pruner-decision|qat|int8|sparse|onnx|imported|torchvision|gemm|products|peer-train|peer-inference|scale] [--threads N] [--steps N] [--repeats N] [--out DIR] [--dir DIR] [--only NAME] [--ab] [--from SAVE_DIR] [--model NAME] [--batch N] [--overlap 0|1]\n".utf8))
                exit(2)
            }
        }
        return o
    }
}

/// A benchmark that cannot run, and why.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
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

/// User + system CPU seconds of this process so far (all threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// TensorFlow's golden fmnist-cnn weights, kept in the repository (Tests/Fixtures/golden).
var goldenWeightsPath: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tests/Fixtures/golden/fmnist_cnn_tf_fp32.safetensors").path
}

extension BenchOptions {
    /// The FP32 GEMM paths a benchmark alternates: the active one, and OpenBLAS with `--ab`.
    var fp32Paths: [FP32Kernels.Path] {
        ab && FP32Kernels.active != .openblas ? [FP32Kernels.active, .openblas] : [FP32Kernels.active]
    }
}
