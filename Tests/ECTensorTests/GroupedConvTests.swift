import ECTestSupport
import XCTest
@testable import ECTensor

/// ONNX `Conv` (dilation 1) written the naive way: NHWC input, HWIO kernel `[kh, kw, cin/groups, cout]`,
/// output channel `co` of group `co / (cout/groups)` reads that group's input channels.
func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, strideHeight sh: Int, strideWidth sw: Int, pads: Padding2D,
                 groups: Int) -> Tensor {
    let (n, h, wd, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (kh, kw, cig, cout) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    precondition(cig * groups == cin)
    let cog = cout / groups
    let oh = (h + pads.top + pads.bottom - kh) / sh + 1, ow = (wd + pads.left + pads.right - kw) / sw + 1
    var y = [Float](repeating: 0, count: n * oh * ow * cout)
    for img in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for co in 0..<cout {
        let group = co / cog
        var s = Double(b?[flat: co] ?? 0)
        for ky in 0..<kh { for kx in 0..<kw { for ci in 0..<cig {
            let iy = oy * sh - pads.top + ky, ix = ox * sw - pads.left + kx
            guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
            s += Double(x[flat: ((img * h + iy) * wd + ix) * cin + group * cig + ci]) * Double(w[flat: ((ky * kw + kx) * cig + ci) * cout + co])
        } } }
        y[((img * oh + oy) * ow + ox) * cout + co] = Float(s)
    } } } }
    return Tensor(shape: [n, oh, ow, cout], scalars: y)
}

/// Runs `body` with grouped convolutions forced through the direct kernel (`true`) or
/// im2col + per-group GEMMs (`false`), then restores the measured choice.
func withConvPath<R>(direct: Bool, _ body: () -> R) -> R {
    let saved = Conv2DGeometry.directGroupInChannels
    Conv2DGeometry.directGroupInChannels = direct ? Int.max : 0
    defer { Conv2DGeometry.directGroupInChannels = saved }
    return body()
}

/// Convolution with explicit pads, two strides and groups: forward against the naive ONNX
/// definition, backward against finite differences — every grouped case through both the
/// direct kernel and the per-group GEMMs.
final class GroupedConvTests: XCTestCase {
    /// (input, kernel, strides, pads, groups): groups 1, 2, 4, depthwise ×1 and ×2.
    let cases: [(x: [Int], w: [Int], sh: Int, sw: Int, pads: Padding2D, groups: Int)] = [
        ([2, 6, 7, 4], [3, 3, 4, 5], 1, 1, Padding2D(top: 1, bottom: 0, left: 2, right: 1), 1),
        ([2, 7, 6, 4], [3, 2, 2, 6], 2, 1, Padding2D(top: 0, bottom: 2, left: 1, right: 0), 2),
        ([1, 5, 6, 8], [3, 3, 2, 8], 1, 2, Padding2D(top: 1, bottom: 1, left: 1, right: 1), 4),
        ([2, 6, 5, 4], [1, 1, 2, 6], 1, 1, .zero, 2),                                     // grouped pointwise
        ([2, 6, 6, 5], [3, 3, 1, 5], 1, 1, Padding2D(top: 1, bottom: 1, left: 1, right: 1), 5),  // depthwise ×1
        ([2, 7, 6, 3], [3, 3, 1, 3], 2, 1, Padding2D(top: 2, bottom: 0, left: 0, right: 1), 3),  // depthwise, asymmetric
        ([1, 6, 5, 3], [3, 2, 1, 6], 2, 2, Padding2D(top: 1, bottom: 1, left: 0, right: 1), 3),  // depthwise ×2
        ([1, 3, 3, 2], [2, 2, 1, 2], 1, 1, Padding2D(top: 3, bottom: 2, left: 0, right: 3), 2),  // windows wholly in the padding
        ([2, 5, 5, 3], [5, 5, 1, 3], 2, 2, Padding2D(top: 2, bottom: 2, left: 2, right: 2), 3),  // depthwise 5×5
        ([2, 5, 6, 10], [3, 3, 5, 4], 1, 1, Padding2D(top: 0, bottom: 1, left: 1, right: 1), 2), // 5 per group
        ([1, 4, 5, 12], [1, 1, 6, 4], 2, 1, .zero, 2),                                    // grouped strided 1×1
    ]

    func testForwardMatchesNaiveReference() {
        for (i, c) in cases.enumerated() { for direct in [true, false] { withConvPath(direct: direct) {
            let x = randomTensor(c.x, seed: UInt64(10 + i)), w = randomTensor(c.w, seed: UInt64(30 + i), std: 0.5)
            let b = randomTensor([c.w[3]], seed: UInt64(50 + i))
            let expected = naiveConv2d(x, w, b, strideHeight: c.sh, strideWidth: c.sw, pads: c.pads, groups: c.groups)
            // Inference (patches a chunk at a time) and training (whole patch matrix kept).
            let inference = Variable(x).conv2d(weight: Variable(w), bias: Variable(b), strideHeight: c.sh, strideWidth: c.sw,
                                               pads: c.pads, groups: c.groups).value
            let (training, _) = valueAndGradients([x, w, b]) { v in
                v[0].conv2d(weight: v[1], bias: v[2], strideHeight: c.sh, strideWidth: c.sw, pads: c.pads, groups: c.groups)
            }
            assertClose(inference, expected, absolute: 1e-5, relative: 1e-5, "case \(i) direct \(direct)")
            assertClose(training, expected, absolute: 1e-5, relative: 1e-5, "case \(i) direct \(direct)")
            let noBias = Variable(x).conv2d(weight: Variable(w), bias: nil, strideHeight: c.sh, strideWidth: c.sw,
                                            pads: c.pads, groups: c.groups).value
            assertClose(noBias, naiveConv2d(x, w, nil, strideHeight: c.sh, strideWidth: c.sw, pads: c.pads, groups: c.groups), absolute: 1e-5, relative: 1e-5,
                        "case \(i) without bias, direct \(direct)")
        } } }
    }

    func testGradientsMatchFiniteDifferences() {
        for (i, c) in cases.enumerated() { for direct in [true, false] where c.groups > 1 || !direct { withConvPath(direct: direct) {
            let x = randomTensor(c.x, seed: UInt64(70 + i)), w = randomTensor(c.w, seed: UInt64(90 + i), std: 0.5)
            let b = randomTensor([c.w[3]], seed: UInt64(110 + i))
            assertGradientsMatch([x, w, b]) { v in
                v[0].conv2d(weight: v[1], bias: v[2], strideHeight: c.sh, strideWidth: c.sw, pads: c.pads, groups: c.groups)
            }
            assertGradientsMatch([x, w]) { v in
                v[0].conv2d(weight: v[1], bias: nil, strideHeight: c.sh, strideWidth: c.sw, pads: c.pads, groups: c.groups)
            }
        } } }
    }

    func testOnlySomeInputsNeedGradients() {
        // A constant weight (frozen) or a constant input still routes the rest, on both paths.
        for (xShape, wShape, groups) in [([2, 5, 5, 4], [3, 3, 1, 4], 4), ([2, 5, 5, 4], [3, 3, 1, 8], 4),
                                         ([2, 5, 5, 4], [3, 3, 2, 6], 2)] {
            for direct in [true, false] { withConvPath(direct: direct) {
                let x = randomTensor(xShape, seed: 1), w = randomTensor(wShape, seed: 2, std: 0.5)
                assertGradientsMatch([x]) { v in v[0].conv2d(weight: Variable(w), bias: nil, groups: groups) }
                assertGradientsMatch([w]) { v in Variable(x).conv2d(weight: v[0], bias: nil, groups: groups) }
            } }
        }
    }

    func testFusedActivations() {
        for (wShape, groups) in [([3, 3, 1, 4], 4), ([3, 3, 2, 4], 2), ([3, 3, 4, 3], 1)] {
            let x = randomTensor([2, 4, 5, 4], seed: 3), w = randomTensor(wShape, seed: 4, std: 0.5)
            let b = randomTensor([wShape[3]], seed: 5, std: 0.1)
            for activation in [Activation.relu, .relu6] {
                let fused = Variable(x).conv2d(weight: Variable(w), bias: Variable(b), groups: groups, activation: activation).value
                let plain = Variable(x).conv2d(weight: Variable(w), bias: Variable(b), groups: groups).value
                let expected = activation == .relu ? Variable(plain).relu().value : Variable(plain).clip(min: 0, max: 6).value
                XCTAssertEqual(fused, expected, "\(activation) groups \(groups)")
                // Scaled up so that some outputs exceed 6.
                assertGradientsMatch([x.scaled(by: 4), w, b], epsilon: 1e-3) { v in
                    v[0].conv2d(weight: v[1], bias: v[2], groups: groups, activation: activation)
                }
            }
        }
    }

    func testGroupsOneIsTheSamePathAsPaddingEnum() {
        // The explicit pads of `.same`/`.valid` give bit-identical results through either entry point.
        let x = randomTensor([2, 7, 6, 3], seed: 6), w = randomTensor([3, 3, 3, 4], seed: 7)
        for (stride, padding) in [(1, Padding.same), (2, .same), (1, .valid), (2, .valid)] {
            let pads = padding.explicit(height: 7, width: 6, kernelHeight: 3, kernelWidth: 3, strideHeight: stride, strideWidth: stride)
            let a = valueAndGradients([x, w]) { v in v[0].conv2d(weight: v[1], bias: nil, stride: stride, padding: padding) }
            let b = valueAndGradients([x, w]) { v in
                v[0].conv2d(weight: v[1], bias: nil, strideHeight: stride, strideWidth: stride, pads: pads, groups: 1)
            }
            XCTAssertEqual(a.0, b.0)
            XCTAssertEqual(a.1[0], b.1[0])
            XCTAssertEqual(a.1[1], b.1[1])
        }
    }

    func testDepthwiseAndNarrowGroupsEqualNaiveGroupedConv() {
        // MobileNet-sized channels (the kernel's vector loops): depthwise ×1 and ×2, and groups of
        // 2 and 4 input channels (ResNeXt-style), all on the direct kernel by default.
        for (cin, wShape, groups) in [(37, [3, 3, 1, 37], 37), (37, [3, 3, 1, 74], 37), (36, [3, 3, 2, 36], 18), (40, [3, 3, 4, 20], 10)] {
            let x = randomTensor([3, 9, 8, cin], seed: 8), w = randomTensor(wShape, seed: 9)
            let b = randomTensor([wShape[3]], seed: 10)
            for (sh, sw) in [(1, 1), (2, 2), (2, 1)] {
                let pads = Padding2D(top: 1, bottom: 1, left: 1, right: 1)
                let y = Variable(x).conv2d(weight: Variable(w), bias: Variable(b), strideHeight: sh, strideWidth: sw,
                                           pads: pads, groups: groups).value
                assertClose(y, naiveConv2d(x, w, b, strideHeight: sh, strideWidth: sw, pads: pads, groups: groups), absolute: 1e-5, relative: 1e-5, "\(wShape)")
            }
        }
    }

    func testDirectKernelMatchesGroupedGEMMPath() {
        // The same problems through both paths: values and all three gradients.
        let problems: [([Int], [Int], Int)] = [([3, 7, 6, 32], [3, 3, 1, 32], 32), ([2, 6, 5, 8], [3, 3, 1, 24], 8),
                                                ([2, 6, 6, 16], [3, 3, 4, 16], 4), ([2, 5, 7, 12], [3, 3, 2, 18], 6)]
        for (i, (xShape, wShape, groups)) in problems.enumerated() {
            let x = randomTensor(xShape, seed: UInt64(11 + i)), w = randomTensor(wShape, seed: UInt64(21 + i))
            let b = randomTensor([wShape[3]], seed: UInt64(31 + i))
            let pads = Padding2D(top: 1, bottom: 0, left: 0, right: 1)
            let run = {
                valueAndGradients([x, w, b]) { v in
                    v[0].conv2d(weight: v[1], bias: v[2], strideHeight: 2, strideWidth: 1, pads: pads, groups: groups)
                }
            }
            let direct = withConvPath(direct: true, run), gemm = withConvPath(direct: false, run)
            assertClose(direct.0, gemm.0, absolute: 1e-5, relative: 1e-5, "\(wShape)")
            for k in 0..<3 { assertClose(direct.1[k]!, gemm.1[k]!, absolute: 1e-5, relative: 1e-5, "\(wShape) input \(k)") }
        }
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let x = randomTensor([8, 10, 10, 32], seed: 14)
        for (w, groups) in [(randomTensor([3, 3, 1, 32], seed: 16), 32), (randomTensor([3, 3, 8, 32], seed: 17), 4),
                            (randomTensor([3, 3, 2, 32], seed: 18), 16), (randomTensor([3, 3, 1, 64], seed: 19), 32)] {
            let b = randomTensor([w.shape[3]], seed: 15)
            let run = { valueAndGradients([x, w, b]) { v in v[0].conv2d(weight: v[1], bias: v[2], stride: 2, groups: groups) } }
            let one = withWorkers(1, run), two = withWorkers(2, run), three = withWorkers(3, run)
            for other in [two, three] {
                XCTAssertEqual(one.0, other.0)
                for i in 0..<3 { XCTAssertEqual(one.1[i], other.1[i], "groups \(groups) input \(i)") }
            }
        }
    }

    func testGeometry() {
        let g = Conv2DGeometry(input: [1, 7, 8, 6], kernel: [3, 2, 3, 4], strideHeight: 2, strideWidth: 3,
                               pads: Padding2D(onnx: [1, 0, 2, 1]), groups: 2)
        XCTAssertEqual([g.padTop, g.padLeft, g.padBottom, g.padRight], [1, 0, 2, 1])
        XCTAssertEqual([g.outHeight, g.outWidth], [(7 + 3 - 3) / 2 + 1, (8 + 1 - 2) / 3 + 1])
        XCTAssertEqual([g.groupInChannels, g.groupOutChannels, g.groupPatch, g.patch], [3, 2, 18, 36])
        XCTAssertFalse(g.isDepthwise)
        XCTAssertTrue(g.usesDirectKernel)  // 3 input channels per group
        XCTAssertFalse(Conv2DGeometry(input: [1, 4, 4, 16], kernel: [3, 3, 8, 8], stride: 1, padding: .same, groups: 2).usesDirectKernel)
        XCTAssertFalse(Conv2DGeometry(input: [1, 4, 4, 2], kernel: [3, 3, 2, 8], stride: 1, padding: .same).usesDirectKernel)
        XCTAssertTrue(Conv2DGeometry(input: [1, 4, 4, 6], kernel: [3, 3, 1, 12], stride: 1, padding: .same, groups: 6).isDepthwise)
        // TensorFlow's SAME = ONNX SAME_UPPER: the odd padding row at the end.
        let same = Padding.same.explicit(height: 6, width: 5, kernelHeight: 3, kernelWidth: 4, strideHeight: 2, strideWidth: 1)
        XCTAssertEqual(same, Padding2D(top: 0, bottom: 1, left: 1, right: 2))
        for (size, k, s) in [(5, 3, 1), (6, 3, 2), (7, 3, 2), (28, 5, 3), (4, 1, 2), (3, 5, 1)] {
            let g = Conv2DGeometry(input: [1, size, size, 1], kernel: [k, k, 1, 1], stride: s, padding: .same)
            XCTAssertEqual(g.outHeight, (size + s - 1) / s, "same: ceil(in / stride)")
        }
        // The Padding enum still encodes as its raw string.
        XCTAssertEqual(String(data: try! JSONEncoder().encode([Padding.same]), encoding: .utf8), "[\"same\"]")
    }
}
