import Foundation
import ECTestSupport
import XCTest
@testable import ECTensor

/// ONNX pooling written the naive way (as onnx.reference's loop): the output size from the
/// floating-point formula, then for each window the positions of the padded input it covers
/// (`< in + before + after`), each either an input value or padding.
func naivePool2d(_ x: Tensor, max isMax: Bool, kernel: (Int, Int), strides: (Int, Int), pads: Padding2D,
                 ceilMode: Bool, countIncludePad: Bool) -> Tensor {
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    func outSize(_ size: Int, _ k: Int, _ s: Int, _ before: Int, _ after: Int) -> Int {
        let exact = Double(size + before + after - k) / Double(s) + 1
        var out = Int(ceilMode ? exact.rounded(.up) : exact.rounded(.down))
        if ceilMode && (out - 1) * s >= size + before { out -= 1 }  // no window starting in the end padding
        return out
    }
    let oh = outSize(h, kernel.0, strides.0, pads.top, pads.bottom), ow = outSize(w, kernel.1, strides.1, pads.left, pads.right)
    var y = [Float]()
    for img in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for ch in 0..<c {
        var values: [Float?] = []
        for py in (oy * strides.0)..<(oy * strides.0 + kernel.0) where py < h + pads.top + pads.bottom {
            for px in (ox * strides.1)..<(ox * strides.1 + kernel.1) where px < w + pads.left + pads.right {
                let iy = py - pads.top, ix = px - pads.left
                values.append(iy >= 0 && iy < h && ix >= 0 && ix < w ? x[flat: ((img * h + iy) * w + ix) * c + ch] : nil)
            }
        }
        let real = values.compactMap { $0 }
        if isMax {
            y.append(real.max()!)
        } else {
            let sum = real.reduce(0.0) { $0 + Double($1) }
            y.append(Float(sum / Double(countIncludePad ? values.count : real.count)))
        }
    } } } }
    return Tensor(shape: [n, oh, ow, c], scalars: y)
}

final class Pool2DTests: XCTestCase {
    let cases: [(x: [Int], k: (Int, Int), s: (Int, Int), pads: Padding2D, ceil: Bool)] = [
        ([2, 7, 7, 3], (3, 3), (2, 2), Padding2D(top: 1, bottom: 1, left: 1, right: 1), false),  // ResNet stem
        ([2, 6, 7, 2], (2, 3), (2, 1), Padding2D(top: 0, bottom: 1, left: 1, right: 0), false),  // asymmetric
        ([1, 6, 6, 2], (3, 3), (2, 2), .zero, true),                                              // ceil adds a window
        ([2, 5, 8, 3], (3, 2), (2, 3), Padding2D(top: 1, bottom: 2, left: 0, right: 1), true),   // ceil past the padding
        ([1, 3, 3, 2], (2, 2), (2, 2), Padding2D(top: 1, bottom: 1, left: 1, right: 1), true),   // ceil window dropped
        ([2, 5, 5, 2], (3, 3), (1, 1), Padding2D(top: 1, bottom: 1, left: 1, right: 1), false),  // overlapping
        ([2, 4, 6, 3], (2, 2), (2, 2), .zero, false),                                            // the 2×2 fast path
        ([1, 5, 5, 2], (3, 3), (2, 2), .zero, true),                                             // ceil adds nothing
        ([2, 6, 5, 11], (3, 3), (1, 1), Padding2D(top: 1, bottom: 1, left: 1, right: 1), false), // 8 channels at once + 3
        ([1, 7, 6, 16], (3, 2), (2, 2), Padding2D(top: 1, bottom: 0, left: 1, right: 1), true),
    ]

    func testForwardMatchesNaiveReference() {
        for (i, t) in cases.enumerated() {
            let x = randomTensor(t.x, seed: UInt64(i))
            let maxPooled = Variable(x).maxPool2d(kernelHeight: t.k.0, kernelWidth: t.k.1, strideHeight: t.s.0, strideWidth: t.s.1,
                                                  pads: t.pads, ceilMode: t.ceil).value
            XCTAssertEqual(maxPooled, naivePool2d(x, max: true, kernel: t.k, strides: t.s, pads: t.pads, ceilMode: t.ceil,
                                                  countIncludePad: false), "max case \(i)")
            for include in [false, true] {
                let averaged = Variable(x).avgPool2d(kernelHeight: t.k.0, kernelWidth: t.k.1, strideHeight: t.s.0, strideWidth: t.s.1,
                                                     pads: t.pads, ceilMode: t.ceil, countIncludePad: include).value
                assertClose(averaged, naivePool2d(x, max: false, kernel: t.k, strides: t.s, pads: t.pads, ceilMode: t.ceil,
                                                  countIncludePad: include), absolute: 1e-5, relative: 1e-5, "avg case \(i) countIncludePad \(include)")
            }
        }
    }

    func testPublishedExamples() {
        // ONNX backend test `averagepool_2d_ceil`: 4×4, kernel 3, stride 2, ceil_mode.
        let x = Tensor(shape: [1, 4, 4, 1], scalars: (1...16).map(Float.init))
        let y = Variable(x).avgPool2d(kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, ceilMode: true)
        assertClose(y.value, Tensor(shape: [1, 2, 2, 1], scalars: [6, 7.5, 12, 13.5]), absolute: 1e-5, relative: 1e-5)
        // ONNX `maxpool_2d_ceil`: the same window over the same input.
        let m = Variable(x).maxPool2d(kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, ceilMode: true)
        XCTAssertEqual(m.value.scalars, [11, 12, 15, 16])
        // PyTorch avg_pool2d(arange(9).view(1,1,3,3), 2, 2, ceil_mode=True, count_include_pad=True):
        // the ceil-mode windows past the (empty) padding divide by their in-range size.
        let z = Tensor(shape: [1, 3, 3, 1], scalars: (0..<9).map(Float.init))
        let a = Variable(z).avgPool2d(kernelHeight: 2, kernelWidth: 2, strideHeight: 2, strideWidth: 2, ceilMode: true,
                                      countIncludePad: true)
        assertClose(a.value, Tensor(shape: [1, 2, 2, 1], scalars: [2, 3.5, 6.5, 8]), absolute: 1e-5, relative: 1e-5)
        // ONNX `averagepool_2d_pads_count_include_pad`-style: 3×3 window, pad 1, the corner sees 4 values of 9.
        let p = Variable(z).avgPool2d(kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                                      pads: Padding2D(top: 1, bottom: 1, left: 1, right: 1), countIncludePad: true)
        XCTAssertEqual(p.value[flat: 0], (0 + 1 + 3 + 4) / 9, accuracy: 1e-6)
        let q = Variable(z).avgPool2d(kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                                      pads: Padding2D(top: 1, bottom: 1, left: 1, right: 1), countIncludePad: false)
        XCTAssertEqual(q.value[flat: 0], (0 + 1 + 3 + 4) / 4, accuracy: 1e-6)
    }

    func testGeometry() {
        // A window that would start in the end padding is not produced (ONNX, PyTorch).
        let g = Pool2DGeometry(input: [1, 3, 3, 1], kernelHeight: 2, kernelWidth: 2, strideHeight: 2, strideWidth: 2,
                               pads: Padding2D(top: 1, bottom: 1, left: 1, right: 1), ceilMode: true)
        XCTAssertEqual([g.outHeight, g.outWidth], [2, 2])
        let h = Pool2DGeometry(input: [1, 6, 7, 1], kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, ceilMode: true)
        XCTAssertEqual([h.outHeight, h.outWidth], [3, 3])
        let f = Pool2DGeometry(input: [1, 6, 7, 1], kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2)
        XCTAssertEqual([f.outHeight, f.outWidth], [2, 3])
    }

    func testGradientsMatchFiniteDifferences() {
        for (i, t) in cases.enumerated() {
            let x = separatedTensor(t.x, seed: UInt64(20 + i))
            assertGradientsMatch([x]) { v in
                v[0].maxPool2d(kernelHeight: t.k.0, kernelWidth: t.k.1, strideHeight: t.s.0, strideWidth: t.s.1,
                               pads: t.pads, ceilMode: t.ceil)
            }
            for include in [false, true] {
                assertGradientsMatch([randomTensor(t.x, seed: UInt64(40 + i))]) { v in
                    v[0].avgPool2d(kernelHeight: t.k.0, kernelWidth: t.k.1, strideHeight: t.s.0, strideWidth: t.s.1,
                                   pads: t.pads, ceilMode: t.ceil, countIncludePad: include)
                }
            }
        }
    }

    func testMaxGradientGoesToTheFirstMaximum() {
        // Ties: the first window position in row-major order takes the whole gradient — in the
        // vector lanes (channels 0..<8) and the scalar remainder (channel 8) alike.
        let pixels: [Float] = [1, 5, 5, 5, 0, 5]
        let x = Tensor(shape: [1, 2, 3, 9], scalars: pixels.flatMap { [Float](repeating: $0, count: 9) })
        let (_, g) = valueAndGradients([x]) { $0[0].maxPool2d(kernelHeight: 2, kernelWidth: 3, strideHeight: 1, strideWidth: 1,
                                                               pads: Padding2D(left: 1)) }
        let seed = randomTensor([1, 1, 2, 9], seed: 5)
        for ch in 0..<9 {
            XCTAssertEqual((0..<6).map { g[0]![flat: $0 * 9 + ch] }, [0, seed[flat: ch] + seed[flat: 9 + ch], 0, 0, 0, 0], "channel \(ch)")
        }
    }

    func testGeneralPathEqualsTheSquareKernels() {
        // Square windows other than 2×2/2 run the general kernels: the same values and gradients
        // as maxPool2d(size:stride:).
        for (size, stride) in [(3, 1), (3, 2), (2, 1), (2, 2)] {
            let x = separatedTensor([3, 7, 8, 10], seed: UInt64(size * 10 + stride))
            let old = valueAndGradients([x]) { $0[0].maxPool2d(size: size, stride: stride) }
            let new = valueAndGradients([x]) { $0[0].maxPool2d(kernelHeight: size, kernelWidth: size, strideHeight: stride, strideWidth: stride) }
            XCTAssertEqual(old.0, new.0, "\(size)/\(stride)")
            XCTAssertEqual(old.1[0], new.1[0], "\(size)/\(stride)")
        }
    }

    func testGlobalMaxPool() {
        let x = separatedTensor([2, 3, 4, 5], seed: 50)
        let y = Variable(x).globalMaxPool().value
        XCTAssertEqual(y.shape, [2, 5])
        for n in 0..<2 { for c in 0..<5 {
            XCTAssertEqual(y[flat: n * 5 + c], (0..<12).map { x[flat: (n * 12 + $0) * 5 + c] }.max()!)
        } }
        assertGradientsMatch([x]) { $0[0].globalMaxPool() }
        assertGradientsMatch([separatedTensor([2, 3, 3, 2], seed: 51)]) { $0[0].globalMaxPool() }
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let x = randomTensor([8, 15, 15, 32], seed: 60)
        let pads = Padding2D(top: 1, bottom: 1, left: 1, right: 1)
        let run = {
            valueAndGradients([x]) { v in
                v[0].maxPool2d(kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, pads: pads, ceilMode: true)
                    + v[0].avgPool2d(kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, pads: pads, ceilMode: true)
            }
        }
        let one = withWorkers(1, run), two = withWorkers(2, run), three = withWorkers(3, run)
        XCTAssertEqual(one.0, two.0); XCTAssertEqual(one.1[0], two.1[0])
        XCTAssertEqual(one.0, three.0); XCTAssertEqual(one.1[0], three.1[0])
    }
}
