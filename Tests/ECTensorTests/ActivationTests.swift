import Foundation
import ECTestSupport
import XCTest
@testable import ECTensor

/// The element-wise activations: forward against the ONNX definitions (computed in Double),
/// backward against finite differences away from their kinks, and the conventions at the kinks.
final class ActivationTests: XCTestCase {
    /// `op` on `x` against `reference` applied element by element.
    func assertForward(_ x: Tensor, _ op: (Variable) -> Variable, _ reference: (Double) -> Double,
                       file: StaticString = #filePath, line: UInt = #line) {
        let expected = Tensor(shape: x.shape, scalars: x.scalars.map { Float(reference(Double($0))) })
        assertClose(op(Variable(x)).value, expected, absolute: 1e-5, relative: 1e-5, file: file, line: line)
    }

    func testForwardMatchesDefinitions() {
        let x = randomTensor([3, 4, 5, 6], seed: 1, std: 4)
        assertForward(x, { $0.clip(min: 0, max: 6) }) { min(max($0, 0), 6) }
        assertForward(x, { $0.clip(min: -1.5, max: 2) }) { min(max($0, -1.5), 2) }
        assertForward(x, { $0.clip(max: 1) }) { min($0, 1) }
        assertForward(x, { $0.clip(min: -1) }) { max($0, -1) }
        assertForward(x, { $0.leakyRelu() }) { $0 < 0 ? 0.01 * $0 : $0 }
        assertForward(x, { $0.leakyRelu(alpha: 0.2) }) { $0 < 0 ? 0.2 * $0 : $0 }
        assertForward(x, { $0.sigmoid() }) { 1 / (1 + Foundation.exp(-$0)) }
        assertForward(x, { $0.hardSigmoid() }) { max(0, min(1, 0.2 * $0 + 0.5)) }
        assertForward(x, { $0.hardSigmoid(alpha: 1.0 / 6, beta: 0.5) }) { max(0, min(1, $0 / 6 + 0.5)) }
        assertForward(x, { $0.hardSwish() }) { $0 * max(0, min(1, $0 / 6 + 0.5)) }
        assertForward(x, { $0.tanh() }) { Foundation.tanh($0) }
        assertForward(x, { $0.neg() }) { -$0 }
        var rng = RNG(seed: 14)
        let positive = Tensor.uniform(shape: [4, 7], low: 0.1, high: 5, rng: &rng)
        assertForward(positive, { $0.sqrt() }) { $0.squareRoot() }
        assertForward(positive, { $0.reciprocal() }) { 1 / $0 }
        // Sigmoid saturates without overflow.
        let extreme = Variable(Tensor(shape: [2], scalars: [-200, 200])).sigmoid().value.scalars
        XCTAssertEqual(extreme, [0, 1])
    }

    func testGradientsMatchFiniteDifferences() {
        let shape = [2, 3, 4, 3]
        assertGradientsMatch([tensorAwayFromKinks(shape, seed: 2, low: -2, high: 8, kinks: [0, 6])]) { $0[0].clip(min: 0, max: 6) }
        assertGradientsMatch([tensorAwayFromKinks(shape, seed: 3, kinks: [-1.5, 2])]) { $0[0].clip(min: -1.5, max: 2) }
        assertGradientsMatch([tensorAwayFromKinks(shape, seed: 4, kinks: [0])]) { $0[0].leakyRelu(alpha: 0.1) }
        assertGradientsMatch([randomTensor(shape, seed: 5, std: 3)]) { $0[0].sigmoid() }
        assertGradientsMatch([tensorAwayFromKinks(shape, seed: 6, kinks: [-2.5, 2.5])]) { $0[0].hardSigmoid() }
        assertGradientsMatch([tensorAwayFromKinks(shape, seed: 7, kinks: [-3, 3])]) { $0[0].hardSigmoid(alpha: 1.0 / 6, beta: 0.5) }
        assertGradientsMatch([tensorAwayFromKinks(shape, seed: 8, kinks: [-3, 3])]) { $0[0].hardSwish() }
        assertGradientsMatch([randomTensor(shape, seed: 9)]) { $0[0].tanh() }
        assertGradientsMatch([randomTensor(shape, seed: 10)]) { $0[0].neg() }
        var rng = RNG(seed: 15)
        let positive = Tensor.uniform(shape: shape, low: 0.5, high: 3, rng: &rng)
        assertGradientsMatch([positive], epsilon: 1e-3) { $0[0].sqrt() }
        assertGradientsMatch([positive], epsilon: 1e-3) { $0[0].reciprocal() }
    }

    func testGradientConventionsAtTheKinks() {
        // Strictly inside the range passes (PyTorch's ReLU6/Hardtanh); at a bound nothing passes.
        func gradient(_ xs: [Float], _ op: (Variable) -> Variable) -> [Float] {
            let (_, g) = valueAndGradients([Tensor(shape: [xs.count], scalars: xs)]) { op($0[0]) }
            return g[0]!.scalars
        }
        let seed = randomTensor([5], seed: 5).scalars  // valueAndGradients' output seed
        XCTAssertEqual(gradient([-1, 0, 3, 6, 7]) { $0.clip(min: 0, max: 6) }, [0, 0, seed[2], 0, 0])
        XCTAssertEqual(gradient([-1, 0, 3, 6, 7]) { $0.leakyRelu(alpha: 0.5) },
                       [0.5 * seed[0], 0.5 * seed[1], seed[2], seed[3], seed[4]])
        XCTAssertEqual(gradient([-4, -3, 0, 3, 4]) { $0.hardSwish() }, [0, -0.5 * seed[1], 0.5 * seed[2], 1.5 * seed[3], seed[4]])
        // The fused ReLU6 epilogue matches the standalone clip, value and gradient.
        let x = tensorAwayFromKinks([4, 6], seed: 11, low: -3, high: 9, kinks: [])
        var fused = x
        Activation.relu6.apply(&fused)
        XCTAssertEqual(fused, Variable(x).clip(min: 0, max: 6).value)
        let dy = randomTensor([4, 6], seed: 12)
        let (_, g) = valueAndGradients([x], seed: 12) { $0[0].clip(min: 0, max: 6) }
        assertClose(Activation.relu6.backward(dy, output: fused), g[0]!)  // equal up to the sign of 0
    }

    func testInferenceRecordsNothingAndResultsDoNotDependOnThreads() {
        XCTAssertNil(Variable(randomTensor([3], seed: 1)).sigmoid().tape)
        let x = randomTensor([64, 32, 32], seed: 13)
        let one = withWorkers(1) { valueAndGradients([x]) { $0[0].hardSwish() } }
        let two = withWorkers(2) { valueAndGradients([x]) { $0[0].hardSwish() } }
        XCTAssertEqual(one.0, two.0)
        XCTAssertEqual(one.1[0], two.1[0])
    }
}
