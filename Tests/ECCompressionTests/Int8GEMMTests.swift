import XCTest
@testable import ECCompression
import ECTensor

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
                vnni.withUnsafeMutableBufferPointer {
                    Int8GEMM.multiplyVNNI(a: ap.baseAddress!, rows: rows, signed: signed,
                                          weights: Int8GEMM.packVNNI(b, n: n, kp: kp), into: $0.baseAddress!)
                }
            } }
            XCTAssertEqual(vnni, portable, "rows \(rows) n \(n) k \(k) signed \(signed)")
        }
    }
}
