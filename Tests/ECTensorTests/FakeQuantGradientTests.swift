import XCTest
@testable import ECTensor

/// LSQ fake-quantization gradients: the exact straight-through input gradient, the step-size
/// gradient against an independent Double formula, and finite differences where they apply.
final class FakeQuantGradientTests: XCTestCase {
    /// `dv = dŷ` inside `[−Qn·s, Qp·s]` (bounds included) and exactly 0 outside.
    func testStraightThroughGradientIsExact() {
        let range = QuantRange(bits: 4, signed: true)
        let s: Float = 0.25  // a power of two: ±bound·s divide back to exactly −8 and 7
        var values: [Float] = [-8 * s, 7 * s, (-8 * s).nextDown, (7 * s).nextUp, 0, 1, -1, 5, -5, 2.05, -2.3]
        var rng = RNG(seed: 3)
        values += (0..<200).map { _ in rng.nextNormal() * 2 }
        let v = Tensor(shape: [values.count], scalars: values)
        let dy = Tensor.normal(shape: v.shape, rng: &rng)
        let (dv, _) = fakeQuantGradients(v, steps: Tensor(shape: [1], scalars: [s]), range: range, seed: dy)
        for e in 0..<v.count {
            let x = v[flat: e] / s
            let expected: Float = x >= -8 && x <= 7 ? dy[flat: e] : 0
            XCTAssertEqual(dv[flat: e], expected, "element \(e) v=\(v[flat: e])")
        }
        XCTAssertEqual(dv[flat: 0], dy[flat: 0], "lower bound is inside")
        XCTAssertEqual(dv[flat: 1], dy[flat: 1], "upper bound is inside")
        XCTAssertEqual(dv[flat: 2], 0, "just below is outside")
        XCTAssertEqual(dv[flat: 3], 0, "just above is outside")
    }

    func testStepSizeGradientMatchesDoubleFormula() {
        var rng = RNG(seed: 4)
        for (shape, channels) in [([7, 9], nil), ([7, 9], 9), ([2, 3, 4, 5], 5), ([300, 128], nil), ([300, 128], 128), ([301, 127], nil)] as [([Int], Int?)] {
            let v = Tensor.normal(shape: shape, std: 1.2, rng: &rng)
            let dy = Tensor.normal(shape: shape, rng: &rng)
            let steps = Tensor.uniform(shape: [channels ?? 1], low: 0.05, high: 0.5, rng: &rng)
            for range in [QuantRange(bits: 8, signed: true), QuantRange(bits: 4, signed: true), QuantRange(bits: 2, signed: false),
                          QuantRange(bits: 1, signed: true), QuantRange(bits: 1, signed: false)] {
                for gradScale in [nil, 1, 0.37] as [Float?] {
                    let (_, ds) = fakeQuantGradients(v, steps: steps, range: range, channels: channels, gradScale: gradScale, seed: dy)
                    let expected = referenceStepGradient(v, steps: steps, range: range, channels: channels,
                                                         gradScale: gradScale.map(Double.init), seed: dy)
                    for c in 0..<steps.count {
                        XCTAssertEqual(Double(ds[flat: c]), expected[c].value, accuracy: 1e-5 * expected[c].magnitude + 1e-9,
                                       "\(shape) per-channel \(channels != nil) \(range) g=\(String(describing: gradScale)) channel \(c)")
                    }
                }
            }
        }
    }

    /// Where every element is clipped, `v̂ = −Qn·s` or `Qp·s` is linear in s and LSQ's ∂v̂/∂s is
    /// its true derivative: the generic central-difference check applies (g = 1).
    func testStepSizeGradientFiniteDifferencesWhereClipped() {
        let clipped = Tensor(shape: [4, 3], scalars: [9, -9, 12, -10, 30, -12, 11, 9.5, -20, -9.6, 40, 8.8])
        let range = QuantRange(bits: 3, signed: true)  // −4…3: every |v/s| > 4.5 for s ≤ 1.9
        assertGradientsMatch([Tensor(shape: [1], scalars: [1.7])]) { s in
            Variable(clipped).fakeQuantLSQ(stepSize: s[0], range: range, gradScale: 1)
        }
        assertGradientsMatch([Tensor(shape: [3], scalars: [1.2, 1.9, 0.8])]) { s in
            Variable(clipped).fakeQuantLSQ(stepSize: s[0], range: range, channelAxisSize: 3, gradScale: 1)
        }
    }

    /// Inside the range with v/s away from the .5 boundaries, `v̂ = k·s` is locally linear in s
    /// with slope k; LSQ's `∂v̂/∂s = k − v/s` differs by the straight-through term `−v/s`. So
    /// the finite difference of L equals `ds + Σ dŷ·v/s` over the inside elements (g = 1).
    func testStepSizeGradientFiniteDifferencesInsideTheRange() {
        let range = QuantRange(bits: 4, signed: true)
        var rng = RNG(seed: 5)
        let steps: [Float] = [0.3, 0.45]
        // x = v/s with fractional part in [0.2, 0.3] ∪ [0.7, 0.8], |x| ≤ 9 (some clipped).
        var values = [Float]()
        for e in 0..<40 {
            let k = Float(Int(rng.nextUniform() * 19) - 10)
            let frac = rng.nextUniform() < 0.5 ? 0.2 + 0.1 * rng.nextUniform() : 0.7 + 0.1 * rng.nextUniform()
            values.append((k + frac) * steps[e % 2])
        }
        let v = Tensor(shape: [20, 2], scalars: values)
        let dy = Tensor.normal(shape: v.shape, rng: &rng)
        let (_, ds) = fakeQuantGradients(v, steps: Tensor(shape: [2], scalars: steps), range: range, channels: 2, gradScale: 1, seed: dy)
        func loss(_ s: [Float]) -> Double {
            let y = Variable(v).fakeQuantLSQ(stepSize: Variable(Tensor(shape: [2], scalars: s)), range: range, channelAxisSize: 2)
            return zip(y.value.scalars, dy.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        for c in 0..<2 {
            let eps = steps[c] * 1e-3  // moves |v/s| ≤ 10 by ≤ 0.01: no level changes
            var plus = steps, minus = steps
            plus[c] += eps
            minus[c] -= eps
            let numeric = (loss(plus) - loss(minus)) / Double(plus[c] - minus[c])
            var steTerm = 0.0
            for r in 0..<20 {
                let x = Double(v[flat: r * 2 + c]) / Double(steps[c])
                if x >= -8 && x <= 7 { steTerm += Double(dy[flat: r * 2 + c]) * x }
            }
            XCTAssertEqual(Double(ds[flat: c]) + steTerm, numeric, accuracy: 2e-3 * max(1, abs(numeric)), "channel \(c)")
        }
    }

    /// `v̂(λv, λs) = λ·v̂(v, s)`, and the LSQ gradients respect it exactly: along the direction
    /// (v, s), `Σ v·∂L/∂v + s·∂L/∂s = Σ dŷ·v̂/s`, matching central differences in λ at any inputs.
    func testGradientsAlongTheScalingDirection() {
        var rng = RNG(seed: 6)
        let v = Tensor.normal(shape: [50, 4], std: 2, rng: &rng)
        let dy = Tensor.normal(shape: v.shape, rng: &rng)
        let steps = Tensor(shape: [4], scalars: [0.25, 0.5, 0.125, 1])  // powers of two: λ-scaling exact
        for range in [QuantRange(bits: 3, signed: true), QuantRange(bits: 1, signed: true), QuantRange(bits: 2, signed: false)] {
            let (dv, ds) = fakeQuantGradients(v, steps: steps, range: range, channels: 4, gradScale: 1, seed: dy)
            var analytic = 0.0
            for e in 0..<v.count { analytic += Double(v[flat: e]) * Double(dv[flat: e]) }
            for c in 0..<4 { analytic += Double(steps[flat: c]) * Double(ds[flat: c]) }
            func loss(_ lambda: Float) -> Double {
                let y = Variable(v.scaled(by: lambda)).fakeQuantLSQ(stepSize: Variable(steps.scaled(by: lambda)),
                                                                    range: range, channelAxisSize: 4)
                return zip(y.value.scalars, dy.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            let numeric = (loss(1.25) - loss(0.75)) / 0.5
            XCTAssertEqual(analytic, numeric, accuracy: 1e-4 * max(1, abs(numeric)), "\(range)")
        }
    }

    /// The step gradient is summed in blocks fixed by the shape: bit-identical for any thread count.
    func testStepSizeGradientIndependentOfWorkerCount() {
        var rng = RNG(seed: 7)
        let v = Tensor.normal(shape: [401, 255], rng: &rng), dy = Tensor.normal(shape: [401, 255], rng: &rng)
        let saved = Parallel.workers
        defer { Parallel.workers = saved }
        for channels in [nil, 255] as [Int?] {
            let steps = Tensor(shape: [channels ?? 1], repeating: 0.2)
            var results = [Tensor]()
            for workers in [1, 2, 3] {
                Parallel.workers = workers
                let (dv, ds) = fakeQuantGradients(v, steps: steps, range: QuantRange(bits: 4, signed: true), channels: channels, seed: dy)
                results.append(ds)
                XCTAssertEqual(dv.shape, v.shape)
            }
            XCTAssertEqual(results[0], results[1])
            XCTAssertEqual(results[0], results[2])
        }
    }

    func testScalarStepSizeGetsAScalarGradient() {
        let tape = Tape()
        let s = tape.watch(Tensor(scalar: 0.5))
        let y = Variable(Tensor(shape: [3], scalars: [0.3, 0.9, 9])).fakeQuantLSQ(stepSize: s, range: QuantRange(bits: 2, signed: true))
        tape.backward(from: y.sum())
        // ∂v̂/∂s: (1 − 0.6), (2 clipped → 1), (1 clipped); g = 1/√(3·1).
        XCTAssertEqual(s.grad?.shape, [])
        XCTAssertEqual(Double(s.grad?.scalarValue ?? 0), (0.4 + 1 + 1) / 3.0.squareRoot(), accuracy: 1e-6)
    }

    // MARK: Helpers

    /// `g·Σ dŷ·∂v̂/∂s` per step size, computed in Double from LSQ eq. 3–5.
    private func referenceStepGradient(_ v: Tensor, steps: Tensor, range: QuantRange, channels: Int?, gradScale: Double?,
                                       seed: Tensor) -> [(value: Double, magnitude: Double)] {
        let c = channels ?? 1
        let qn = Double(range.qn), qp = Double(range.qp)
        var sums = [Double](repeating: 0, count: c), magnitudes = [Double](repeating: 0, count: c)
        for e in 0..<v.count {
            let j = e % c
            let x = Double(v[flat: e]) / Double(steps[flat: j])
            let slope: Double
            if x < -qn { slope = -qn } else if x > qp { slope = qp } else {
                let level = range.isBinary ? (x >= 0 ? 1 : -1) : x.rounded(.toNearestOrEven)
                slope = level - x
            }
            sums[j] += Double(seed[flat: e]) * slope
            magnitudes[j] += abs(Double(seed[flat: e]) * slope)
        }
        let g = gradScale ?? 1 / (Double(v.count / c) * qp).squareRoot()
        return (0..<c).map { (g * sums[$0], g * magnitudes[$0]) }
    }
}

/// Gradients of `Σ seed ⊙ fakeQuantLSQ(v, s)` with respect to v and s.
func fakeQuantGradients(_ v: Tensor, steps: Tensor, range: QuantRange, channels: Int? = nil, gradScale: Float? = nil,
                        seed: Tensor) -> (dv: Tensor, ds: Tensor) {
    let tape = Tape()
    let vv = tape.watch(v), ss = tape.watch(steps)
    let y = vv.fakeQuantLSQ(stepSize: ss, range: range, channelAxisSize: channels, gradScale: gradScale)
    tape.backward(from: y, seed: seed)
    return (vv.grad!, ss.grad!)
}
