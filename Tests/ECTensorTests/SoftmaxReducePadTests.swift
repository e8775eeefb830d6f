import Foundation
import ECTestSupport
import XCTest
@testable import ECTensor

final class SoftmaxTests: XCTestCase {
    /// Softmax along `axis` in Double, slice by slice.
    func naiveSoftmax(_ x: Tensor, axis: Int) -> Tensor {
        let strides = rowMajorStrides(x.shape)
        var y = Tensor(shape: x.shape)
        for index in allIndices(x.shape) where index[axis] == 0 {
            let base = zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }
            let values = (0..<x.shape[axis]).map { Double(x[flat: base + $0 * strides[axis]]) }
            let peak = values.max()!, total = values.reduce(0) { $0 + Foundation.exp($1 - peak) }
            for (k, v) in values.enumerated() { y[flat: base + k * strides[axis]] = Float(Foundation.exp(v - peak) / total) }
        }
        return y
    }

    func testForwardAndGradients() {
        for (shape, axis) in [([3, 7], -1), ([2, 5, 3, 4], 1), ([4, 3], 0), ([2, 3, 4], 2), ([5], 0)] {
            let x = randomTensor(shape, seed: UInt64(shape.count), std: 2)
            let a = axis < 0 ? axis + shape.count : axis
            assertClose(Variable(x).softmax(axis: axis).value, naiveSoftmax(x, axis: a), absolute: 1e-5, relative: 1e-5, "\(shape) axis \(axis)")
            assertGradientsMatch([x]) { $0[0].softmax(axis: axis) }
        }
    }

    func testLargeLogitsAreStable() {
        let y = Variable(Tensor(shape: [2, 3], scalars: [1000, 0, -1000, 5, 5, 5])).softmax().value
        assertClose(y, Tensor(shape: [2, 3], scalars: [1, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3]), absolute: 1e-5, relative: 1e-5)
    }
}

final class ReduceTests: XCTestCase {
    /// Sums (or means) over `axes` in Double, by visiting every input index.
    func naiveReduce(_ x: Tensor, axes: Set<Int>, mean: Bool) -> Tensor {
        let kept = x.shape.indices.map { axes.contains($0) ? 1 : x.shape[$0] }
        var sums = [Double](repeating: 0, count: Tensor.elementCount(kept))
        let keptStrides = rowMajorStrides(kept)
        for (i, index) in allIndices(x.shape).enumerated() {
            let o = index.indices.reduce(0) { $0 + (axes.contains($1) ? 0 : index[$1]) * keptStrides[$1] }
            sums[o] += Double(x[flat: i])
        }
        let count = Double(axes.reduce(1) { $0 * x.shape[$1] })
        return Tensor(shape: kept, scalars: sums.map { Float(mean ? $0 / count : $0) })
    }

    func testReduceMeanAndSum() {
        let x = randomTensor([2, 3, 4, 5], seed: 1)
        for axes in [[1, 2], [-1], [0, 3], [], [0, 1, 2, 3], [2]] {
            let set = Set(axes.isEmpty ? [0, 1, 2, 3] : axes.map { $0 < 0 ? $0 + 4 : $0 })
            for mean in [true, false] {
                let expected = naiveReduce(x, axes: set, mean: mean)
                for keepDims in [true, false] {
                    let y = mean ? Variable(x).reduceMean(axes: axes, keepDims: keepDims) : Variable(x).reduceSum(axes: axes, keepDims: keepDims)
                    let shape = keepDims ? expected.shape : (0..<4).filter { !set.contains($0) }.map { x.shape[$0] }
                    assertClose(y.value, expected.reshaped(shape), absolute: 1e-5, relative: 1e-5, "axes \(axes) mean \(mean) keepDims \(keepDims)")
                    assertGradientsMatch([x]) { v in
                        mean ? v[0].reduceMean(axes: axes, keepDims: keepDims) : v[0].reduceSum(axes: axes, keepDims: keepDims)
                    }
                }
            }
        }
    }

    func testGlobalAveragePoolAsReduceMean() {
        // tf2onnx's global average pooling: ReduceMean over H, W of NHWC.
        let x = randomTensor([3, 5, 6, 8], seed: 2)
        assertClose(Variable(x).reduceMean(axes: [1, 2], keepDims: false).value, Variable(x).globalAvgPool().value, absolute: 1e-5, relative: 1e-5)
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let x = randomTensor([16, 14, 14, 64], seed: 3)
        for axes in [[1, 2], [0, 1, 2], [3]] {
            let run = { valueAndGradients([x]) { $0[0].reduceMean(axes: axes) } }
            let one = withWorkers(1, run), two = withWorkers(2, run), three = withWorkers(3, run)
            XCTAssertEqual(one.0, two.0); XCTAssertEqual(one.0, three.0)
            XCTAssertEqual(one.1[0], two.1[0]); XCTAssertEqual(one.1[0], three.1[0])
        }
    }
}

final class PadTests: XCTestCase {
    func testPadMatchesNaiveReference() {
        let x = randomTensor([2, 3, 4, 3], seed: 1)
        for (t, b, l, r, fill) in [(1, 0, 2, 1, Float(0)), (0, 0, 0, 0, 0), (2, 3, 0, 0, 0), (1, 1, 1, 1, -1.5)] {
            let outShape = [2, 3 + t + b, 4 + l + r, 3]
            let expected = Tensor(shape: outShape, scalars: allIndices(outShape).map { i in
                let iy = i[1] - t, ix = i[2] - l
                return iy >= 0 && iy < 3 && ix >= 0 && ix < 4 ? x[flat: ((i[0] * 3 + iy) * 4 + ix) * 3 + i[3]] : fill
            })
            XCTAssertEqual(Variable(x).pad(top: t, bottom: b, left: l, right: r, value: fill).value, expected)
            assertGradientsMatch([x]) { $0[0].pad(top: t, bottom: b, left: l, right: r, value: fill) }
        }
    }

    func testPadThenValidConvEqualsPaddedConv() {
        // An ONNX Pad feeding a Conv is the same as the Conv's own pads.
        let x = randomTensor([2, 5, 6, 3], seed: 2), w = randomTensor([3, 3, 3, 4], seed: 3)
        let pads = Padding2D(top: 1, bottom: 2, left: 0, right: 1)
        let a = Variable(x).pad(top: 1, bottom: 2, left: 0, right: 1).conv2d(weight: Variable(w), bias: nil, padding: .valid).value
        let b = Variable(x).conv2d(weight: Variable(w), bias: nil, pads: pads).value
        assertClose(a, b, absolute: 1e-5, relative: 1e-5)
    }
}
