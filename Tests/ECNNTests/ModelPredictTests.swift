import XCTest
@testable import ECNN
import ECTensor

/// `Model.predict`: the batch in slices on several threads equals one pass, for every zoo model.
final class ModelPredictTests: XCTestCase {
    func testSlicedPredictionEqualsOnePass() {
        let saved = Parallel.workers
        defer { Parallel.workers = saved }
        var rng = RNG(seed: 9)
        for name in ModelZoo.names {
            let model = ModelZoo.make(name, seed: 4)!
            for batch in [1, 15, 16, 37, 64] {
                let x = Tensor.uniform(shape: [batch] + model.inputShape, low: 0, high: 1, rng: &rng)
                let reference = model(Variable(x), .inference()).value
                for workers in [1, 2, 3] {
                    Parallel.workers = workers
                    let y = model.predict(x)
                    XCTAssertEqual(y.shape, reference.shape, "\(name) batch \(batch)")
                    let scale = max(reference.scalars.map(abs).max() ?? 0, 1e-6)
                    XCTAssertLessThanOrEqual(y.maxAbsDifference(reference) / scale, 1e-5, "\(name) batch \(batch), \(workers) workers")
                }
            }
        }
    }

    func testSlicesRunConcurrentlyOnlyWhenWorthIt() {
        let saved = Parallel.workers
        defer { Parallel.workers = saved }
        Parallel.workers = 2
        let model = ModelZoo.make("mlp", seed: 1)!
        var rng = RNG(seed: 2)
        let x = Tensor.uniform(shape: [15] + model.inputShape, low: 0, high: 1, rng: &rng)
        XCTAssertEqual(model.predict(x), model(Variable(x), .inference()).value, "15 images: one pass, bit-identical")
    }
}
