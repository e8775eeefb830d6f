import XCTest
@testable import ECTensor

/// `x` gathered the naive way: output element at multi-index `i` is `x[source(i)]`.
func naiveGather(_ x: Tensor, outShape: [Int], _ source: ([Int]) -> [Int]) -> Tensor {
    let strides = rowMajorStrides(x.shape)
    return Tensor(shape: outShape, scalars: allIndices(outShape).map { index in
        x[flat: zip(source(index), strides).reduce(0) { $0 + $1.0 * $1.1 }]
    })
}

final class ConcatSliceTests: XCTestCase {
    func testConcatMatchesNaiveReference() {
        for (shapes, axis) in [([[2, 3, 4, 2], [2, 3, 4, 5], [2, 3, 4, 1]], 3), ([[1, 3, 2], [4, 3, 2]], 0),
                               ([[2, 1, 4], [2, 3, 4]], 1), ([[3, 2], [3, 5]], -1), ([[2, 2, 3, 4], [2, 1, 3, 4]], -3),
                               ([[5]], 0), ([[2, 0, 3], [2, 2, 3]], 1)] {
            let parts = shapes.enumerated().map { randomTensor($0.element, seed: UInt64($0.offset)) }
            let a = axis < 0 ? axis + shapes[0].count : axis
            var outShape = shapes[0]
            outShape[a] = shapes.reduce(0) { $0 + $1[a] }
            let expected = Tensor(shape: outShape, scalars: allIndices(outShape).map { index in
                var i = index, part = 0
                while i[a] >= shapes[part][a] { i[a] -= shapes[part][a]; part += 1 }
                return parts[part][flat: zip(i, rowMajorStrides(shapes[part])).reduce(0) { $0 + $1.0 * $1.1 }]
            })
            XCTAssertEqual(Variable.concat(parts.map { Variable($0) }, axis: axis).value, expected, "\(shapes) axis \(axis)")
            assertGradientsMatch(parts) { Variable.concat($0, axis: axis) }
        }
    }

    func testConcatOfOneVariableTwiceAccumulates() {
        let x = randomTensor([2, 3, 2], seed: 1), y = randomTensor([2, 1, 2], seed: 2)
        assertGradientsMatch([x, y]) { Variable.concat([$0[0], $0[1], $0[0]], axis: 1) }
        // A constant part gets nothing; the others still do.
        assertGradientsMatch([x]) { Variable.concat([$0[0], Variable(y)], axis: 1) }
    }

    func testSliceMatchesNaiveReference() {
        let x = randomTensor([3, 4, 5, 6], seed: 3)
        for (axis, start, end) in [(3, 2, 5), (0, 1, 3), (1, 0, 4), (2, 4, 5), (-1, 0, 1), (-2, 1, 1), (2, 0, 5)] {
            let a = axis < 0 ? axis + 4 : axis
            var outShape = x.shape
            outShape[a] = end - start
            let expected = naiveGather(x, outShape: outShape) { var i = $0; i[a] += start; return i }
            XCTAssertEqual(Variable(x).slice(axis: axis, start: start, end: end).value, expected, "axis \(axis) \(start)..<\(end)")
            assertGradientsMatch([x]) { $0[0].slice(axis: axis, start: start, end: end) }
        }
    }

    func testSplitRoundTripsAndHandlesUnusedOutputs() {
        let x = randomTensor([2, 3, 4, 7], seed: 4)
        for (axis, sizes) in [(3, [2, 4, 1]), (1, [1, 2]), (0, [2]), (-1, [0, 7])] {
            let parts = Variable(x).split(axis: axis, sizes: sizes)
            XCTAssertEqual(parts.map { $0.shape[axis < 0 ? 3 : axis] }, sizes)
            XCTAssertEqual(Variable.concat(parts, axis: axis).value, x)
        }
        // Only the first and last outputs are used: the middle slice's gradient is 0.
        assertGradientsMatch([x]) { v in
            let p = v[0].split(axis: 3, sizes: [2, 4, 1])
            return Variable.concat([p[0], p[2] * p[2]], axis: 3)
        }
        let (_, g) = valueAndGradients([x]) { v in v[0].split(axis: 3, sizes: [2, 4, 1])[1] }
        let dy = randomTensor([2, 3, 4, 4], seed: 5)
        var want = Tensor(shape: x.shape)
        for (i, index) in allIndices(x.shape).enumerated() where (2..<6).contains(index[3]) {
            want[flat: i] = dy[flat: ((index[0] * 3 + index[1]) * 4 + index[2]) * 4 + index[3] - 2]
        }
        XCTAssertEqual(g[0], want)
        // An output used twice, and outputs feeding each other.
        assertGradientsMatch([x]) { v in
            let p = v[0].split(axis: 1, sizes: [1, 2])
            return p[1] * p[0] + p[1]
        }
    }

    func testReshapeRecordsBackward() {
        let tape = Tape()
        let x = tape.watch(randomTensor([2, 3, 4], seed: 6))
        let y = x.reshaped([6, 4])
        XCTAssertTrue(y.requiresGrad)
        assertGradientsMatch([randomTensor([2, 3, 4], seed: 6)]) { $0[0].reshaped([4, 6]).slice(axis: 1, start: 1, end: 5) }
    }
}

final class TransposeTests: XCTestCase {
    func testTransposeMatchesNaiveReference() {
        let cases: [([Int], [Int])] = [
            ([2, 3, 4, 5], [0, 3, 1, 2]),   // NHWC → NCHW
            ([2, 5, 3, 4], [0, 2, 3, 1]),   // NCHW → NHWC
            ([2, 3, 4, 5], [3, 2, 1, 0]),
            ([2, 3, 4, 5], [1, 0, 2, 3]),   // innermost stays: whole rows
            ([2, 3, 4, 5], [0, 1, 2, 3]),   // identity
            ([7, 9], [1, 0]),
            ([3, 4, 5], [2, 0, 1]),
            ([2, 1, 3, 1], [3, 2, 1, 0]),   // size-1 axes
            ([1, 4, 1, 3], [0, 3, 2, 1]),
            ([2, 3, 2, 2, 3], [4, 1, 3, 0, 2]),
            ([2, 2, 3, 2, 1, 3], [5, 0, 4, 2, 1, 3]),
            ([3, 40, 37, 33], [0, 3, 1, 2]), // beyond one 32×32 tile, ragged edges
            ([], []),
        ]
        for (shape, perm) in cases {
            let x = randomTensor(shape, seed: UInt64(shape.reduce(7, +)))
            let outShape = perm.map { shape[$0] }
            let expected = naiveGather(x, outShape: outShape) { index in
                var source = [Int](repeating: 0, count: shape.count)
                for (i, p) in perm.enumerated() { source[p] = index[i] }
                return source
            }
            XCTAssertEqual(Variable(x).transpose(perm).value, expected, "\(shape) \(perm)")
            if x.count <= 200 { assertGradientsMatch([x]) { $0[0].transpose(perm) } }
        }
    }

    func testRoundTripAndBackwardIsTheInverse() {
        let x = randomTensor([4, 6, 5, 8], seed: 8)
        XCTAssertEqual(Variable(x).transpose([0, 3, 1, 2]).transpose([0, 2, 3, 1]).value, x)
        let (_, g) = valueAndGradients([x], seed: 9) { $0[0].transpose([0, 3, 1, 2]) }
        let dy = randomTensor([4, 8, 6, 5], seed: 9)
        XCTAssertEqual(g[0], Variable(dy).transpose([0, 2, 3, 1]).value)
    }
}
