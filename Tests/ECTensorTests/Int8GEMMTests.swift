import XCTest
@testable import ECTensor

/// The VNNI kernel (when this CPU has it) gives exactly the portable kernel's Int32 results,
/// for unsigned and signed activation codes, odd sizes and padded inner dimensions.
final class Int8GEMMTests: XCTestCase {
    func testVNNIKernelEqualsPortableKernel() throws {
        try XCTSkipUnless(Int8GEMM.vnni, "this CPU has no AVX-512 VNNI (the portable kernel is used)")
        var rng = RNG(seed: 8)
        for (rows, n, k, signed) in [(7, 5, 9, false), (33, 64, 288, true), (4, 17, 300, false), (1, 10, 128, true)] {
            let kp = Int8GEMM.padded(k)
            func code() -> Int16 { signed ? Int16(Int(rng.next() % 256) - 128) : Int16(rng.next() % 256) }
            var a = [Int16](repeating: 0, count: rows * kp), b = [Int16](repeating: 0, count: n * kp)
            for i in 0..<rows { for j in 0..<k { a[i * kp + j] = code() } }
            for i in 0..<n { for j in 0..<k { b[i * kp + j] = Int16(Int(rng.next() % 256) - 128) } }
            var portable = [Int32](repeating: 0, count: rows * n), vnni = portable
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                portable.withUnsafeMutableBufferPointer {
                    Int8GEMM.multiply(a: ap.baseAddress!, rows: rows, b: bp.baseAddress!, n: n, kPadded: kp, into: $0.baseAddress!)
                }
            } }
            // The VNNI kernel reads bytes: each code's kernel byte (the +128 offset when signed).
            let bytes = a.map { Int8GEMM.kernelByte(UInt8(truncatingIfNeeded: $0), signed: signed) }
            bytes.withUnsafeBufferPointer { ap in vnni.withUnsafeMutableBufferPointer {
                Int8GEMM.multiplyVNNI(bytes: ap.baseAddress!, rows: rows, signed: signed,
                                      weights: Int8GEMM.packVNNI(b, n: n, kp: kp), into: $0.baseAddress!)
            } }
            XCTAssertEqual(vnni, portable, "rows \(rows) n \(n) k \(k) signed \(signed)")
        }
    }

    /// The byte-form im2col / row packing hold each Int16 operand's kernel byte, and the value
    /// 0's byte in the image padding (im2col's k padding is unspecified: it meets zero weights).
    func testByteFormEqualsTheInt16FormsKernelBytes() {
        var rng = RNG(seed: 9)
        for signed in [false, true] {
            for (h, w, cin) in [(5, 4, 1), (6, 6, 3), (4, 5, 32)] {
                let codes = (0..<(2 * h * w * cin)).map { _ in UInt8(rng.next() % 256) }
                let g = Conv2DGeometry(input: [2, h, w, cin], kernel: [3, 3, cin, 4], stride: 1, padding: .same)
                let wide = Int8GEMM.im2col(codes, signed: signed, geometry: g, images: 0..<2)
                let bytes = Int8GEMM.im2colBytes(codes, signed: signed, geometry: g, images: 0..<2)
                // Each row's first `patch` bytes; the k padding after them meets zero weights,
                // and the byte form leaves it unspecified.
                let kp = Int8GEMM.padded(g.patch)
                func patches<T>(_ rows: [T]) -> [T] { stride(from: 0, to: rows.count, by: kp).flatMap { rows[$0..<($0 + g.patch)] } }
                XCTAssertEqual(patches(bytes), patches(wide).map { Int8GEMM.kernelByte(UInt8(truncatingIfNeeded: $0), signed: signed) },
                               "\(h)×\(w)×\(cin) signed \(signed)")
            }
            let rows = (0..<(3 * 20)).map { _ in UInt8(rng.next() % 256) }
            XCTAssertEqual(Int8GEMM.packRowsBytes(rows, rows: 3, k: 20, signed: signed),
                           Int8GEMM.packRows(rows, rows: 3, k: 20, signed: signed).map {
                               Int8GEMM.kernelByte(UInt8(truncatingIfNeeded: $0), signed: signed) })
        }
    }

    /// The branch-free codes equal `QuantRange.level` everywhere: ties (to even), both clip
    /// ends, far out of range, every width and signedness.
    func testQuantizeEqualsLevel() {
        var rng = RNG(seed: 11)
        var values: [Float] = [0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.5, 128.5, -128.5, 254.5, 255.5, 1e9, -1e9]
        for _ in 0..<2000 { values.append(Float(Int(rng.next() % 1_200_000) - 600_000) / 2000) }
        let x = Tensor(shape: [values.count], scalars: values)
        for bits in 1...8 {
            for signed in [false, true] {
                let range = QuantRange(bits: bits, signed: signed), step: Float = 0.5
                let codes = Int8GEMM.quantize(x, step: step, range: range)
                for (i, v) in values.enumerated() {
                    let level = range.level(v / step)
                    let expected = signed ? UInt8(bitPattern: Int8(level)) : UInt8(level)
                    XCTAssertEqual(codes[i], expected, "\(v) at \(bits) bits signed \(signed)")
                }
            }
        }
    }
}
