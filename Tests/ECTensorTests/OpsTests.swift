import XCTest
@testable import ECTensor

/// Forward values of the primitives against hand-computed results.
final class OpsTests: XCTestCase {
    func testCopyOnWrite() {
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        var b = a
        XCTAssertTrue(a.sharesStorage(with: b))
        b[flat: 0] = 9
        XCTAssertEqual(a.scalars, [1, 2, 3, 4])
        XCTAssertEqual(b.scalars, [9, 2, 3, 4])
        let view = a.reshaped([4])
        XCTAssertTrue(view.sharesStorage(with: a))
    }

    func testMatmulAndLinear() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let w = Tensor(shape: [3, 2], scalars: [1, 0, 0, 1, 1, 1])
        XCTAssertEqual(x.matmul(w).scalars, [4, 5, 10, 11])
        XCTAssertEqual(x.matmul(x, transposeOther: true).scalars, [14, 32, 32, 77])
        let y = Variable(x).linear(weight: Variable(w), bias: Variable(Tensor(shape: [2], scalars: [10, 20])))
        XCTAssertEqual(y.value.scalars, [14, 25, 20, 31])
    }

    func testConvMatchesDirectLoop() {
        var rng = RNG(seed: 21)
        let x = Tensor.normal(shape: [2, 6, 5, 3], rng: &rng)
        let w = Tensor.normal(shape: [3, 3, 3, 4], rng: &rng)
        for (stride, padding) in [(1, Padding.same), (2, .same), (1, .valid), (2, .valid)] {
            let y = Variable(x).conv2d(weight: Variable(w), bias: nil, stride: stride, padding: padding).value
            let g = Conv2DGeometry(input: x.shape, kernel: w.shape, stride: stride, padding: padding)
            XCTAssertEqual(y.shape, [2, g.outHeight, g.outWidth, 4])
            for n in 0..<2 { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth { for co in 0..<4 {
                var s: Float = 0
                for ky in 0..<3 { for kx in 0..<3 { for ci in 0..<3 {
                    let iy = oy * stride - g.padTop + ky, ix = ox * stride - g.padLeft + kx
                    guard iy >= 0, iy < 6, ix >= 0, ix < 5 else { continue }
                    s += x[flat: ((n * 6 + iy) * 5 + ix) * 3 + ci] * w[flat: ((ky * 3 + kx) * 3 + ci) * 4 + co]
                } } }
                let got = y[flat: ((n * g.outHeight + oy) * g.outWidth + ox) * 4 + co]
                XCTAssertEqual(got, s, accuracy: 1e-4, "stride \(stride) \(padding) at \(n),\(oy),\(ox),\(co)")
            } } } }
        }
    }

    func testSamePaddingGeometryFollowsTensorFlow() {
        // TF: out = ceil(in / stride); pad_total = max((out−1)·s + k − in, 0); top = total / 2.
        let g = Conv2DGeometry(input: [1, 28, 28, 1], kernel: [3, 3, 1, 8], stride: 2, padding: .same)
        XCTAssertEqual([g.outHeight, g.outWidth, g.padTop, g.padLeft], [14, 14, 0, 0])
        let h = Conv2DGeometry(input: [1, 5, 5, 1], kernel: [3, 3, 1, 8], stride: 1, padding: .same)
        XCTAssertEqual([h.outHeight, h.padTop], [5, 1])
    }

    func testMaxPoolAndAvgPool() {
        let x = Tensor(shape: [1, 2, 4, 1], scalars: [1, 5, 2, 0, 3, 4, 8, -1])
        XCTAssertEqual(Variable(x).maxPool2d().value.scalars, [5, 8])
        XCTAssertEqual(Variable(x).globalAvgPool().value.scalars, [2.75])
    }

    func testSoftmaxCrossEntropyIsStable() {
        let logits = Tensor(shape: [2, 3], scalars: [1000, 0, -1000, 0, 0, 0])
        let loss = Variable(logits).softmaxCrossEntropy(labels: [0, 2]).value.scalarValue
        XCTAssertFalse(loss.isNaN)
        XCTAssertEqual(loss, Float(log(3.0) / 2), accuracy: 1e-5)
    }

    func testBatchNormUpdatesRunningStatistics() {
        let x = Tensor(shape: [4, 1], scalars: [1, 2, 3, 4])
        var rm = Tensor(shape: [1]), rv = Tensor(shape: [1], repeating: 1)
        let y = Variable(x).batchNorm(gamma: Variable(Tensor(shape: [1], repeating: 1)), beta: Variable(Tensor(shape: [1])),
                                      runningMean: &rm, runningVariance: &rv, training: true, momentum: 0.5, epsilon: 0)
        XCTAssertEqual(y.value.sum(), 0, accuracy: 1e-5)
        XCTAssertEqual(rm.scalars[0], 1.25, accuracy: 1e-6)            // 0.5·0 + 0.5·2.5
        XCTAssertEqual(rv.scalars[0], 0.5 + 0.5 * (5.0 / 3), accuracy: 1e-5) // unbiased variance 5/3
    }

    func testInferenceRecordsNothing() {
        let y = Variable(Tensor(shape: [2, 2], repeating: 1)).relu()
        XCTAssertNil(y.tape)
        XCTAssertFalse(y.requiresGrad)
    }

    func testRNGIsDeterministicAndRestorable() {
        var a = RNG(seed: 7), b = RNG(seed: 7)
        XCTAssertEqual((0..<5).map { _ in a.next() }, (0..<5).map { _ in b.next() })
        var c = RNG(state: a.state)!
        XCTAssertEqual(a.next(), c.next())
        XCTAssertNotEqual(RNG(seed: 1).state, RNG(seed: 2).state)
        XCTAssertNil(RNG(state: [0, 0, 0, 0]))
    }
}
