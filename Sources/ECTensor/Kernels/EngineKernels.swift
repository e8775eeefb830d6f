import CKernels

/// Which implementation of each of the engine's own kernels runs on this CPU, for
/// `easycompress --version` and benchmark headers. A kernel with CPU-specific paths adds one
/// entry to `all` (name, the path in use, the other paths), and every report shows it.
public struct EngineKernel: Equatable, Sendable {
    /// What the kernel computes (`int8 GEMM`).
    public var name: String
    /// The implementation this process runs (`AVX-512 VNNI`).
    public var inUse: String
    /// The other implementations, and when they would run.
    public var alternatives: String

    public init(name: String, inUse: String, alternatives: String) {
        self.name = name
        self.inUse = inUse
        self.alternatives = alternatives
    }
}

public enum EngineKernels {
    /// Every kernel with a CPU-specific path, in report order.
    public static var all: [EngineKernel] {
        [
            EngineKernel(name: "FP32 GEMM (conv, dense)", inUse: fp32GEMM(FP32Kernels.active),
                         alternatives: FP32Kernels.Path.allCases.filter { $0 != FP32Kernels.active && $0.isSupported }
                             .map { "\(fp32GEMM($0)) (EC_FP32_KERNEL=\($0.rawValue))" }.joined(separator: ", ")),
            EngineKernel(name: "FP32 convolution",
                         inUse: FP32Conv.isAvailable ? "own \(FP32Kernels.path) kernels (implicit GEMM; fused bias, ReLU, 2×2 max pool)"
                             : "im2col + FP32 GEMM",
                         alternatives: FP32Conv.isAvailable ? "im2col + FP32 GEMM (EC_FP32_KERNEL=portable or openblas)"
                             : "own kernels on the AVX-512 and AVX2 paths"),
            EngineKernel(name: "int8 GEMM", inUse: Int8GEMM.vnni ? "AVX-512 VNNI" : "portable Swift SIMD",
                         alternatives: Int8GEMM.vnni ? "portable Swift SIMD (EC_INT8_KERNEL=simd)"
                             : "AVX-512 VNNI on CPUs with avx512_vnni"),
            EngineKernel(name: "block-sparse matmul", inUse: csparse_avx512_available() != 0 ? "AVX-512 (16-wide blocks)" : "portable C",
                         alternatives: csparse_avx512_available() != 0 ? "portable C for other block widths"
                             : "AVX-512 on CPUs with avx512f"),
        ]
    }
}

/// What the FP32 GEMM path `path` is, for reports.
private func fp32GEMM(_ path: FP32Kernels.Path) -> String {
    switch path {
    case .avx512: return "own AVX-512 (14×32 tiles)"
    case .avx2: return "own AVX2+FMA (6×16 tiles)"
    case .portable: return "own portable C (4×8 tiles)"
    case .openblas: return "OpenBLAS sgemm, \(BLAS.coreName) core"
    }
}

/// The lines `easycompress --version` prints about the machine and the kernels in use.
public enum SystemReport {
    public static var lines: [String] {
        var out = ["CPU: \(CPUInfo.current.summary)",
                   "BLAS: \(BLAS.configuration) — core in use: \(BLAS.coreName)"]
        if let note = BLASCoreSelection.note { out.append(note) }
        out.append("engine kernels:")
        for k in EngineKernels.all { out.append("  \(k.name): \(k.inUse) (else: \(k.alternatives))") }
        return out
    }
}
