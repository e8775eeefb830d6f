import ECTensor

/// Settings of an inference pass, carried by its `ForwardContext` (never process-wide: two
/// passes, or an export and the evaluation after it, cannot change each other's).
public struct InferenceOptions: Equatable, Sendable {
    /// Run kernels with enough zero blocks on the block-sparse kernel (`SparseInference`);
    /// false: every kernel runs dense (benchmarks and tests compare both paths on one model).
    public var blockSparse: Bool
    /// Zero-block fraction from which a kernel runs block-sparse.
    public var minimumZeroBlockFraction: Double

    public init(blockSparse: Bool = true, minimumZeroBlockFraction: Double = SparseInference.defaultMinimumZeroBlockFraction) {
        self.blockSparse = blockSparse
        self.minimumZeroBlockFraction = minimumZeroBlockFraction
    }

    /// Block-sparse kernels where they pay (the default).
    public static let standard = InferenceOptions()
    /// Every kernel dense.
    public static let dense = InferenceOptions(blockSparse: false)
}

/// How the engine turns sparse kernels into speed: in an inference pass (no tape, no layer
/// transform) with `InferenceOptions.blockSparse`, a Dense, or a Conv2D that is a GEMM rather
/// than a job for the own convolution kernels (`Conv2D.blockSparse`), whose kernel has at least
/// `minimumZeroBlockFraction` of its `[1, 16]` blocks (1 input × 16 consecutive outputs)
/// entirely zero runs the block-sparse kernel (`BlockSparseMatrix`) instead of sgemm.
/// Everything else — training, fake-quantized passes, dense or unstructured-sparse kernels —
/// runs as before.
///
/// The block-sparse form is built on first use and cached on the parameter with a copy of the
/// kernel it was built from and the threshold it was judged by; it is rebuilt when the
/// parameter's value has changed since (any write to the value detaches it from that copy, so
/// the check is one pointer comparison) or another threshold asks.
///
/// The threshold comes from `ecbench --mode sparse` (docs/sparsity.md): at 50% zero blocks the
/// block-sparse kernel is already 1.6–2× faster than sgemm on every fmnist-cnn shape (batch 1
/// and 64) except a tiny one (fc2 at batch 1, 0.5 µs); lower fractions were not measured.
public enum SparseInference {
    /// The block shape of the inference form: one input row × 16 outputs (one AVX-512 register).
    public static let blockShape = (rows: 1, columns: 16)
    /// The default zero-block fraction from which a kernel runs block-sparse.
    public static let defaultMinimumZeroBlockFraction = 0.5

    /// Builds (or confirms) the cached inference form of every kernel of `model` for passes
    /// with `options` — call it before passes run on several threads at once: building the
    /// cache writes the parameters.
    public static func prepare(_ model: Model, options: InferenceOptions = .standard) {
        let ctx = ForwardContext.inference(options)
        for p in model.parameters where p.role == .weight { _ = matrix(for: p, ctx: ctx) }
    }

    /// Whether `kernel` runs block-sparse under `options`.
    public static func runsBlockSparse(_ kernel: Tensor, options: InferenceOptions = .standard) -> Bool {
        options.blockSparse && kernel.rank >= 2 && zeroBlockFraction(kernel) >= options.minimumZeroBlockFraction
    }

    /// The block-sparse form of `weight` to use in this pass, or nil to run dense.
    static func matrix(for weight: Parameter, ctx: ForwardContext) -> BlockSparseMatrix? {
        let options = ctx.inferenceOptions
        guard options.blockSparse, ctx.tape == nil, ctx.transform == nil, weight.value.rank >= 2 else { return nil }
        if let cached = weight.sparseForm, cached.source.sharesStorage(with: weight.value),
           cached.source.shape == weight.value.shape, cached.threshold == options.minimumZeroBlockFraction {
            return cached.matrix
        }
        let value = weight.value
        let matrix = runsBlockSparse(value, options: options)
            ? BlockSparseMatrix(dense: value, blockRows: blockShape.rows, blockColumns: blockShape.columns) : nil
        weight.sparseForm = (value, options.minimumZeroBlockFraction, matrix)
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
