import XCTest
@testable import ECTensor

/// Central-difference gradient check (tinygrad `gradcheck`): for each input, compares the
/// tape's gradient of `f` with `(f(x+ε) − f(x−ε)) / 2ε` element by element.
///
/// `f` maps the inputs to any tensor; it is reduced to a scalar by a fixed random weighting
/// `Σ r ⊙ f(x)` so that every output element contributes with a different weight.
func assertGradientsMatch(
    _ inputs: [Tensor], epsilon: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
    file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Variable]) -> Variable
) {
    // Fixed output weighting.
    let probe = f(inputs.map { Variable($0) }).value
    var rng = RNG(seed: 99)
    let weights = Tensor.uniform(shape: probe.shape, low: 0.5, high: 1.5, rng: &rng)
    func scalar(_ xs: [Tensor]) -> Double {
        let y = f(xs.map { Variable($0) }).value
        return zip(y.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    let tape = Tape()
    let vars = inputs.map { tape.watch($0) }
    let out = f(vars)
    let loss = (out * Variable(weights)).sum()
    tape.backward(from: loss)

    for (i, x) in inputs.enumerated() {
        guard let analytic = vars[i].grad else {
            XCTFail("input \(i): no gradient reached it", file: file, line: line)
            continue
        }
        XCTAssertEqual(analytic.shape, x.shape, "input \(i): gradient shape", file: file, line: line)
        var worst: (Int, Float, Float) = (-1, 0, 0)
        var worstExcess: Float = 0
        for j in 0..<x.count {
            var plus = inputs, minus = inputs
            plus[i][flat: j] += epsilon
            minus[i][flat: j] -= epsilon
            let numeric = Float((scalar(plus) - scalar(minus)) / Double(2 * epsilon))
            let a = analytic[flat: j]
            let excess = abs(a - numeric) - (atol + rtol * max(abs(a), abs(numeric)))
            if excess > worstExcess { worstExcess = excess; worst = (j, a, numeric) }
        }
        XCTAssertLessThanOrEqual(worstExcess, 0,
            "input \(i) \(x.shape): element \(worst.0) analytic \(worst.1) vs numeric \(worst.2)",
            file: file, line: line)
    }
}

/// A tensor with entries spread away from zero and from each other (keeps ReLU and max-pool
/// kinks, where finite differences are meaningless, out of reach of ±ε).
func spreadTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var rng = RNG(seed: seed)
    let n = Tensor.elementCount(shape)
    var values = (0..<n).map { Float($0 - n / 2) * 0.05 + (rng.nextUniform() - 0.5) * 0.02 }
    values = values.map { abs($0) < 0.03 ? $0 + 0.06 : $0 }
    values.seededShuffle(rng: &rng)
    return Tensor(shape: shape, scalars: values.map { $0 * scale })
}
