import ECTensor

/// How the engine turns sparse kernels into speed: in an inference pass (no tape, no layer
/// transform) a Conv2D / Dense whose kernel has at least `minimumZeroBlockFraction` of its
/// `[1, 16]` blocks (1 input × 16 consecutive outputs) entirely zero runs the block-sparse
/// kernel (`BlockSparseMatrix`) instead of sgemm. Everything else — training, fake-quantized
/// passes, dense or unstructured-sparse kernels — runs as before.
///
/// The block-sparse form is built on first use and cached on the parameter with a copy of the
/// kernel it was built from; it is rebuilt when the parameter's value has changed since (any
/// write to the value detaches it from that copy, so the check is one pointer comparison).
///
/// The threshold comes from `ecbench --mode sparse` (docs/sparsity.md): at 50% zero blocks the
/// block-sparse kernel is already 1.6–2× faster than sgemm on every fmnist-cnn shape (batch 1
/// and 64) except a tiny one (fc2 at batch 1, 0.5 µs); lower fractions were not measured.
public enum SparseInference {
    /// The block shape of the inference form: one input row × 16 outputs (one AVX-512 register).
    public static let blockShape = (rows: 1, columns: 16)
    /// Zero-block fraction from which a kernel runs block-sparse.
    public nonisolated(unsafe) static var minimumZeroBlockFraction = 0.5
    /// Off: every kernel runs dense (benchmarks compare both paths on one model).
    public nonisolated(unsafe) static var enabled = true

    /// Builds (or confirms) the cached inference form of every kernel of `model` — call it
    /// before passes run on several threads at once: building the cache writes the parameters.
    public static func prepare(_ model: Model) {
        let ctx = ForwardContext.inference()
        for p in model.parameters where p.role == .weight { _ = matrix(for: p, ctx: ctx) }
    }

    /// The block-sparse form of `weight` to use in this pass, or nil to run dense.
    static func matrix(for weight: Parameter, ctx: ForwardContext) -> BlockSparseMatrix? {
        guard enabled, ctx.tape == nil, ctx.transform == nil, weight.value.rank >= 2 else { return nil }
        if let cached = weight.sparseForm, cached.source.sharesStorage(with: weight.value), cached.source.shape == weight.value.shape {
            return cached.matrix
        }
        let value = weight.value
        let fraction = zeroBlockFraction(value)
        let matrix = fraction >= minimumZeroBlockFraction
            ? BlockSparseMatrix(dense: value, blockRows: blockShape.rows, blockColumns: blockShape.columns) : nil
        weight.sparseForm = (value, matrix)
        return matrix
    }

    /// The fraction of `[1, 16]` blocks of `kernel` (as `[rows, last axis]`) that are all zero.
    public static func zeroBlockFraction(_ kernel: Tensor) -> Double {
        let columns = kernel.shape.last ?? 0
        guard columns > 0, kernel.count > 0 else { return 0 }
        let rows = kernel.count / columns, width = blockShape.columns
        let perRow = (columns + width - 1) / width
        var zero = 0
        kernel.withUnsafeBufferPointer { w in
            for r in 0..<rows {
                for j in 0..<perRow {
                    let start = r * columns + j * width, end = min(r * columns + columns, start + width)
                    var allZero = true
                    for e in start..<end where w[e] != 0 { allZero = false; break }
                    if allZero { zero += 1 }
                }
            }
        }
        return Double(zero) / Double(rows * perRow)
    }
}
