import XCTest
@testable import ECTensor

/// The fake-quantization loops in C (`FakeQuantKernel`, Sources/CKernels/fake_quant.c) on every
/// path this CPU runs — AVX-512, AVX2, portable — against the formula written out here in Swift
/// with the engine's own `QuantRange.level`: the forward values, the straight-through gradient
/// and the per-lane Double step sums, bit for bit. Rows of 16 lanes (per tensor) and of
/// 1–70 channels (per channel), partial tail rows, sums that already hold a value, and values
/// on the rounding ties, on and beyond the range's bounds, ±0, ±∞ and NaN.
final class FakeQuantKernelTests: XCTestCase {
    let paths = [FP32Kernels.Path.avx512, .avx2, .portable].filter { $0.isSupported }

    struct Case {
        var width: Int
        var rows: Int
        var lanesInLastRow: Int
        var range: QuantRange
    }

    /// Values scaled by their lane's step, with the special cases spread over every lane.
    func values(_ c: Case, steps: [Float], rng: inout RNG) -> [Float] {
        let specials: [Float] = [0, -0.0, .nan, .infinity, -.infinity, 0.5, 1.5, 2.5, -0.5, -2.5, c.range.qp, -c.range.qn,
                                 c.range.qp.nextUp, (-c.range.qn).nextDown, c.range.qp + 0.5, -c.range.qn - 0.5, 1e30, -1e-30]
        return (0..<(c.width * c.rows)).map { e in
            let x = e % 7 == 3 ? specials[(e / 7) % specials.count] : rng.nextNormal() * (c.range.qp + c.range.qn) / 3
            return x * steps[e % c.width]
        }
    }

    func reference(_ v: [Float], _ dy: [Float], steps: [Float], _ c: Case, sums: [Double])
        -> (y: [Float], dv: [Float], sums: [Double]) {
        var y = [Float](repeating: 7, count: v.count), dv = y, sums = sums
        let lo = -c.range.qn, hi = c.range.qp
        for r in 0..<c.rows {
            for j in 0..<(r == c.rows - 1 ? c.lanesInLastRow : c.width) {
                let e = r * c.width + j, s = steps[j], x = v[e] / s, q = c.range.level(x)
                let inside = Swift.min(Swift.max(x, lo), hi) == x
                y[e] = q * s
                dv[e] = inside ? dy[e] : 0
                sums[j] += Double(dy[e] * (q - (inside ? x : 0)))
            }
        }
        return (y, dv, sums)
    }

    func assertSameBits<T: BinaryFloatingPoint>(_ a: [T], _ b: [T], _ what: String, file: StaticString = #filePath,
                                               line: UInt = #line) where T.RawSignificand: FixedWidthInteger {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for i in a.indices where !(a[i] == b[i] && a[i].sign == b[i].sign) && !(a[i].isNaN && b[i].isNaN) {
            XCTFail("\(what): element \(i) is \(a[i]), expected \(b[i])", file: file, line: line)
            return
        }
    }

    func testEveryPathEqualsTheFormulaBitForBit() {
        XCTAssertTrue(paths.contains(.portable))
        var rng = RNG(seed: 71)
        var cases: [Case] = []
        for range in [QuantRange(bits: 8, signed: true), QuantRange(bits: 8, signed: false), QuantRange(bits: 4, signed: true),
                      QuantRange(bits: 2, signed: false), QuantRange(bits: 1, signed: true)] {
            for width in [16, 1, 3, 8, 17, 32, 40, 70] {
                cases.append(Case(width: width, rows: 9, lanesInLastRow: width, range: range))
                cases.append(Case(width: width, rows: 5, lanesInLastRow: max(1, width / 2 - 1), range: range))
            }
        }
        for c in cases {
            let steps = (0..<c.width).map { _ in Float.random(in: 0.01...0.7, using: &rng) }
            let v = values(c, steps: steps, rng: &rng)
            let dy = (0..<v.count).map { _ in rng.nextNormal() }
            let start = (0..<c.width).map { Double($0) * 0.125 - 1 }
            let expected = reference(v, dy, steps: steps, c, sums: start)
            for path in paths {
                var y = [Float](repeating: 7, count: v.count), dv = y, sums = start
                v.withUnsafeBufferPointer { vp in steps.withUnsafeBufferPointer { sp in dy.withUnsafeBufferPointer { gp in
                    let kernel = FakeQuantKernel(values: vp.baseAddress!, laneSteps: sp.baseAddress!, range: c.range,
                                                 width: c.width, path: FakeQuantKernel.path(path))
                    y.withUnsafeMutableBufferPointer { yp in dv.withUnsafeMutableBufferPointer { dp in
                        sums.withUnsafeMutableBufferPointer { ap in
                            // Full rows in two calls (a block boundary), then the last row's lanes.
                            let split = (c.rows - 1) / 2
                            for rows in [0..<split, split..<(c.rows - 1)] {
                                kernel.forward(rows: rows, lanes: c.width, into: yp.baseAddress!)
                                kernel.backward(rows: rows, lanes: c.width, outputGrad: gp.baseAddress!,
                                                inputGrad: dp.baseAddress!, stepSums: ap.baseAddress!)
                            }
                            let last = (c.rows - 1)..<c.rows
                            kernel.forward(rows: last, lanes: c.lanesInLastRow, into: yp.baseAddress!)
                            kernel.backward(rows: last, lanes: c.lanesInLastRow, outputGrad: gp.baseAddress!,
                                            inputGrad: dp.baseAddress!, stepSums: ap.baseAddress!)
                        }
                    } }
                } } }
                let what = "\(path), \(c.range), width \(c.width), last row \(c.lanesInLastRow) lanes"
                assertSameBits(y, expected.y, "\(what): forward")
                assertSameBits(dv, expected.dv, "\(what): input gradient")
                assertSameBits(sums, expected.sums, "\(what): step sums")
            }
        }
    }
}
