import ECNN
import ECOptim
import ECTensor
import XCTest

/// Every optimizer minimises an ill-conditioned quadratic f(w) = ½ Σ aᵢ(wᵢ − cᵢ)².
final class ConvergenceTests: XCTestCase {
    private let a: [Float] = [10, 1, 0.5]
    private let c: [Float] = [1, -2, 3]

    private func minimise(_ optimizer: Optimizer, steps: Int) -> [Float] {
        let p = makeParameter("w", [0, 0, 0])
        for _ in 0..<steps {
            setGrad(p, quadraticGrad(p.value.scalars, a: a, c: c))
            optimizer.step([p])
        }
        return p.value.scalars
    }

    private func assertConverges(_ optimizer: Optimizer, steps: Int, tolerance: Float,
                                 file: StaticString = #filePath, line: UInt = #line) {
        let w = minimise(optimizer, steps: steps)
        for i in c.indices {
            XCTAssertEqual(w[i], c[i], accuracy: tolerance, "\(type(of: optimizer)) w[\(i)]", file: file, line: line)
        }
    }

    func testSGDConverges() throws {
        assertConverges(try SGD(learningRate: 0.15), steps: 300, tolerance: 1e-4)
        assertConverges(try SGD(learningRate: 0.05, momentum: 0.9), steps: 400, tolerance: 1e-4)
        assertConverges(try SGD(learningRate: 0.05, momentum: 0.9, nesterov: true), steps: 400, tolerance: 1e-4)
        assertConverges(try SGD(schedule: .cosine(0.1, totalSteps: 400, warmupSteps: 20), momentum: 0.9),
                        steps: 400, tolerance: 1e-3)
    }

    func testAdamAndAdamWConverge() throws {
        assertConverges(try Adam(schedule: .cosine(0.1, totalSteps: 1000)), steps: 1000, tolerance: 1e-2)
        assertConverges(try AdamW(schedule: .cosine(0.1, totalSteps: 1000), weightDecay: 1e-4),
                        steps: 1000, tolerance: 1e-2)
    }

    func testWeightDecayShrinksTheMinimiser() throws {
        // With L2 decay λ, SGD converges to aᵢcᵢ/(aᵢ + λ).
        let lambda: Float = 0.5
        let w = minimise(try SGD(learningRate: 0.05, momentum: 0.9, weightDecay: lambda), steps: 500)
        for i in c.indices { XCTAssertEqual(w[i], a[i] * c[i] / (a[i] + lambda), accuracy: 1e-4) }
    }
}
