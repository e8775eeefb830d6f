import XCTest
@testable import ECTensor

/// Winograd F(2×2, 3×3): the composed steps equal the direct convolution, and each step's
/// backward matches central finite differences.
final class WinogradTests: XCTestCase {
    func testWinogradConvolutionEqualsDirectConvolution() {
        var rng = RNG(seed: 21)
        for (h, w, cin, cout) in [(6, 6, 3, 4), (7, 5, 2, 3), (28, 28, 1, 8), (1, 1, 2, 2), (14, 14, 16, 8)] {
            let x = Tensor.normal(shape: [2, h, w, cin], rng: &rng)
            let k = Tensor.normal(shape: [3, 3, cin, cout], std: 0.5, rng: &rng)
            let b = Tensor.normal(shape: [cout], rng: &rng)
            let direct = Variable(x).conv2d(weight: Variable(k), bias: Variable(b), stride: 1, padding: .same).value
            let winograd = Variable(x).winogradConv2d(weight: Variable(k), bias: Variable(b)).value
            XCTAssertEqual(winograd.shape, direct.shape)
            XCTAssertLessThanOrEqual(winograd.maxAbsDifference(direct), 1e-4, "\(h)×\(w) cin \(cin) cout \(cout)")
        }
    }

    func testEachStepsGradientMatchesFiniteDifferences() {
        var rng = RNG(seed: 22)
        let x = Tensor.normal(shape: [2, 5, 4, 2], rng: &rng)
        let k = Tensor.normal(shape: [3, 3, 2, 3], std: 0.5, rng: &rng)
        let b = Tensor.normal(shape: [3], rng: &rng)
        assertGradientsMatch([x]) { v in v[0].winogradInputTiles() }
        assertGradientsMatch([k]) { v in v[0].winogradKernel() }
        let vt = Tensor.normal(shape: [16, 6, 2], rng: &rng), ut = Tensor.normal(shape: [16, 2, 3], rng: &rng)
        assertGradientsMatch([vt, ut]) { v in v[0].winogradProducts(v[1]) }
        let m = Tensor.normal(shape: [16, 2 * 3 * 2, 3], rng: &rng)
        assertGradientsMatch([m, b]) { v in v[0].winogradOutput(height: 5, width: 4, bias: v[1]) }
        assertGradientsMatch([x, k, b]) { v in v[0].winogradConv2d(weight: v[1], bias: v[2]) }
    }

    func testAppliesOnlyTo3x3Stride1Same() {
        XCTAssertTrue(Winograd.applies(kernel: [3, 3, 4, 8], stride: 1, padding: .same))
        XCTAssertFalse(Winograd.applies(kernel: [3, 3, 4, 8], stride: 2, padding: .same))
        XCTAssertFalse(Winograd.applies(kernel: [3, 3, 4, 8], stride: 1, padding: .valid))
        XCTAssertFalse(Winograd.applies(kernel: [5, 5, 4, 8], stride: 1, padding: .same))
    }
}
