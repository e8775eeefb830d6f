import ECTestSupport
import ECNN
import ECOptim
import ECTensor
import XCTest

final class AdamTests: XCTestCase {
    private let w0: [Float] = [1.0, -2.0, 0.5, 0.0]
    private let grads: [[Float]] = [[0.1, 0.2, -0.3, 0.0], [-0.4, 0.25, 0.05, 1e-3], [0.3, -0.1, 0.7, -2.0]]

    /// Kingma & Ba's algorithm with coupled (L2) or decoupled (Loshchilov & Hutter) decay, in Double.
    private func reference(lr: Double, b1: Double = 0.9, b2: Double = 0.999, eps: Double = 1e-8,
                           wd: Double, decoupled: Bool) -> [[Double]] {
        var w = w0.map(Double.init)
        var m = [Double](repeating: 0, count: w.count), v = m
        var trajectory: [[Double]] = []
        for (k, grad) in grads.enumerated() {
            let t = Double(k + 1)
            for i in w.indices {
                let g = Double(grad[i]) + (decoupled ? 0 : wd * w[i])
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                let mHat = m[i] / (1 - pow(b1, t)), vHat = v[i] / (1 - pow(b2, t))
                w[i] = w[i] - (decoupled ? lr * wd * w[i] : 0) - lr * mHat / (vHat.squareRoot() + eps)
            }
            trajectory.append(w)
        }
        return trajectory
    }

    private func run(_ optimizer: Optimizer) -> [[Float]] {
        let p = makeParameter("fc1/weight", w0)
        return grads.map { g in
            setGrad(p, g)
            optimizer.step([p])
            return p.value.scalars
        }
    }

    private func check(_ optimizer: Optimizer, _ expected: [[Double]],
                       file: StaticString = #filePath, line: UInt = #line) {
        for (k, (a, e)) in zip(run(optimizer), expected).enumerated() {
            assertClose(a, e, absolute: 1e-6, relative: 1e-6, "after step \(k + 1)", file: file, line: line)
        }
        XCTAssertEqual(optimizer.stepCount, grads.count, file: file, line: line)
    }

    func testAdamFirstStepMovesEachWeightByAboutLr() throws {
        // Bias correction makes m̂ = g and v̂ = g² at t = 1, so the step is lr·g/(|g| + ε).
        let p = makeParameter("w", [1, 1, 1])
        setGrad(p, [0.5, -3, 0])
        try Adam(learningRate: 0.01).step([p])
        assertClose(p.value.scalars, [0.99, 1.01, 1], absolute: 2e-6, relative: 2e-6)
    }

    func testAdamSteps() throws {
        check(try Adam(learningRate: 0.01), reference(lr: 0.01, wd: 0, decoupled: false))
        check(try Adam(learningRate: 0.1, beta1: 0.5, beta2: 0.9, epsilon: 1e-3),
              reference(lr: 0.1, b1: 0.5, b2: 0.9, eps: 1e-3, wd: 0, decoupled: false))
    }

    func testAdamWithCoupledL2WeightDecay() throws {
        // λ = 0.05 keeps every penalised gradient away from 0, where Adam's g/|g| is ill-conditioned.
        check(try Adam(learningRate: 0.01, weightDecay: 0.05), reference(lr: 0.01, wd: 0.05, decoupled: false))
    }

    func testAdamWDecouplesWeightDecay() throws {
        check(try AdamW(learningRate: 0.01, weightDecay: 0.1), reference(lr: 0.01, wd: 0.1, decoupled: true))
        check(try AdamW(learningRate: 0.01), reference(lr: 0.01, wd: 0.01, decoupled: true))
        // The decoupled update differs from the coupled one for the same λ.
        let coupled = run(try Adam(learningRate: 0.01, weightDecay: 0.1)).last!
        let decoupled = run(try AdamW(learningRate: 0.01, weightDecay: 0.1)).last!
        XCTAssertGreaterThan(zip(coupled, decoupled).map { abs($0 - $1) }.max()!, 1e-4)
    }

    func testAdamWWithoutDecayIsAdam() throws {
        XCTAssertEqual(run(try AdamW(learningRate: 0.01, weightDecay: 0)), run(try Adam(learningRate: 0.01)))
    }

    func testAdamFollowsItsSchedule() throws {
        let adam = try Adam(schedule: .constant(0.01, warmupSteps: 2))
        XCTAssertEqual(adam.learningRate, 0)
        let p = makeParameter("w", [1])
        setGrad(p, [1])
        adam.step([p])
        XCTAssertEqual(p.value.scalars, [1], "rate 0 at the first warmup step")
        XCTAssertEqual(adam.learningRate, 0.005)
    }

    func testNonTrainableParametersAreUntouched() throws {
        for optimizer: Optimizer in [try Adam(learningRate: 0.1, weightDecay: 0.1),
                                     try AdamW(learningRate: 0.1, weightDecay: 0.1)] {
            let mean = makeParameter("bn/moving_mean", [0.5, -0.5], role: .movingMean)
            setGrad(mean, [1, 1])
            optimizer.step([mean])
            XCTAssertEqual(mean.value.scalars, [0.5, -0.5])
            XCTAssertEqual(optimizer.exportState().names, ["optimizer/step"])
        }
    }

    func testInvalidHyperparametersAreNamedErrors() {
        assertOptimizerError("optimizer.beta1 must be in [0, 1), got 1.0") { _ = try Adam(learningRate: 0.1, beta1: 1) }
        assertOptimizerError("optimizer.beta2 must be in [0, 1), got -0.5") {
            _ = try AdamW(learningRate: 0.1, beta2: -0.5)
        }
        assertOptimizerError("optimizer.epsilon must be > 0, got 0.0") { _ = try Adam(learningRate: 0.1, epsilon: 0) }
        assertOptimizerError("optimizer.weight_decay must be >= 0, got -1.0") {
            _ = try AdamW(learningRate: 0.1, weightDecay: -1)
        }
        assertOptimizerError("optimizer.lr must be > 0, got nan") { _ = try Adam(learningRate: .nan) }
    }
}
