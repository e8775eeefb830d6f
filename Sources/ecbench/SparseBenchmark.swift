import ECReport
import EasyCompression
import Foundation

/// The block-sparse kernel against dense sgemm (the active FP32 path: the engine's kernels, or
/// OpenBLAS) on fmnist-cnn's GEMM shapes (conv1 and conv2 through im2col, fc1, fc2) at
/// 50/60/80/90% zero [1, 16] blocks, batch 1 and 64 — the two timed alternately, medians,
/// ratio dense/sparse — then end-to-end inference of a block-sparse fmnist-cnn (the engine's
/// automatic path) against the same model run dense.
struct SparseBenchmark {
    let options: BenchOptions

    func run() throws {
        if let file = options.from, file.hasSuffix(".onnx") { return try imported(file) }
        try kernels()
        try endToEnd()
    }

    /// `--from FILE.onnx`: a block-sparse model as a user exports it (e.g. `launch/bench
    /// own-models`' sparse60 file), imported, run with the block-sparse kernel where a kernel
    /// has enough zero blocks against the same model run dense, alternated.
    func imported(_ file: String) throws {
        let model = try Model(onnx: URL(fileURLWithPath: file))
        let test = try Dataset.load(.test)
        let kernels = model.parameters.filter { $0.role == .weight && $0.shape.count >= 2 }
        let sparse = kernels.filter { SparseInference.runsBlockSparse($0.value) }
        print("")
        print("== imported block-sparse model \(file): \(sparse.count) of \(kernels.count) kernels run block-sparse ("
              + kernels.map { String(format: "%@ %.0f%%", $0.name, SparseInference.zeroBlockFraction($0.value) * 100) }
                .joined(separator: ", ") + " zero blocks), \(options.threads) thread(s)")
        let (b256, b1) = denseAgainstSparse(model, on: test, label: "")
        print(String(format: "RESULT sparse_imported_b256=%.2f sparse_imported_b1=%.2f", b256, b1))
    }

    /// `model` run dense and with the engine's automatic block-sparse path, alternated
    /// `--repeats` times; prints both (after `label`) and returns the speed-ups at batch 256
    /// and batch 1 (medians).
    func denseAgainstSparse(_ model: Model, on test: Dataset, label: String) -> (b256: Double, b1: Double) {
        var dense: [InferenceSpeed] = [], sparse: [InferenceSpeed] = []
        for _ in 0..<options.repeats {
            dense.append(InferenceSpeed.measure(model, on: test, options: .dense))
            sparse.append(InferenceSpeed.measure(model, on: test))
        }
        let d256 = median(dense.map(\.batch256SamplesPerSecond)), s256 = median(sparse.map(\.batch256SamplesPerSecond))
        let d1 = median(dense.map(\.batch1Microseconds)), s1 = median(sparse.map(\.batch1Microseconds))
        print(label + String(format: "batch 256 dense %.0f, block-sparse %.0f samples/s → %.2f×; batch 1 dense %.1f µs, "
                             + "block-sparse %.1f µs → %.2f×", d256, s256, s256 / d256, d1, s1, d1 / s1))
        return (s256 / d256, d1 / s1)
    }

    /// GEMM shapes `[m, k] · [k, n]` of one sample's forward pass (m per sample).
    static let layers: [(name: String, rowsPerSample: Int, k: Int, n: Int)] = [
        ("conv1", 28 * 28, 9, 32), ("conv2", 14 * 14, 288, 64), ("fc1", 1, 3136, 128), ("fc2", 1, 128, 10),
    ]

    /// A `[k, n]` matrix whose [1, 16] blocks are zero with probability `sparsity` (exactly
    /// that fraction, chosen at random).
    static func matrix(k: Int, n: Int, sparsity: Double, rng: inout RNG) -> Tensor {
        var w = Tensor.uniform(shape: [k, n], low: -1, high: 1, rng: &rng)
        let perRow = (n + 15) / 16, blocks = k * perRow
        var order = Array(0..<blocks)
        for i in stride(from: blocks - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let zero = Set(order.prefix(Int((sparsity * Double(blocks)).rounded())))
        w.withUnsafeMutableBufferPointer { p in
            for b in zero {
                let r = b / perRow, c0 = (b % perRow) * 16
                for c in c0..<min(n, c0 + 16) { p[r * n + c] = 0 }
            }
        }
        return w
    }

    func kernels() throws {
        var rng = RNG(seed: 9)
        print("")
        print("== block-sparse kernel vs dense sgemm (\(FP32Kernels.path)), [1, 16] blocks, \(options.threads) thread(s); "
              + "ratio = dense time / sparse time (medians of alternating runs)")
        var rows = [["layer", "m×k×n", "batch", "50%", "60%", "80%", "90%"]]
        var at80: [Int: [Double]] = [:]
        for layer in Self.layers {
            for batch in [1, 64] {
                let m = batch * layer.rowsPerSample
                let x = Tensor.uniform(shape: [m, layer.k], low: -1, high: 1, rng: &rng)
                var line = [layer.name, "\(m)×\(layer.k)×\(layer.n)", "\(batch)"]
                for sparsity in [0.5, 0.6, 0.8, 0.9] {
                    let w = Self.matrix(k: layer.k, n: layer.n, sparsity: sparsity, rng: &rng)
                    let bsr = BlockSparseMatrix(dense: w, blockRows: 1, blockColumns: 16)
                    let inner = max(1, 2_000_000 / max(1, m * layer.k * layer.n / 4))  // calls per timing ≈ a few ms
                    var dense: [Double] = [], sparse: [Double] = []
                    for _ in 0..<(5 * options.repeats) {
                        dense.append(time { for _ in 0..<inner { _ = x.matmul(w) } } / Double(inner))
                        sparse.append(time { for _ in 0..<inner { _ = bsr.multiply(x, bias: nil) } } / Double(inner))
                    }
                    let ratio = median(dense) / median(sparse)
                    line.append(String(format: "%.2f× (%.1f/%.1f µs)", ratio, median(dense) * 1e6, median(sparse) * 1e6))
                    if sparsity == 0.8 { at80[batch, default: []].append(ratio) }
                }
                rows.append(line)
            }
        }
        print(TextTable.render(rows))
        let fc1 = { (b: Int) in at80[b]![2] }
        print(String(format: "RESULT sparse_fc1_80_b1=%.2f sparse_fc1_80_b64=%.2f sparse_conv2_80_b64=%.2f",
                     fc1(1), fc1(64), at80[64]![1]))
    }

    /// fmnist-cnn with 80% of every kernel's [1, 16] blocks zeroed (90% for fc1 as well, 2 runs).
    func endToEnd() throws {
        let test = try Dataset.load(.test)
        var rng = RNG(seed: 4)
        print("")
        print("== end-to-end inference: block-sparse fmnist-cnn (engine's automatic path) vs the same model dense, "
              + "\(options.threads) thread(s)")
        for sparsity in [0.6, 0.8, 0.9] {
            let model = ModelZoo.make("fmnist-cnn", seed: 1)!
            for p in model.parameters where p.role == .weight && p.shape.count >= 2 {
                let n = p.shape.last!, k = p.value.count / n
                let mask = Self.matrix(k: k, n: n, sparsity: sparsity, rng: &rng)
                p.value.withUnsafeMutableBufferPointer { v in
                    mask.withUnsafeBufferPointer { m in for i in v.indices where m[i] == 0 { v[i] = 0 } }
                }
            }
            let (b256, b1) = denseAgainstSparse(model, on: test, label: String(format: "%.0f%% zero blocks: ", sparsity * 100))
            print(String(format: "RESULT sparse_model_%.0f_b256=%.2f sparse_model_%.0f_b1=%.2f",
                         sparsity * 100, b256, sparsity * 100, b1))
        }
    }
}
