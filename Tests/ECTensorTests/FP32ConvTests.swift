import XCTest
@testable import ECTensor

/// The engine's convolution kernels (`FP32Conv`, on each FP32 path that has them) against the
/// im2col + sgemm route on the same path: the forward value (bias and activation fused) and the
/// weight gradient bit for bit, the fused 2×2 max pool bit for bit against conv → pool, the
/// input gradient within a derived rounding bound of a double-precision reference and of the
/// im2col route; results independent of the thread count; finite differences on every path.
///
/// Input-gradient bound (Higham §3.1): an element of dx is a sum of T = kh·kw·cout/groups
/// products dy·w (those whose window covers it). The kernels add them in one chain of fused
/// multiply-adds (error ≤ γ(T)·Σ|dy·w|); the im2col route in a chain per tap (cout/groups
/// products) and then adds the taps (≤ γ(cout/groups + kh·kw)·Σ|dy·w|), with γ(n) = n·u/(1 − n·u),
/// u = 2⁻²⁴. So each is within γ(T + kh·kw)·Σ|dy·w| of the exact sum, and within twice that of
/// each other.
final class FP32ConvTests: XCTestCase {
    /// The FP32 paths with convolution kernels on this CPU.
    let paths = [FP32Kernels.Path.avx512, .avx2].filter { $0.isSupported }

    struct Case: CustomStringConvertible {
        var x: [Int], w: [Int]
        var sh = 1, sw = 1
        var pads = Padding2D.zero
        var groups = 1
        var bias = true
        var activation = Activation.identity
        var description: String {
            "x \(x) w \(w) strides \(sh)×\(sw) pads \(pads) groups \(groups) bias \(bias) \(activation)"
        }
        func geometry() -> Conv2DGeometry {
            Conv2DGeometry(input: x, kernel: w, strideHeight: sh, strideWidth: sw, pads: pads, groups: groups)
        }
    }

    static let same1 = Padding2D(top: 1, bottom: 1, left: 1, right: 1)
    let cases: [Case] = [
        Case(x: [3, 28, 28, 1], w: [3, 3, 1, 32], pads: same1, activation: .relu),               // fmnist conv1
        Case(x: [2, 14, 14, 32], w: [3, 3, 32, 64], pads: same1),                               // fmnist conv2
        Case(x: [1, 9, 11, 48], w: [3, 3, 48, 20], pads: same1, activation: .relu6),            // k = 432: two k blocks
        Case(x: [2, 9, 8, 5], w: [3, 2, 5, 7], sh: 2, sw: 1, pads: Padding2D(top: 1, bottom: 0, left: 0, right: 1)),
        Case(x: [2, 10, 10, 6], w: [3, 3, 6, 33], sh: 2, sw: 2, bias: false, activation: .relu),
        Case(x: [2, 7, 6, 12], w: [3, 3, 6, 10], pads: same1, groups: 2),                       // 6 channels per group
        Case(x: [2, 6, 9, 30], w: [3, 3, 10, 21], sh: 1, sw: 2, pads: same1, groups: 3, activation: .relu),
        Case(x: [1, 6, 37, 3], w: [5, 5, 3, 16], pads: Padding2D(top: 2, bottom: 2, left: 2, right: 2)),  // 37 = 2·14 + 9
        Case(x: [2, 5, 17, 8], w: [1, 3, 8, 40], pads: Padding2D(top: 0, bottom: 0, left: 1, right: 1), activation: .relu6),
        Case(x: [1, 4, 4, 3], w: [2, 2, 3, 4], pads: Padding2D(top: 2, bottom: 1, left: 0, right: 3)),  // pads ≥ kernel
        Case(x: [2, 6, 6, 8], w: [1, 1, 8, 12], sh: 2, sw: 2, bias: false),                     // strided 1×1
        Case(x: [1, 5, 5, 4], w: [3, 3, 4, 130], pads: same1, activation: .relu),               // 130 = 4·32 + 2
        Case(x: [3, 7, 7, 16], w: [3, 3, 16, 16], bias: false),                                 // valid, one vector wide
        // Narrow inputs (≤ 4 channels): dx from W·dyᵀ shifted onto the image, strided and padded.
        Case(x: [2, 9, 10, 2], w: [3, 3, 2, 5], sh: 2, sw: 2, pads: same1, activation: .relu),
        Case(x: [2, 8, 11, 1], w: [2, 3, 1, 17], sh: 1, sw: 3, pads: Padding2D(top: 0, bottom: 1, left: 2, right: 0)),
    ]

    /// Runs `body` on FP32 path `path` with the convolution kernels on or off.
    func on<R>(_ path: FP32Kernels.Path, kernels: Bool, _ body: () -> R) -> R {
        let (savedPath, savedEnabled) = (FP32Kernels.active, FP32Conv.enabled)
        FP32Kernels.active = path
        FP32Conv.enabled = kernels
        defer { FP32Kernels.active = savedPath; FP32Conv.enabled = savedEnabled }
        return body()
    }

    func operands(_ c: Case, seed: UInt64) -> [Tensor] {
        let x = randomTensor(c.x, seed: seed), w = randomTensor(c.w, seed: seed + 1, std: 0.5)
        return c.bias ? [x, w, randomTensor([c.w[3]], seed: seed + 2)] : [x, w]
    }

    func conv(_ c: Case) -> ([Variable]) -> Variable {
        { v in
            v[0].conv2d(weight: v[1], bias: c.bias ? v[2] : nil, strideHeight: c.sh, strideWidth: c.sw, pads: c.pads,
                        groups: c.groups, activation: c.activation)
        }
    }

    func assertBitEqual(_ a: Tensor, _ b: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, message, file: file, line: line)
        a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { q in
            if let i = p.indices.first(where: { p[$0].bitPattern != q[$0].bitPattern }) {
                XCTFail("element \(i): \(p[i]) ≠ \(q[i]) — \(message)", file: file, line: line)
            }
        } }
    }

    /// The exact input gradient (double) and its bound, for the pre-activation gradient `dz`.
    func exactInputGradient(_ c: Case, w: Tensor, dz: Tensor) -> (value: [Double], bound: [Double]) {
        let g = c.geometry()
        let (h, wd, cin, cout) = (g.height, g.width, g.inChannels, g.outChannels)
        let cig = g.groupInChannels, cog = g.groupOutChannels
        var sum = [Double](repeating: 0, count: g.batch * h * wd * cin), magnitude = sum
        for n in 0..<g.batch { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth { for co in 0..<cout {
            let d = Double(dz[flat: ((n * g.outHeight + oy) * g.outWidth + ox) * cout + co]), group = co / cog
            for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
                let iy = oy * g.strideHeight - g.padTop + ky, ix = ox * g.strideWidth - g.padLeft + kx
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                for ci in 0..<cig {
                    let t = d * Double(w[flat: ((ky * g.kernelWidth + kx) * cig + ci) * cout + co])
                    let at = ((n * h + iy) * wd + ix) * cin + group * cig + ci
                    sum[at] += t
                    magnitude[at] += abs(t)
                }
            } }
        } } } }
        let terms = Double(g.kernelHeight * g.kernelWidth * cog + g.kernelHeight * g.kernelWidth), u = 0x1p-24
        let gamma = terms * u / (1 - terms * u)
        return (sum, magnitude.map { gamma * $0 + Double.leastNormalMagnitude })
    }

    /// The gradient with respect to the pre-activation for the output seed.
    func preActivationGradient(_ c: Case, output: Tensor, seed: Tensor) -> Tensor {
        var dz = seed
        dz.withUnsafeMutableBufferPointer { d in output.withUnsafeBufferPointer { y in
            for i in d.indices {
                let inside = c.activation == .identity || (y[i] > 0 && (c.activation == .relu || y[i] < 6))
                if !inside { d[i] = 0 }
            }
        } }
        return dz
    }

    func testForwardAndWeightGradientEqualIm2colBitForBit() {
        for path in paths {
            for (i, c) in cases.enumerated() {
                let inputs = operands(c, seed: UInt64(10 * i))
                let own = on(path, kernels: true) { valueAndGradients(inputs, seed: UInt64(i), conv(c)) }
                let im2col = on(path, kernels: false) { valueAndGradients(inputs, seed: UInt64(i), conv(c)) }
                assertBitEqual(own.0, im2col.0, "\(path) forward, \(c)")
                assertBitEqual(own.1[1]!, im2col.1[1]!, "\(path) weight gradient, \(c)")
                if c.bias { assertBitEqual(own.1[2]!, im2col.1[2]!, "\(path) bias gradient, \(c)") }
                // Inference (no tape) computes the same values.
                let inference = on(path, kernels: true) { conv(c)(inputs.map { Variable($0) }).value }
                assertBitEqual(inference, own.0, "\(path) inference, \(c)")
            }
        }
    }

    func testInputGradientWithinTheDerivedBound() {
        for path in paths {
            for (i, c) in cases.enumerated() {
                let inputs = operands(c, seed: UInt64(10 * i + 3))
                let own = on(path, kernels: true) { valueAndGradients(inputs, seed: UInt64(i + 50), conv(c)) }
                let im2col = on(path, kernels: false) { valueAndGradients(inputs, seed: UInt64(i + 50), conv(c)) }
                let dz = preActivationGradient(c, output: own.0, seed: randomTensor(own.0.shape, seed: UInt64(i + 50)))
                let (exact, bound) = exactInputGradient(c, w: inputs[1], dz: dz)
                let a = own.1[0]!, b = im2col.1[0]!
                for e in 0..<a.count {
                    let x = Double(a[flat: e])
                    if !(abs(x - exact[e]) <= bound[e]) {
                        XCTFail("\(path): dx[\(e)] = \(x), exact \(exact[e]), bound \(bound[e]) in \(c)")
                        break
                    }
                    if !(abs(x - Double(b[flat: e])) <= 2 * bound[e]) {
                        XCTFail("\(path): dx[\(e)] = \(x), im2col route \(b[flat: e]), bound \(2 * bound[e]) in \(c)")
                        break
                    }
                }
            }
        }
    }

    func testFusedMaxPoolEqualsConvThenPool() {
        // Even and odd output sizes (an odd last row and column are not pooled), with the
        // pool's ReLU (floor 0) and without (floor −∞), the conv's own activation on or off.
        for path in paths {
            for (i, c) in pooledCases.enumerated() {
                let inputs = operands(c, seed: UInt64(200 + 10 * i))
                for relu in [true, false] {
                    let fused = on(path, kernels: true) {
                        pooledConv(c, relu: relu)(inputs.map { Variable($0) })
                    }
                    let unfused = on(path, kernels: true) { conv(c)(inputs.map { Variable($0) }).maxPool2d(relu: relu).value }
                    guard let fused else { XCTFail("\(path): no fused kernel for \(c)"); continue }
                    assertBitEqual(fused.value, unfused, "\(path) relu \(relu), \(c)")
                }
            }
        }
        // Without the kernels, or in training with the conv's own activation, there is no fused
        // op: callers run conv → pool.
        let c = cases[1], inputs = operands(c, seed: 1)
        XCTAssertNil(on(.portable, kernels: true) { pooledConv(c, relu: true)(inputs.map { Variable($0) }) })
        let tape = Tape()
        XCTAssertNil(tape.watch(inputs[0]).conv2dMaxPool(weight: Variable(inputs[1]), bias: nil, pads: c.pads,
                                                         activation: .relu, poolReLU: true))
    }

    /// Conv → pool cases: even and odd sizes, strides, groups, 130 channels.
    var pooledCases: [Case] {
        [cases[0], cases[1], cases[3], cases[5], cases[7], cases[11],
         Case(x: [2, 9, 7, 4], w: [3, 3, 4, 24], pads: Self.same1, activation: .relu6)]
    }

    func pooledConv(_ c: Case, relu: Bool) -> ([Variable]) -> Variable? {
        { v in
            v[0].conv2dMaxPool(weight: v[1], bias: c.bias ? v[2] : nil, strideHeight: c.sh, strideWidth: c.sw, pads: c.pads,
                               groups: c.groups, activation: c.activation, poolReLU: relu)
        }
    }

    func testTrainingFusedMaxPoolEqualsConvThenPool() {
        // The recorded op: value and every gradient bit for bit the unfused conv → pool, with
        // ties (inputs on a coarse grid), a NaN, negative maxima, odd sizes.
        for path in paths {
            for (i, var c) in pooledCases.enumerated() {
                c.activation = .identity
                var inputs = operands(c, seed: UInt64(700 + 10 * i))
                inputs[0].withUnsafeMutableBufferPointer { p in
                    for j in p.indices { p[j] = (p[j] * 2).rounded() / 2 }
                    if i == 2 { p[3] = .nan }
                }
                inputs[1].withUnsafeMutableBufferPointer { p in for j in p.indices { p[j] = (p[j] * 4).rounded() / 4 } }
                for relu in [true, false] {
                    let fused = on(path, kernels: true) {
                        valueAndGradients(inputs, seed: UInt64(i)) { v in self.pooledConv(c, relu: relu)(v)! }
                    }
                    let unfused = on(path, kernels: true) {
                        valueAndGradients(inputs, seed: UInt64(i)) { v in self.conv(c)(v).maxPool2d(relu: relu) }
                    }
                    assertBitEqual(fused.0, unfused.0, "\(path) relu \(relu) value, \(c)")
                    for k in inputs.indices {
                        assertBitEqual(fused.1[k]!, unfused.1[k]!, "\(path) relu \(relu) gradient \(k), \(c)")
                    }
                }
            }
        }
    }

    func testResultsDoNotDependOnTheThreadCount() {
        for path in paths {
            for c in [cases[0], cases[1], cases[2], cases[6]] {
                let inputs = operands(c, seed: 300)
                let run = { self.on(path, kernels: true) { valueAndGradients(inputs, seed: 301, self.conv(c)) } }
                let one = withWorkers(1, run)
                for workers in [2, 3] {
                    let other = withWorkers(workers, run)
                    assertBitEqual(other.0, one.0, "\(path) \(workers) workers, forward, \(c)")
                    for k in inputs.indices { assertBitEqual(other.1[k]!, one.1[k]!, "\(path) \(workers) workers, gradient \(k), \(c)") }
                }
            }
        }
    }

    func testGradientsMatchFiniteDifferencesOnEveryPath() {
        for path in paths {
            for c in [cases[3], cases[5], cases[9], cases[10]] {
                var c = c
                c.activation = .identity  // finite differences would straddle the kinks
                let inputs = operands(c, seed: 400)
                on(path, kernels: true) { assertGradientsMatch(inputs, conv(c)) }
            }
        }
    }

    func testNaNPropagatesAsInTheIm2colRoute() {
        let c = Case(x: [1, 6, 6, 3], w: [3, 3, 3, 20], pads: Self.same1, activation: .relu)
        var inputs = operands(c, seed: 500)
        inputs[0].withUnsafeMutableBufferPointer { $0[40] = .nan }
        for path in paths {
            let own = on(path, kernels: true) { conv(c)(inputs.map { Variable($0) }).value }
            let im2col = on(path, kernels: false) { conv(c)(inputs.map { Variable($0) }).value }
            XCTAssertTrue(own.withUnsafeBufferPointer { $0.contains { $0.isNaN } })
            assertBitEqual(own, im2col, "\(path) with a NaN input")
        }
    }

    func testMaxPoolBackwardEqualsTheSwiftLoop() {
        // Ties (values on a coarse grid), NaN, negative maxima (the fused ReLU), odd sizes and
        // channel counts that are no multiple of a vector.
        for (shape, seed) in [([2, 6, 8, 32], 1), ([1, 7, 5, 13], 2), ([3, 4, 4, 3], 3), ([1, 9, 9, 40], 4)] {
            var x = randomTensor(shape, seed: UInt64(600 + seed))
            x.withUnsafeMutableBufferPointer { p in
                for i in p.indices { p[i] = (p[i] * 2).rounded() / 2 }
                p[5] = .nan
            }
            for relu in [true, false] {
                let run = { valueAndGradients([x], seed: UInt64(seed)) { $0[0].maxPool2d(relu: relu) } }
                let swift = on(.portable, kernels: false, run)
                for path in paths {
                    let own = on(path, kernels: true, run)
                    assertBitEqual(own.0, swift.0, "\(path) pooled \(shape) relu \(relu)")
                    assertBitEqual(own.1[0]!, swift.1[0]!, "\(path) dx \(shape) relu \(relu)")
                }
            }
        }
    }
}
