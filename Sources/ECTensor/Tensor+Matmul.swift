import CBLAS

/// The engine's one door to GEMM: every matrix product in the project goes through
/// `BLAS.sgemm`. It runs the engine's own kernels (`FP32Kernels`, on `Parallel.workers`
/// threads) unless `EC_FP32_KERNEL=openblas` sends it to OpenBLAS, the reference.
public enum BLAS {
    /// The shape of one GEMM call, as recorded for benchmarks.
    public struct GEMMShape: Hashable, Sendable {
        public let transA: Bool, transB: Bool, m: Int, n: Int, k: Int
        public var flops: Int { 2 * m * n * k }

        public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) {
            self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k
        }
    }

    /// When set, every `sgemm` call reports its shape here (benchmarks replay the exact GEMMs
    /// of a training step to measure the engine's overhead over pure GEMM time).
    public nonisolated(unsafe) static var recorder: ((GEMMShape) -> Void)?

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, with leading dimensions equal to
    /// the row lengths of the stored (untransposed) matrices.
    ///
    /// - Parameters: `transA`/`transB` say whether A is stored `[k, m]` / B stored `[n, k]`.
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>) {
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c,
              lda: transA ? m : k, ldb: transB ? k : n, ldc: n)
    }

    /// `sgemm` on matrices stored with the row strides `lda`/`ldb`/`ldc` (≥ their row
    /// lengths): column blocks of wider matrices, such as one group of a grouped convolution.
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, lda: Int, ldb: Int, ldc: Int) {
        guard m > 0, n > 0 else { return }
        recorder?(GEMMShape(transA: transA, transB: transB, m: m, n: n, k: k))
        sgemm(path: FP32Kernels.active, threads: Parallel.workers, transA: transA, transB: transB, m: m, n: n, k: k,
              alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// `sgemm` on a chosen path and thread count, with explicit leading dimensions (tests and
    /// benchmarks compare paths in one process). OpenBLAS uses its own thread setting.
    package static func sgemm(path: FP32Kernels.Path, threads: Int, transA: Bool, transB: Bool, m: Int, n: Int,
                              k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                              ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // op(A)·op(B) is zero: C = beta·C (BLAS may skip the scaling when k == 0).
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        if path == .openblas {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                        beta, c, blasint(ldc))
        } else {
            FP32Kernels.multiply(path: path, threads: threads, transA: transA, transB: transB, m: m, n: n, k: k,
                                 alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Sets OpenBLAS's thread count (call before heavy work; ranks × threads ≤ cores).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// The thread count OpenBLAS will use.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel set ("core") OpenBLAS chose when it loaded (`Haswell`, `SkylakeX`, `Zen`,
    /// or a generic one such as `Prescott`); `BLASCoreSelection` corrects a generic choice.
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The library's build description (`OpenBLAS 0.3.21 DYNAMIC_ARCH … MAX_THREADS=64`).
    public static var configuration: String {
        (openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS").split(separator: " ").joined(separator: " ")
    }
}

extension Tensor {
    /// Matrix product of rank-2 tensors `[m, k] · [k, n] → [m, n]`.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0]
        let k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0]
        let n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul inner dimensions differ: \(shape) · \(other.shape)")
        var out = Tensor(uninitializedShape: [m, n])
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
                               a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                }
            }
        }
        return out
    }
}

extension Variable {
    /// Fully connected layer `y = x · W + b` with `x: [batch, in]`, `W: [in, out]`, `b: [out]`.
    ///
    /// Backward: `dx = dy · Wᵀ`, `dW = xᵀ · dy`, `db = Σ_batch dy`. The bias is written into
    /// the output before the GEMM accumulates onto it, so no separate bias pass is made.
    ///
    /// `activation` is applied in place on the output (fused epilogue).
    public func linear(weight: Variable, bias: Variable?, activation: Activation = .identity) -> Variable {
        let x = value, w = weight.value
        precondition(x.rank == 2 && w.rank == 2 && x.shape[1] == w.shape[0],
                     "linear: input \(x.shape) does not fit weight \(w.shape)")
        let batch = x.shape[0], nIn = w.shape[0], nOut = w.shape[1]
        var y = Tensor(uninitializedShape: [batch, nOut])
        y.withUnsafeMutableBufferPointer { yp in
            let hasBias = bias != nil
            if let b = bias?.value {
                precondition(b.shape == [nOut], "linear: bias \(b.shape) does not fit \(nOut) outputs")
                b.withUnsafeBufferPointer { bp in
                    for r in 0..<batch { (yp.baseAddress! + r * nOut).update(from: bp.baseAddress!, count: nOut) }
                }
            }
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    BLAS.sgemm(m: batch, n: nOut, k: nIn, a: xp.baseAddress!, b: wp.baseAddress!,
                               beta: hasBias ? 1 : 0, c: yp.baseAddress!)
                }
            }
        }
        activation.apply(&y)
        let input = self
        let output = y
        return Variable.result(y, inputs: self, weight, bias) { upstream in
            let dy = activation.backward(upstream, output: output)
            if input.requiresGrad {
                var dx = Tensor(uninitializedShape: [batch, nIn])
                dy.withUnsafeBufferPointer { g in w.withUnsafeBufferPointer { wp in dx.withUnsafeMutableBufferPointer { d in
                    BLAS.sgemm(transB: true, m: batch, n: nIn, k: nOut, a: g.baseAddress!, b: wp.baseAddress!,
                               c: d.baseAddress!)
                } } }
                input.accumulate(dx)
            }
            if weight.requiresGrad {
                var dw = Tensor(uninitializedShape: [nIn, nOut])
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { g in dw.withUnsafeMutableBufferPointer { d in
                    BLAS.sgemm(transA: true, m: nIn, n: nOut, k: batch, a: xp.baseAddress!, b: g.baseAddress!,
                               c: d.baseAddress!)
                } } }
                weight.accumulate(dw)
            }
            if let bias, bias.requiresGrad {
                bias.accumulate(dy.columnSums())
            }
        }
    }
}

extension Tensor {
    /// Sums over all leading dimensions: `[..., n] → [n]` (the bias gradient of a layer).
    public func columnSums() -> Tensor {
        let n = shape.last ?? 1
        let rows = n == 0 ? 0 : count / n
        var out = Tensor(shape: [n], repeating: 0)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows {
                    let row = src.baseAddress! + r * n
                    for j in 0..<n { dst[j] += row[j] }
                }
            }
        }
        return out
    }
}
