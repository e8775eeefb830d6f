import CKernels
import Dispatch
import Foundation

/// The engine's own FP32 GEMM kernels (Sources/CKernels/sgemm.c), the default behind
/// `BLAS.sgemm`: packed, register-blocked micro-kernels for AVX-512 (14×32 tile), AVX2+FMA
/// (6×16) and portable C (4×8), chosen at first use from the CPU's features.
///
/// `EC_FP32_KERNEL=avx512|avx2|portable|openblas` overrides the choice (`openblas` sends
/// every GEMM to OpenBLAS, as before these kernels; a path this CPU cannot run falls back to
/// the best one it can, with a warning).
///
/// Results are deterministic: each element of C is one chain of multiply-adds over k in a
/// fixed order, computed by one thread, so 1 or N threads, any split of C and any tile shape
/// give the same bits (what keeps N thread replicas equal to N MPI ranks). AVX-512 and AVX2
/// compute the same fused chains and agree bit for bit; the portable path multiplies and
/// adds separately.
public enum FP32Kernels {
    public enum Path: String, CaseIterable, Sendable {
        case avx512, avx2, portable, openblas

        /// The C family (`EC_SGEMM_*`); nil for OpenBLAS.
        var kernel: Int32? {
            switch self {
            case .avx512: return Int32(EC_SGEMM_AVX512)
            case .avx2: return Int32(EC_SGEMM_AVX2)
            case .portable: return Int32(EC_SGEMM_PORTABLE)
            case .openblas: return nil
            }
        }

        /// Whether this CPU runs the path (OpenBLAS and portable: always).
        public var isSupported: Bool { kernel.map { ec_sgemm_supported($0) != 0 } ?? true }
    }

    /// The best of the engine's kernels this CPU runs.
    public static let best: Path = [Path.avx512, .avx2].first { $0.isSupported } ?? .portable

    /// The path `BLAS.sgemm` takes: `EC_FP32_KERNEL` if set (and runnable here), else `best`.
    /// Benchmarks switch it between rounds to compare paths in one process (set it only
    /// while no GEMM runs).
    public package(set) nonisolated(unsafe) static var active: Path = {
        guard let name = ProcessInfo.processInfo.environment["EC_FP32_KERNEL"], !name.isEmpty else { return best }
        guard let requested = Path(rawValue: name.lowercased()) else {
            warn("EC_FP32_KERNEL=\(name) is not one of \(Path.allCases.map(\.rawValue).joined(separator: ", ")); using \(best.rawValue)")
            return best
        }
        guard requested.isSupported else {
            warn("EC_FP32_KERNEL=\(name): this CPU cannot run it; using \(best.rawValue)")
            return best
        }
        return requested
    }()

    /// The name of the active path ("avx512", "avx2", "portable" or "openblas"), for logs.
    public static var path: String { active.rawValue }

    /// How a multi-threaded GEMM reaches its threads: the kernels' own spinning workers
    /// (`pool`, the default: a hand-off costs ~1 µs when a core is free) or
    /// `DispatchQueue.concurrentPerform` (`dispatch`: a wake-up costs 10–20 µs). Benchmarks
    /// compare them; both split C the same way, so results are equal.
    package enum Threading: Sendable { case pool, dispatch }
    package nonisolated(unsafe) static var threading = Threading.pool

    /// Below this many multiply-adds (m·n·k) a GEMM runs on the calling thread: ~2 µs of work,
    /// about what handing half of it to another thread costs.
    package static let parallelThreshold = 1 << 18

    /// C = alpha·op(A)·op(B) + beta·C on one of the engine's kernel paths (not `.openblas`),
    /// row-major with leading dimensions, on up to `threads` threads. m, n, k ≥ 1.
    package static func multiply(path: Path, threads: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                 alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let kernel = path.kernel else { preconditionFailure("FP32Kernels.multiply: \(path) is not an engine kernel") }
        precondition(path.isSupported, "FP32Kernels.multiply: this CPU cannot run \(path)")
        let ta: Int32 = transA ? 1 : 0, tb: Int32 = transB ? 1 : 0
        let threads = m * n * k < parallelThreshold ? 1 : max(1, threads)
        if threads == 1 {
            ec_sgemm(kernel, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0, m, 0, n)
            return
        }
        switch threading {
        case .pool:
            ec_sgemm_parallel(kernel, Int32(threads), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        case .dispatch:
            var ranges = [Int](repeating: 0, count: 4 * threads)
            let parts = Int(ranges.withUnsafeMutableBufferPointer {
                ec_sgemm_partition(kernel, ta, tb, m, n, k, Int32(threads), $0.baseAddress!)
            })
            ranges.withUnsafeBufferPointer { r in
                DispatchQueue.concurrentPerform(iterations: parts) { t in
                    ec_sgemm(kernel, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                             r[4 * t], r[4 * t + 1], r[4 * t + 2], r[4 * t + 3])
                }
            }
        }
    }

    /// The scalar loop that the kernels of `path` equal bit for bit (tests' reference):
    /// per element, one chain over k of fused multiply-adds (AVX2, AVX-512) or
    /// multiply-then-add (portable), in the kernels' k blocks.
    package static func reference(path: Path, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let kernel = path.kernel else { preconditionFailure("FP32Kernels.reference: \(path) is not an engine kernel") }
        ec_sgemm_reference(kernel, transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// Peak FP32 throughput of one core on `path` (FLOP/s), from a tight loop of independent
    /// FMAs on its widest vectors for about `seconds`; 0 for the portable path and OpenBLAS.
    public static func measurePeak(path: Path, seconds: Double = 0.3) -> Double {
        guard let kernel = path.kernel, path.isSupported else { return 0 }
        return ec_sgemm_measure_peak(kernel, seconds)
    }

    private static func warn(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }
}
