import ECTestSupport
import XCTest
@testable import ECTensor

/// `f(a, b)` with NumPy broadcasting written the naive way: for each output multi-index, each
/// operand's index is the right-aligned one with broadcast (size-1) axes pinned at 0.
func naiveBroadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    let rank = max(a.rank, b.rank)
    let pa = [Int](repeating: 1, count: rank - a.rank) + a.shape, pb = [Int](repeating: 1, count: rank - b.rank) + b.shape
    let out = (0..<rank).map { max(pa[$0], pb[$0]) }
    let sa = rowMajorStrides(pa), sb = rowMajorStrides(pb)
    let values = allIndices(out).map { index -> Float in
        var ia = 0, ib = 0
        for axis in 0..<rank {
            ia += (pa[axis] == 1 ? 0 : index[axis]) * sa[axis]
            ib += (pb[axis] == 1 ? 0 : index[axis]) * sb[axis]
        }
        return f(a[flat: ia], b[flat: ib])
    }
    return Tensor(shape: out, scalars: values)
}

final class BroadcastTests: XCTestCase {
    /// Every pattern the fast paths special-case, and general rank-mismatched ones.
    let patterns: [([Int], [Int])] = [
        ([2, 3, 4, 5], [2, 3, 4, 5]),  // same shape
        ([2, 3, 4, 5], [5]),           // NHWC ⊙ per-channel
        ([2, 3, 4, 5], [2, 1, 1, 5]),  // squeeze-excitation
        ([2, 3, 4, 5], []),            // scalar
        ([2, 3, 4, 5], [1]),           // one-element vector
        ([2, 3, 4, 5], [1, 3, 1, 1]),  // NCHW ⊙ per-channel
        ([3, 4, 5], [2, 1, 1, 1]),     // rank-mismatched, lhs broadcast on the leading axis
        ([3, 1, 5], [2, 1, 4, 1]),     // both broadcast
        ([4, 1], [1, 5]),              // outer product
        ([5], [2, 3, 4, 5]),           // lhs the small one
        ([], [3, 2]),                  // lhs scalar
        ([2, 1, 3], [2, 4, 3]),        // middle axis
        ([1, 1], [1]),                 // all ones
    ]

    func operands(_ pattern: ([Int], [Int]), seed: UInt64) -> (Tensor, Tensor) {
        let a = randomTensor(pattern.0, seed: seed)
        // Divisors away from 0: |b| in [0.5, 2].
        var rng = RNG(seed: seed + 1)
        let b = Tensor(shape: pattern.1, scalars: (0..<Tensor.elementCount(pattern.1)).map { _ in
            (rng.nextUniform() < 0.5 ? -1 : 1) * (0.5 + 1.5 * rng.nextUniform())
        })
        return (a, b)
    }

    func testForwardMatchesNaiveReferenceExactly() {
        for (i, pattern) in patterns.enumerated() {
            let (a, b) = operands(pattern, seed: UInt64(i * 2))
            let x = Variable(a), y = Variable(b)
            // One float operation per element: bit-identical to the naive loop.
            XCTAssertEqual((x + y).value, naiveBroadcast(a, b, +), "\(pattern)")
            XCTAssertEqual((x - y).value, naiveBroadcast(a, b, -), "\(pattern)")
            XCTAssertEqual((x * y).value, naiveBroadcast(a, b, *), "\(pattern)")
            XCTAssertEqual((x / y).value, naiveBroadcast(a, b, /), "\(pattern)")
            XCTAssertEqual((y + x).value, naiveBroadcast(b, a, +), "\(pattern) swapped")
        }
    }

    func testGradientsMatchFiniteDifferences() {
        for (i, pattern) in patterns.enumerated() {
            let (a, b) = operands(pattern, seed: UInt64(100 + i * 2))
            assertGradientsMatch([a, b]) { $0[0] + $0[1] }
            assertGradientsMatch([a, b]) { $0[0] - $0[1] }
            assertGradientsMatch([a, b]) { $0[0] * $0[1] }
            assertGradientsMatch([a, b], epsilon: 1e-3) { $0[0] / $0[1] }
            assertGradientsMatch([b, a]) { $0[0] - $0[1] }
        }
    }

    func testReducedGradientsMatchNaiveSums() {
        // dB of a·b is Σ over the broadcast axes of dy·a: against a direct double loop.
        let a = randomTensor([3, 4, 5, 6], seed: 1), b = randomTensor([3, 1, 1, 6], seed: 2)
        let (y, g) = valueAndGradients([a, b], seed: 3) { $0[0] * $0[1] }
        let dy = randomTensor(y.shape, seed: 3)
        var expected = [Double](repeating: 0, count: 18)
        for n in 0..<3 { for p in 0..<20 { for c in 0..<6 {
            expected[n * 6 + c] += Double(dy[flat: (n * 20 + p) * 6 + c]) * Double(a[flat: (n * 20 + p) * 6 + c])
        } } }
        assertClose(g[1]!, Tensor(shape: [3, 1, 1, 6], scalars: expected.map { Float($0) }), absolute: 1e-5, relative: 1e-5)
    }

    func testSameShapeKeepsTodaysResults() {
        // The residual add and the product of equal shapes: exactly the element-wise results and gradients.
        let a = randomTensor([2, 3, 4], seed: 4), b = randomTensor([2, 3, 4], seed: 5)
        let (sum, g) = valueAndGradients([a, b], seed: 6) { $0[0] + $0[1] }
        let dy = randomTensor([2, 3, 4], seed: 6)
        XCTAssertEqual(sum.scalars, zip(a.scalars, b.scalars).map(+))
        XCTAssertEqual(g[0], dy)
        XCTAssertEqual(g[1], dy)
        let (product, h) = valueAndGradients([a, b], seed: 6) { $0[0] * $0[1] }
        XCTAssertEqual(product.scalars, zip(a.scalars, b.scalars).map(*))
        XCTAssertEqual(h[0], dy.multiplied(by: b))
        XCTAssertEqual(h[1], dy.multiplied(by: a))
    }

    func testBroadcastShape() {
        XCTAssertEqual(Tensor.broadcastShape([2, 3, 4, 5], [5]), [2, 3, 4, 5])
        XCTAssertEqual(Tensor.broadcastShape([3, 1, 5], [2, 1, 4, 1]), [2, 3, 4, 5])
        XCTAssertEqual(Tensor.broadcastShape([], []), [])
        XCTAssertEqual(Tensor.broadcastShape([0, 3], [1, 3]), [0, 3])
        XCTAssertNil(Tensor.broadcastShape([2, 3], [4, 3]))
        XCTAssertNil(Tensor.broadcastShape([3], [4]))
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let a = randomTensor([16, 14, 14, 32], seed: 7), b = randomTensor([16, 1, 1, 32], seed: 8), c = randomTensor([32], seed: 9)
        let run = { valueAndGradients([a, b, c]) { ($0[0] * $0[1]) / ($0[2] + $0[2] * $0[2] + Variable(Tensor(scalar: 3))) } }
        let one = withWorkers(1, run), two = withWorkers(2, run), three = withWorkers(3, run)
        for other in [two, three] {
            XCTAssertEqual(one.0, other.0)
            for i in 0..<3 { XCTAssertEqual(one.1[i], other.1[i]) }
        }
    }
}
