import XCTest
@testable import ECTensor

/// Every primitive's backward against central finite differences.
final class GradientTests: XCTestCase {
    func testLinear() {
        var rng = RNG(seed: 1)
        let x = Tensor.normal(shape: [3, 5], rng: &rng)
        let w = Tensor.normal(shape: [5, 4], rng: &rng)
        let b = Tensor.normal(shape: [4], rng: &rng)
        assertGradientsMatch([x, w, b]) { v in v[0].linear(weight: v[1], bias: v[2]) }
        assertGradientsMatch([x, w]) { v in v[0].linear(weight: v[1], bias: nil) }
    }

    func testConv2DSameStride1() {
        var rng = RNG(seed: 2)
        let x = Tensor.normal(shape: [2, 5, 5, 3], rng: &rng)
        let w = Tensor.normal(shape: [3, 3, 3, 4], std: 0.5, rng: &rng)
        let b = Tensor.normal(shape: [4], rng: &rng)
        assertGradientsMatch([x, w, b]) { v in v[0].conv2d(weight: v[1], bias: v[2], stride: 1, padding: .same) }
    }

    func testConv2DValidAndStrided() {
        var rng = RNG(seed: 3)
        let x = Tensor.normal(shape: [2, 7, 6, 2], rng: &rng)
        let w = Tensor.normal(shape: [3, 3, 2, 3], std: 0.5, rng: &rng)
        assertGradientsMatch([x, w]) { v in v[0].conv2d(weight: v[1], bias: nil, stride: 2, padding: .same) }
        assertGradientsMatch([x, w]) { v in v[0].conv2d(weight: v[1], bias: nil, stride: 1, padding: .valid) }
        assertGradientsMatch([x, w]) { v in v[0].conv2d(weight: v[1], bias: nil, stride: 2, padding: .valid) }
    }

    func testConv2DPointwise() {
        var rng = RNG(seed: 4)
        let x = Tensor.normal(shape: [2, 3, 3, 4], rng: &rng)
        let w = Tensor.normal(shape: [1, 1, 4, 5], rng: &rng)
        let b = Tensor.normal(shape: [5], rng: &rng)
        assertGradientsMatch([x, w, b]) { v in v[0].conv2d(weight: v[1], bias: v[2]) }
        let w2 = Tensor.normal(shape: [1, 1, 4, 2], rng: &rng)
        assertGradientsMatch([x, w2]) { v in v[0].conv2d(weight: v[1], bias: nil, stride: 2) }
    }

    func testRelu() {
        assertGradientsMatch([spreadTensor([4, 6], seed: 5)]) { v in v[0].relu() }
    }

    func testAddAndMul() {
        var rng = RNG(seed: 6)
        let a = Tensor.normal(shape: [3, 4], rng: &rng), b = Tensor.normal(shape: [3, 4], rng: &rng)
        assertGradientsMatch([a, b]) { v in v[0] + v[1] }
        assertGradientsMatch([a, b]) { v in v[0] * v[1] }
        // A value used twice accumulates both contributions.
        assertGradientsMatch([a]) { v in v[0] * v[0] + v[0] }
    }

    func testMaxPool() {
        assertGradientsMatch([spreadTensor([2, 4, 6, 3], seed: 7)]) { v in v[0].maxPool2d(size: 2, stride: 2) }
        assertGradientsMatch([spreadTensor([1, 5, 5, 2], seed: 8)]) { v in v[0].maxPool2d(size: 3, stride: 1) }
    }

    func testGlobalAvgPool() {
        var rng = RNG(seed: 9)
        assertGradientsMatch([Tensor.normal(shape: [2, 3, 4, 5], rng: &rng)]) { v in v[0].globalAvgPool() }
    }

    func testReshapeAndFlatten() {
        var rng = RNG(seed: 10)
        let x = Tensor.normal(shape: [2, 3, 2, 2], rng: &rng)
        assertGradientsMatch([x]) { v in v[0].flattened() }
        assertGradientsMatch([x]) { v in v[0].reshaped([4, 6]) }
    }

    func testBatchNormTraining() {
        var rng = RNG(seed: 11)
        let x = Tensor.normal(shape: [4, 3, 3, 5], mean: 0.5, std: 2, rng: &rng)
        let gamma = Tensor.uniform(shape: [5], low: 0.5, high: 1.5, rng: &rng)
        let beta = Tensor.normal(shape: [5], rng: &rng)
        assertGradientsMatch([x, gamma, beta], atol: 3e-3, rtol: 3e-2) { v in
            var rm = Tensor(shape: [5]), rv = Tensor(shape: [5], repeating: 1)
            return v[0].batchNorm(gamma: v[1], beta: v[2], runningMean: &rm, runningVariance: &rv, training: true)
        }
    }

    /// Synchronised batch norm with one pass (a reducer that returns its input): exactly plain
    /// batch norm — outputs, running statistics and every gradient, bit for bit — and every
    /// pass calls the reducer twice forward and once backward, with C+1, C and 2C values.
    func testBatchNormWithAOnePassReducerIsPlainBatchNorm() {
        final class OnePass: BatchStatisticsReducer {
            var lengths: [Int] = []
            func sum(_ values: inout [Double]) { lengths.append(values.count) }
            var updatesRunningStatistics: Bool { true }
        }
        var rng = RNG(seed: 21)
        let x = Tensor.normal(shape: [6, 3, 3, 5], mean: 0.5, std: 2, rng: &rng)
        let gamma = Tensor.uniform(shape: [5], low: 0.5, high: 1.5, rng: &rng)
        let beta = Tensor.normal(shape: [5], rng: &rng)
        let weights = Tensor.normal(shape: x.shape, rng: &rng)
        func run(_ reducer: BatchStatisticsReducer?) -> [Tensor] {
            let tape = Tape()
            let v = [x, gamma, beta].map { tape.watch($0) }
            var rm = Tensor(shape: [5], repeating: 0.25), rv = Tensor(shape: [5], repeating: 2)
            let y = v[0].batchNorm(gamma: v[1], beta: v[2], runningMean: &rm, runningVariance: &rv, training: true,
                                   statistics: reducer)
            let out = y.value
            tape.backward(from: (y * Variable(weights)).sum())
            return [out, rm, rv] + v.map { $0.grad! }
        }
        let reducer = OnePass()
        let plain = run(nil), synchronised = run(reducer)
        for (a, b) in zip(plain, synchronised) { XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern)) }
        XCTAssertEqual(reducer.lengths, [6, 5, 10])
    }

    func testBatchNormInference() {
        var rng = RNG(seed: 12)
        let x = Tensor.normal(shape: [3, 2, 2, 4], rng: &rng)
        let gamma = Tensor.uniform(shape: [4], low: 0.5, high: 1.5, rng: &rng)
        let beta = Tensor.normal(shape: [4], rng: &rng)
        let mean = Tensor.normal(shape: [4], rng: &rng)
        let variance = Tensor.uniform(shape: [4], low: 0.5, high: 2, rng: &rng)
        assertGradientsMatch([x, gamma, beta]) { v in
            var rm = mean, rv = variance
            return v[0].batchNorm(gamma: v[1], beta: v[2], runningMean: &rm, runningVariance: &rv, training: false)
        }
    }

    func testSoftmaxCrossEntropy() {
        var rng = RNG(seed: 13)
        let logits = Tensor.normal(shape: [5, 7], std: 3, rng: &rng)
        let labels: [Int32] = [0, 6, 3, 3, 1]
        assertGradientsMatch([logits]) { v in v[0].softmaxCrossEntropy(labels: labels) }
        assertGradientsMatch([logits]) { v in v[0].softmaxCrossEntropy(labels: labels, normalizer: 16) }
    }
}

/// Fused epilogues: the activation's gradient is applied before the GEMMs.
final class FusedActivationGradientTests: XCTestCase {
    func testLinearWithFusedRelu() {
        var rng = RNG(seed: 31)
        let x = Tensor.normal(shape: [4, 6], rng: &rng)
        let w = Tensor.normal(shape: [6, 5], rng: &rng)
        let b = Tensor.normal(shape: [5], std: 0.1, rng: &rng)
        assertGradientsMatch([x, w, b], epsilon: 1e-3) { v in v[0].linear(weight: v[1], bias: v[2], activation: .relu) }
    }

    func testConvWithFusedRelu() {
        var rng = RNG(seed: 32)
        let x = Tensor.normal(shape: [2, 4, 4, 2], rng: &rng)
        let w = Tensor.normal(shape: [3, 3, 2, 3], std: 0.5, rng: &rng)
        let b = Tensor.normal(shape: [3], std: 0.1, rng: &rng)
        assertGradientsMatch([x, w, b], epsilon: 1e-3) { v in
            v[0].conv2d(weight: v[1], bias: v[2], activation: .relu)
        }
    }

    func testChainedLinearLayers() {
        var rng = RNG(seed: 33)
        let x = Tensor.normal(shape: [3, 6], rng: &rng)
        let w1 = Tensor.normal(shape: [6, 8], rng: &rng), w2 = Tensor.normal(shape: [8, 4], rng: &rng)
        assertGradientsMatch([x, w1, w2], epsilon: 1e-3) { v in
            v[0].linear(weight: v[1], bias: nil, activation: .relu).linear(weight: v[2], bias: nil)
                .softmaxCrossEntropy(labels: [0, 1, 3])
        }
    }
}

final class FusedPoolGradientTests: XCTestCase {
    func testMaxPoolWithFusedRelu() {
        assertGradientsMatch([spreadTensor([2, 4, 6, 3], seed: 41)]) { v in v[0].maxPool2d(size: 2, stride: 2, relu: true) }
        assertGradientsMatch([spreadTensor([1, 5, 5, 2], seed: 42)]) { v in v[0].maxPool2d(size: 3, stride: 1, relu: true) }
        // Odd sizes leave input rows/columns that no window covers: their gradient is zero.
        assertGradientsMatch([spreadTensor([2, 5, 7, 2], seed: 43)]) { v in v[0].maxPool2d(size: 2, stride: 2) }
    }

    func testFusedReluPoolEqualsReluThenPool() {
        let x = spreadTensor([2, 6, 6, 4], seed: 44)
        let tape = Tape()
        let a = tape.watch(x), b = tape.watch(x)
        let fused = a.maxPool2d(relu: true), separate = b.relu().maxPool2d()
        XCTAssertEqual(fused.value, separate.value)
        tape.backward(from: (fused + separate).sum())
        XCTAssertEqual(a.grad, b.grad)
    }
}
