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
            EngineKernel(name: "FP32 GEMM (conv, dense)", inUse: "OpenBLAS sgemm, \(BLAS.coreName) core",
                         alternatives: "another OpenBLAS core with OPENBLAS_CORETYPE"),
            EngineKernel(name: "int8 GEMM", inUse: Int8GEMM.vnni ? "AVX-512 VNNI" : "portable Swift SIMD",
                         alternatives: Int8GEMM.vnni ? "portable Swift SIMD (EC_INT8_KERNEL=simd)"
                             : "AVX-512 VNNI on CPUs with avx512_vnni"),
            EngineKernel(name: "block-sparse matmul", inUse: csparse_avx512_available() != 0 ? "AVX-512 (16-wide blocks)" : "portable C",
                         alternatives: csparse_avx512_available() != 0 ? "portable C for other block widths"
                             : "AVX-512 on CPUs with avx512f"),
        ]
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
