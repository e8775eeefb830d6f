import XCTest
@testable import ECNN
import ECTensor
import ECTestSupport

/// The block-sparse inference kernel on convolutions as ONNX import makes them — explicit,
/// asymmetric pads, a stride per axis, rectangular kernels — equals the dense pass, and is the
/// path taken where it pays: not with `.dense` options, not for a grouped convolution, and not
/// where the engine's own convolution kernels run the layer.
final class SparseConvInferenceTests: XCTestCase {
    /// A kernel with about 70% of its [1, 16] blocks zero.
    func blockSparseKernel(_ shape: [Int], rng: inout RNG) -> Tensor {
        var w = Tensor.normal(shape: shape, std: 0.3, rng: &rng)
        let columns = shape.last!
        w.withUnsafeMutableBufferPointer { p in
            for row in 0..<(p.count / columns) {
                for block in 0..<((columns + 15) / 16) where rng.nextUniform() < 0.7 {
                    for c in (block * 16)..<min(columns, block * 16 + 16) { p[row * columns + c] = 0 }
                }
            }
        }
        return w
    }

    /// Runs `body` with `path` as the FP32 path.
    func on(_ path: FP32Kernels.Path, _ body: () -> Void) {
        let saved = FP32Kernels.active
        FP32Kernels.active = path
        defer { FP32Kernels.active = saved }
        body()
    }

    func testImportedConvolutionsRunBlockSparseWhereItPaysAndEqualTheDensePass() {
        var rng = RNG(seed: 23)
        let cases: [(x: [Int], w: [Int], stride: Int, strideWidth: Int, pads: Padding2D)] = [
            ([2, 9, 9, 8], [3, 3, 8, 32], 1, 1, Padding2D(top: 1, bottom: 1, left: 1, right: 1)),   // PyTorch "same"
            ([2, 12, 10, 5], [3, 3, 5, 40], 2, 2, Padding2D(top: 1, bottom: 1, left: 1, right: 1)),  // not TF's "same" at stride 2
            ([1, 7, 11, 6], [2, 3, 6, 17], 1, 2, Padding2D(top: 0, bottom: 1, left: 2, right: 0)),   // rectangular, asymmetric
            ([3, 5, 5, 16], [1, 1, 16, 48], 2, 2, .zero),                                             // strided 1×1
            ([2, 4, 6, 24], [1, 1, 24, 32], 1, 1, .zero),                                             // 1×1: a GEMM
        ]
        // The own convolution kernels (AVX-512 / AVX2) beat the block-sparse kernel: where they run
        // a layer it stays dense; 1×1 convolutions (GEMMs) and, on the portable path, every
        // one-group convolution take the block-sparse kernel.
        for path in [FP32Kernels.Path.portable, .avx2, .avx512].filter(\.isSupported) {
            on(path) {
                for (i, c) in cases.enumerated() {
                    let conv = Conv2D(name: "conv\(i)", kernel: blockSparseKernel(c.w, rng: &rng),
                                      bias: Tensor.normal(shape: [c.w[3]], rng: &rng), stride: c.stride,
                                      strideWidth: c.strideWidth, pads: c.pads)
                    XCTAssertFalse(conv.isPlain)
                    let x = Variable(Tensor.normal(shape: c.x, rng: &rng))
                    let dense = conv.forward(x, .inference(.dense), activation: .relu).value
                    XCTAssertNil(conv.weight.sparseForm, "\(path), case \(i): a dense pass builds no sparse form")
                    let sparse = conv.forward(x, .inference(), activation: .relu).value
                    let expected = !FP32Conv.runs(conv.geometry(c.x))
                    if path == .portable || c.w[0] * c.w[1] * c.stride == 1 { XCTAssertTrue(expected, "\(path), case \(i)") }
                    XCTAssertEqual(conv.weight.sparseForm?.matrix != nil, expected,
                                   "\(path), case \(i): the block-sparse kernel \(expected ? "ran" : "did not run")")
                    assertClose(sparse, dense, absolute: 1e-5, relative: 1e-5)
                    if expected {  // the fused conv → pool declines, so the caller's two ops take the sparse kernel too
                        XCTAssertNil(conv.forwardPooled(x, .inference(), activation: .relu, poolReLU: true))
                    }
                }
                // A grouped convolution stays dense.
                let grouped = Conv2D(name: "grouped", kernel: blockSparseKernel([3, 3, 4, 32], rng: &rng), bias: nil, groups: 2)
                _ = grouped.forward(Variable(Tensor.normal(shape: [1, 6, 6, 8], rng: &rng)), .inference())
                XCTAssertNil(grouped.weight.sparseForm, "\(path)")
            }
        }
    }
}
