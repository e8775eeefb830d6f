import ECTestSupport
import ECNN
import ECOptim
import ECTensor
import XCTest

final class SGDTests: XCTestCase {
    private let w0: [Float] = [1.0, -2.0, 0.5]
    private let grads: [[Float]] = [[0.1, 0.2, -0.3], [-0.4, 0.25, 0.05], [0.3, -0.1, 0.7]]

    /// The PyTorch formulation evaluated in Double.
    private func reference(lr: Double, mu: Double, nesterov: Bool, wd: Double) -> [[Double]] {
        var w = w0.map(Double.init), v = [Double](repeating: 0, count: w.count)
        var trajectory: [[Double]] = []
        for grad in grads {
            for i in w.indices {
                let g = Double(grad[i]) + wd * w[i]
                v[i] = mu * v[i] + g
                w[i] -= lr * (mu == 0 ? g : nesterov ? g + mu * v[i] : v[i])
            }
            trajectory.append(w)
        }
        return trajectory
    }

    private func run(_ optimizer: SGD) -> [[Float]] {
        let p = makeParameter("fc1/weight", w0)
        return grads.map { g in
            setGrad(p, g)
            optimizer.step([p])
            return p.value.scalars
        }
    }

    private func check(lr: Float, mu: Float = 0, nesterov: Bool = false, wd: Float = 0,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let sgd = try SGD(learningRate: lr, momentum: mu, nesterov: nesterov, weightDecay: wd)
        let actual = run(sgd)
        let expected = reference(lr: Double(lr), mu: Double(mu), nesterov: nesterov, wd: Double(wd))
        for (k, (a, e)) in zip(actual, expected).enumerated() {
            assertClose(a, e, absolute: 2e-6, relative: 2e-6, "after step \(k + 1)", file: file, line: line)
        }
        XCTAssertEqual(sgd.stepCount, grads.count, file: file, line: line)
    }

    func testPlainStepsAreWMinusLrTimesGrad() throws {
        try check(lr: 0.1)
        // First step by hand: 1 − 0.1·0.1, −2 − 0.1·0.2, 0.5 + 0.1·0.3.
        let p = makeParameter("w", w0)
        setGrad(p, grads[0])
        try SGD(learningRate: 0.1).step([p])
        assertClose(p.value.scalars, [0.99, -2.02, 0.53], absolute: 2e-6, relative: 2e-6)
    }

    func testMomentumSteps() throws {
        try check(lr: 0.05, mu: 0.9)
    }

    func testNesterovSteps() throws {
        try check(lr: 0.05, mu: 0.9, nesterov: true)
    }

    func testWeightDecaySteps() throws {
        try check(lr: 0.1, wd: 0.01)
        try check(lr: 0.05, mu: 0.9, wd: 0.001)
        try check(lr: 0.05, mu: 0.5, nesterov: true, wd: 0.01)
    }

    func testKerasFormulationGivesTheSameWeightsAtConstantRate() throws {
        let lr = 0.05, mu = 0.9
        var w = w0.map(Double.init), u = [Double](repeating: 0, count: w.count)
        for grad in grads {
            for i in w.indices {
                u[i] = mu * u[i] - lr * Double(grad[i])
                w[i] += u[i]
            }
        }
        let actual = run(try SGD(learningRate: Float(lr), momentum: Float(mu)))
        assertClose(actual.last!, w, absolute: 2e-6, relative: 2e-6)
    }

    func testNonTrainableParametersAreUntouchedAndGetNoState() throws {
        let sgd = try SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
        let weight = makeParameter("bn/gamma", [1, 2], role: .gamma)
        let mean = makeParameter("bn/moving_mean", [0.5, -0.5], role: .movingMean)
        let variance = makeParameter("bn/moving_variance", [1.5, 2.5], role: .movingVariance)
        for p in [weight, mean, variance] { setGrad(p, [1, 1]) }
        sgd.step([weight, mean, variance])
        XCTAssertEqual(mean.value.scalars, [0.5, -0.5])
        XCTAssertEqual(variance.value.scalars, [1.5, 2.5])
        XCTAssertNotEqual(weight.value.scalars, [1, 2])
        XCTAssertEqual(sgd.exportState().names, ["optimizer/bn/gamma/momentum", "optimizer/step"])
        var visited = 0
        sgd.forEachSlot(of: "bn/moving_mean") { _ in visited += 1 }
        XCTAssertEqual(visited, 0)
    }

    func testStepUsesTheScheduledRateThenAdvances() throws {
        let sgd = try SGD(schedule: .stepDecay(0.1, stepSize: 2, gamma: 0.5))
        let p = makeParameter("w", [0])
        var rates: [Float] = []
        for _ in 0..<5 {
            rates.append(sgd.learningRate)
            setGrad(p, [1])
            let before = p.value.scalars[0]
            sgd.step([p])
            XCTAssertEqual(before - p.value.scalars[0], rates.last!, accuracy: 1e-7)
        }
        XCTAssertEqual(rates, [0.1, 0.1, 0.05, 0.05, 0.025])
        XCTAssertEqual(sgd.stepCount, 5)
    }

    func testInvalidHyperparametersAreNamedErrors() {
        assertOptimizerError("optimizer.lr must be > 0, got -0.1") { _ = try SGD(learningRate: -0.1) }
        assertOptimizerError("optimizer.momentum must be in [0, 1), got 1.5") {
            _ = try SGD(learningRate: 0.1, momentum: 1.5)
        }
        assertOptimizerError("optimizer.weight_decay must be >= 0, got -0.01") {
            _ = try SGD(learningRate: 0.1, weightDecay: -0.01)
        }
        assertOptimizerError("optimizer.nesterov must be false when optimizer.momentum is 0, got true") {
            _ = try SGD(learningRate: 0.1, nesterov: true)
        }
        assertOptimizerError("optimizer.schedule.gamma must be in (0, 1], got 0.0") {
            _ = try SGD(schedule: .stepDecay(0.1, stepSize: 10, gamma: 0))
        }
    }
}
