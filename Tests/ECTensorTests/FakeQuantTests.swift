import XCTest
@testable import ECTensor

/// LSQ fake quantization: the grid, exact forward values (clipping, ties), the initial step size,
/// and that learning the step reduces the quantization error (gradients: FakeQuantGradientTests).
final class FakeQuantTests: XCTestCase {
    // MARK: Grid

    func testQuantRangeBounds() {
        let expected: [(bits: Int, signed: Bool, qn: Float, qp: Float)] = [
            (8, true, 128, 127), (4, true, 8, 7), (2, true, 2, 1), (1, true, 1, 1),
            (8, false, 0, 255), (4, false, 0, 15), (2, false, 0, 3), (1, false, 0, 1),
        ]
        for e in expected {
            let r = QuantRange(bits: e.bits, signed: e.signed)
            XCTAssertEqual(r.qn, e.qn, "\(r)")
            XCTAssertEqual(r.qp, e.qp, "\(r)")
            XCTAssertEqual(r.levels.count, 1 << e.bits, "\(r): 2^b levels")
            XCTAssertEqual(r.isBinary, e.signed && e.bits == 1)
        }
        XCTAssertEqual(QuantRange(bits: 2, signed: true).levels, [-2, -1, 0, 1])
        XCTAssertEqual(QuantRange(bits: 1, signed: true).levels, [-1, 1])
        XCTAssertEqual(QuantRange(bits: 1, signed: false).levels, [0, 1])
    }

    /// The vectorised rounding equals `rounded(.toNearestOrEven)` after clipping, ties included.
    func testLevelIsRoundHalfToEvenOfClippedValue() {
        var xs: [Float] = (-600...600).map { Float($0) * 0.5 }  // every integer and every tie
        var rng = RNG(seed: 1)
        xs += (0..<5000).map { _ in (rng.nextUniform() - 0.5) * 600 }
        xs += [0.49999997, 0.50000006, 1.4999999, 2.5000002, -0.49999997, -2.5000002]
        for bits in [8, 4, 2] {
            for signed in [true, false] {
                let r = QuantRange(bits: bits, signed: signed)
                for x in xs {
                    XCTAssertEqual(r.level(x), min(max(x, -r.qn), r.qp).rounded(.toNearestOrEven), "\(r) x=\(x)")
                }
            }
        }
        XCTAssertEqual(QuantRange(bits: 8, signed: true).level(-0.5).sign, .plus, "no negative zero")
        XCTAssertTrue(QuantRange(bits: 4, signed: true).level(.nan).isNaN)
        XCTAssertTrue(QuantRange(bits: 1, signed: true).level(.nan).isNaN)
    }

    // MARK: Forward, exact values

    /// Steps are powers of two, so `v = x·s` and `v/s = x` are exact and ties stay ties.
    func testForwardExactValuesPerTensor() {
        let cases: [(QuantRange, Float, [Float], [Float])] = [
            // signed 8: ties to even on both sides, clipping at −128 and 127.
            (QuantRange(bits: 8, signed: true), 0.5,
             [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.75, -0.75, 126.5, 127.4, 127.5, 200, -127.5, -128.6, -300],
             [0, 2, 2, 0, -2, -2, 1, -1, 126, 127, 127, 127, -128, -128, -128]),
            (QuantRange(bits: 4, signed: true), 0.25,
             [3.4, 3.5, 4.5, 6.5, 7.5, 9, -7.5, -8.5, -20, 0.2],
             [3, 4, 4, 6, 7, 7, -8, -8, -8, 0]),
            (QuantRange(bits: 2, signed: true), 1,
             [-3, -2.5, -1.5, -0.5, 0.5, 0.6, 1.5, 5],
             [-2, -2, -2, 0, 0, 1, 1, 1]),
            // binary: the sign, zero (and −0) to +1, regardless of magnitude.
            (QuantRange(bits: 1, signed: true), 0.5,
             [-3, -0.2, -0.0, 0, 0.1, 0.5, 4],
             [-1, -1, 1, 1, 1, 1, 1]),
            (QuantRange(bits: 8, signed: false), 0.125,
             [-1, -0.4, 0.5, 1.5, 2.5, 254.5, 255.5, 1000],
             [0, 0, 0, 2, 2, 254, 255, 255]),
            (QuantRange(bits: 4, signed: false), 2,
             [14.5, 15.2, 16, 13.5, -3],
             [14, 15, 15, 14, 0]),
            (QuantRange(bits: 2, signed: false), 1,
             [2.5, 3.5, 1.5, -1, 0.4],
             [2, 3, 2, 0, 0]),
            (QuantRange(bits: 1, signed: false), 0.25,
             [0.5, 0.51, 7, -1, 1.5],
             [0, 1, 1, 0, 1]),
        ]
        for (range, step, xs, levels) in cases {
            let v = Tensor(shape: [xs.count], scalars: xs.map { $0 * step })
            for stepShape in [[Int](), [1]] {
                let out = Variable(v).fakeQuantLSQ(stepSize: Variable(Tensor(shape: stepShape, scalars: [step])), range: range)
                XCTAssertEqual(out.value.scalars, levels.map { $0 * step }, "\(range) s=\(step) step shape \(stepShape)")
                XCTAssertNil(out.tape, "no tape without watched inputs")
            }
        }
    }

    func testForwardExactValuesPerChannel() {
        // [3, 2]: column 0 uses s = 0.5 (4-bit grid −4…3.5), column 1 uses s = 2 (−16…14).
        let range = QuantRange(bits: 4, signed: true)
        let v = Tensor(shape: [3, 2], scalars: [10, 10, -10, -10, 0.75, 3])
        let out = Variable(v).fakeQuantLSQ(stepSize: Variable(Tensor(shape: [2], scalars: [0.5, 2])),
                                           range: range, channelAxisSize: 2)
        XCTAssertEqual(out.value.scalars, [3.5, 10, -4, -10, 1, 4])  // clip high, clip low, ties 1.5 → 2

        // HWIO kernel [1, 2, 1, 3]: the output channel is the last axis.
        let k = Tensor(shape: [1, 2, 1, 3], scalars: [0.3, 0.3, 0.3, -5, -5, -5])
        let steps = Tensor(shape: [3], scalars: [0.25, 0.5, 4])
        let unsigned = Variable(k).fakeQuantLSQ(stepSize: Variable(steps), range: QuantRange(bits: 2, signed: false),
                                                channelAxisSize: 3)
        XCTAssertEqual(unsigned.value.scalars, [0.25, 0.5, 0, 0, 0, 0])
        let binary = Variable(k).fakeQuantLSQ(stepSize: Variable(steps), range: QuantRange(bits: 1, signed: true),
                                              channelAxisSize: 3)
        XCTAssertEqual(binary.value.scalars, [0.25, 0.5, 4, -0.25, -0.5, -4])
    }

    /// Every output is `k·s` for a level k of the grid, and inside the range the nearest one.
    func testOutputsLieOnTheGrid() {
        var rng = RNG(seed: 2)
        let v = Tensor.normal(shape: [241, 161], std: 1.5, rng: &rng)  // 38 801: parallel, with a tail
        let perChannel = Tensor.uniform(shape: [161], low: 0.02, high: 0.6, rng: &rng)
        for bits in [8, 4, 2, 1] {
            for signed in [true, false] {
                let range = QuantRange(bits: bits, signed: signed)
                let levels = Set(range.levels)
                for (steps, channels) in [(Tensor(shape: [1], scalars: [0.37]), nil), (perChannel, 161)] {
                    let out = Variable(v).fakeQuantLSQ(stepSize: Variable(steps), range: range, channelAxisSize: channels)
                    var bad = 0
                    for e in 0..<v.count {
                        let s = steps[flat: channels == nil ? 0 : e % 161]
                        let k = (out.value[flat: e] / s).rounded()
                        if !levels.contains(k) || out.value[flat: e] != k * s { bad += 1; continue }
                        let x = v[flat: e] / s
                        if !range.isBinary && x >= -range.qn && x <= range.qp && abs(x - k) > 0.5 { bad += 1 }
                    }
                    XCTAssertEqual(bad, 0, "\(range) per-channel \(channels != nil): elements off the grid")
                }
            }
        }
    }

    // MARK: Initial step size and learning

    func testInitialStepSizeByHand() {
        let v = Tensor(shape: [2, 2], scalars: [1, -2, 3, -4])  // mean|v| = 2.5; columns 2 and 3
        let int4 = QuantRange(bits: 4, signed: true)
        let perTensor = v.lsqInitialStepSize(range: int4)
        XCTAssertEqual(perTensor.shape, [1])
        XCTAssertEqual(perTensor.scalarValue, Float(5 / 7.0.squareRoot()), accuracy: 1e-7)
        XCTAssertEqual(v.lsqInitialStepSize(range: QuantRange(bits: 8, signed: false)).scalarValue,
                       Float(5 / 255.0.squareRoot()), accuracy: 1e-7)
        XCTAssertEqual(v.lsqInitialStepSize(range: QuantRange(bits: 1, signed: true)).scalarValue, 5)  // √Qp = 1
        let perChannel = v.lsqInitialStepSize(range: int4, channelAxisSize: 2)
        XCTAssertEqual(perChannel.shape, [2])
        XCTAssertEqual(perChannel[flat: 0], Float(4 / 7.0.squareRoot()), accuracy: 1e-7)
        XCTAssertEqual(perChannel[flat: 1], Float(6 / 7.0.squareRoot()), accuracy: 1e-7)
        // A pruned (all-zero) channel still gets a positive step, and its zeros stay exact.
        let pruned = Tensor(shape: [2, 2], scalars: [0, 1, 0, -3])
        let steps = pruned.lsqInitialStepSize(range: int4, channelAxisSize: 2)
        XCTAssertEqual(steps[flat: 0], .leastNormalMagnitude)
        let y = Variable(pruned).fakeQuantLSQ(stepSize: Variable(steps), range: int4, channelAxisSize: 2)
        XCTAssertEqual(y.value[flat: 0], 0)
        XCTAssertEqual(y.value[flat: 2], 0)
    }

    /// SGD on the step size alone (values fixed, L = mean (v̂ − v)²) from the LSQ initialisation
    /// lowers the quantization error, per tensor and per channel; per tensor it reaches the best
    /// single step of a grid search (to 3%).
    func testLearningTheStepReducesQuantizationError() {
        var rng = RNG(seed: 8)
        let v = Tensor.normal(shape: [64, 16], rng: &rng).multiplied(by: Tensor.uniform(shape: [64, 16], low: 0.5, high: 1.5, rng: &rng))
        for range in [QuantRange(bits: 4, signed: true), QuantRange(bits: 2, signed: true)] {
            for channels in [nil, 16] as [Int?] {
                var steps = v.lsqInitialStepSize(range: range, channelAxisSize: channels)
                let initial = quantizationError(v, steps: steps, range: range, channels: channels)
                for _ in 0..<30 {
                    let y = Variable(v).fakeQuantLSQ(stepSize: Variable(steps), range: range, channelAxisSize: channels)
                    var dLoss = y.value
                    dLoss.addScaled(v, alpha: -1)
                    let (_, ds) = fakeQuantGradients(v, steps: steps, range: range, channels: channels,
                                            seed: dLoss.scaled(by: 2 / Float(v.count)))
                    steps.addScaled(ds, alpha: -10)
                }
                let learned = quantizationError(v, steps: steps, range: range, channels: channels)
                XCTAssertLessThan(learned, 0.9 * initial, "\(range) per-channel \(channels != nil): MSE \(initial) → \(learned)")
                if channels == nil {
                    let best = (1...400).map { k in
                        quantizationError(v, steps: Tensor(shape: [1], scalars: [Float(k) * 0.005]), range: range, channels: nil)
                    }.min()!
                    XCTAssertLessThan(learned, 1.03 * best, "\(range): learned MSE \(learned), best grid step \(best)")
                }
            }
        }
    }

    // MARK: Helpers

    private func quantizationError(_ v: Tensor, steps: Tensor, range: QuantRange, channels: Int?) -> Double {
        let y = Variable(v).fakeQuantLSQ(stepSize: Variable(steps), range: range, channelAxisSize: channels).value
        return zip(y.scalars, v.scalars).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(v.count)
    }
}
