import XCTest
@testable import ECTensor

/// The engine's FP32 GEMM kernels (`FP32Kernels`), every path this CPU runs, each selected per
/// call: against a double-precision reference with a rounding-error bound, against OpenBLAS,
/// and bit for bit against the scalar form of their own computation (`FP32Kernels.reference`);
/// results independent of the thread count.
///
/// Error bound (Higham, Accuracy and Stability of Numerical Algorithms, §3.1, Lemma 3.1 and
/// eq. 3.5): an element is a chain of k multiply-adds (fused or not) plus at most two more
/// roundings (beta·C at the start or alpha·acc + beta·C at the end), so
/// |c − c_exact| ≤ γ(k + 2) · (|alpha|·Σ_p |a_ip·b_pj| + |beta·c0_ij|), γ(n) = n·u / (1 − n·u),
/// u = 2⁻²⁴. The double-precision reference is exact enough (its own error is ~2⁻⁵³·k·Σ) to
/// stand for c_exact. The same bound must hold for OpenBLAS, so the two may differ by twice it.
final class FP32KernelsTests: XCTestCase {
    /// The engine's kernel paths this CPU runs (portable always).
    let paths = [FP32Kernels.Path.avx512, .avx2, .portable].filter(\.isSupported)

    struct Case: CustomStringConvertible {
        var transA = false, transB = false
        var m: Int, n: Int, k: Int
        var alpha: Float = 1, beta: Float = 0
        /// Extra floats per stored row beyond the minimum leading dimension (0: as the engine).
        var pad = 0
        var lda: Int { (transA ? m : k) + pad }
        var ldb: Int { (transB ? k : n) + pad }
        var ldc: Int { n + pad }
        var description: String {
            "\(transA ? "Aᵀ" : "A")·\(transB ? "Bᵀ" : "B") m \(m) n \(n) k \(k) alpha \(alpha) beta \(beta) pad \(pad)"
        }
    }

    /// Random operands for a case: A, B, and C's starting values (NaN when beta = 0: they
    /// must be ignored).
    struct Operands {
        var a: [Float], b: [Float], c0: [Float]
        init(_ t: Case, seed: UInt64) {
            var rng = RNG(seed: seed)
            a = (0..<((t.transA ? t.k : t.m) * t.lda)).map { _ in rng.nextUniform() * 2 - 1 }
            b = (0..<((t.transB ? t.n : t.k) * t.ldb)).map { _ in rng.nextUniform() * 2 - 1 }
            c0 = (0..<(t.m * t.ldc)).map { _ in t.beta == 0 ? .nan : rng.nextUniform() * 2 - 1 }
        }
    }

    func run(_ t: Case, _ o: Operands, path: FP32Kernels.Path, threads: Int = 2) -> [Float] {
        var c = o.c0
        o.a.withUnsafeBufferPointer { a in o.b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemm(path: path, threads: threads, transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k,
                       alpha: t.alpha, a: a.baseAddress!, lda: t.lda, b: b.baseAddress!, ldb: t.ldb, beta: t.beta,
                       c: cp.baseAddress!, ldc: t.ldc)
        } } }
        return c
    }

    func reference(_ t: Case, _ o: Operands, path: FP32Kernels.Path) -> [Float] {
        var c = o.c0
        o.a.withUnsafeBufferPointer { a in o.b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { cp in
            FP32Kernels.reference(path: path, transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k,
                                  alpha: t.alpha, a: a.baseAddress!, lda: t.lda, b: b.baseAddress!, ldb: t.ldb,
                                  beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
        } } }
        return c
    }

    /// The exact value (in double) of element (i, j) and its error bound.
    func exact(_ t: Case, _ o: Operands, _ i: Int, _ j: Int) -> (value: Double, bound: Double) {
        var sum = 0.0, magnitude = 0.0
        for p in 0..<t.k {
            let x = Double(t.transA ? o.a[p * t.lda + i] : o.a[i * t.lda + p])
            let y = Double(t.transB ? o.b[j * t.ldb + p] : o.b[p * t.ldb + j])
            sum += x * y
            magnitude += abs(x * y)
        }
        let c0 = t.beta == 0 ? 0 : Double(t.beta) * Double(o.c0[i * t.ldc + j])
        let u = 0x1p-24, n = Double(t.k + 2)
        let gamma = n * u / (1 - n * u)
        return (Double(t.alpha) * sum + c0, gamma * (abs(Double(t.alpha)) * magnitude + abs(c0)) + Double.leastNormalMagnitude)
    }

    /// The elements checked in double: all of a small C, else its corners, edges and a
    /// deterministic scatter (each costs k multiply-adds in a debug build).
    func samples(_ t: Case) -> [(Int, Int)] {
        if t.m * t.n * t.k <= 150_000 { return (0..<t.m).flatMap { i in (0..<t.n).map { (i, $0) } } }
        var s: [(Int, Int)] = [(0, 0), (0, t.n - 1), (t.m - 1, 0), (t.m - 1, t.n - 1)]
        var rng = RNG(seed: UInt64(t.m * 31 + t.n * 7 + t.k))
        while s.count < 96 { s.append((Int(rng.next() % UInt64(t.m)), Int(rng.next() % UInt64(t.n)))) }
        return s
    }

    /// Checks one case on every path: the bound against double, agreement with OpenBLAS,
    /// bit-exact agreement with the path's scalar reference, untouched padding of C.
    func check(_ t: Case, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let o = Operands(t, seed: seed)
        let blas = run(t, o, path: .openblas)
        let points = samples(t)
        let truth = points.map { exact(t, o, $0.0, $0.1) }
        for (s, (i, j)) in points.enumerated() where !(abs(Double(blas[i * t.ldc + j]) - truth[s].value) <= truth[s].bound) {
            XCTFail("OpenBLAS outside the bound at (\(i), \(j)) in \(t)", file: file, line: line)
            break
        }
        for path in paths {
            let c = run(t, o, path: path)
            for (s, (i, j)) in points.enumerated() {
                let x = Double(c[i * t.ldc + j]), (value, bound) = truth[s]
                if !(abs(x - value) <= bound) {
                    XCTFail("\(path): c[\(i), \(j)] = \(x), exact \(value), bound \(bound) in \(t)", file: file, line: line)
                    return
                }
                if !(abs(x - Double(blas[i * t.ldc + j])) <= 2 * bound) {
                    XCTFail("\(path): c[\(i), \(j)] = \(x), OpenBLAS \(blas[i * t.ldc + j]) in \(t)", file: file, line: line)
                    return
                }
            }
            let ref = reference(t, o, path: path)
            for i in 0..<t.m {
                for j in 0..<t.n where c[i * t.ldc + j].bitPattern != ref[i * t.ldc + j].bitPattern {
                    XCTFail("\(path): c[\(i), \(j)] = \(c[i * t.ldc + j]) is not the reference chain's \(ref[i * t.ldc + j]) in \(t)",
                            file: file, line: line)
                    return
                }
                for j in t.n..<t.ldc where c[i * t.ldc + j].bitPattern != o.c0[i * t.ldc + j].bitPattern {
                    XCTFail("\(path): wrote the padding of C at (\(i), \(j)) in \(t)", file: file, line: line)
                    return
                }
            }
        }
    }

    func testEdgeSizesAllTransposesOnEveryPath() {
        let sizes = [1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 100, 257]
        var count = 0
        for transA in [false, true] {
            for transB in [false, true] {
                for (x, m) in sizes.enumerated() {
                    for (y, n) in sizes.enumerated() {
                        // k walks the sizes and 9 (a 3×3 conv on one channel) out of step with m, n.
                        let ks = sizes + [9]
                        let k = ks[(x * 5 + y * 3 + (transA ? 1 : 0) + (transB ? 2 : 0)) % ks.count]
                        let alpha: Float = (x + y) % 3 == 0 ? 1 : ((x + y) % 3 == 1 ? 0.75 : -1.5)
                        let beta: Float = [0, 1, 0.5][(x + 2 * y) % 3]
                        check(Case(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta),
                              seed: UInt64(count))
                        count += 1
                    }
                }
            }
        }
    }

    func testInnerDimensionOneAndNine() {
        for k in [1, 9] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                for (m, n) in [(1, 1), (5, 40), (33, 17), (300, 32), (2, 130)] {
                    for beta: Float in [0, 1, 0.5] {
                        check(Case(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, beta: beta), seed: UInt64(m * n + k))
                    }
                }
            }
        }
    }

    /// fmnist-cnn's GEMMs (batch 64 and batch 1, some cut to a fraction of their rows) with
    /// the two backward products of each: forward `x·W`, input gradient `dy·Wᵀ`, weight
    /// gradient `xᵀ·dy`.
    func testEngineShapes() {
        let layers: [(name: String, rows: Int, k: Int, n: Int)] = [
            ("conv1 (1/16 of 50176 rows)", 3136, 9, 32),
            ("conv2 (1/16 of 12544 rows)", 784, 288, 64),
            ("fc1", 64, 3136, 128),
            ("fc1 batch 1", 1, 3136, 128),
            ("fc1 batch 3", 3, 3136, 128),
            ("fc2", 64, 128, 10),
            ("conv1 batch 1", 784, 9, 32),
        ]
        for (index, l) in layers.enumerated() {
            for beta: Float in [0, 1] {
                let seed = UInt64(index * 10) + (beta == 0 ? 0 : 5)
                check(Case(m: l.rows, n: l.n, k: l.k, beta: beta), seed: seed)  // forward (beta 1: bias first)
                check(Case(transB: true, m: l.rows, n: l.k, k: l.n), seed: seed + 1)  // dy·Wᵀ
                check(Case(transA: true, m: l.k, n: l.n, k: l.rows), seed: seed + 2)  // xᵀ·dy
            }
        }
        // Leading dimensions wider than the rows (sub-matrices), with alpha and beta.
        check(Case(m: 200, n: 70, k: 300, alpha: 0.5, beta: 0.5, pad: 5), seed: 90)
        check(Case(transA: true, transB: true, m: 45, n: 33, k: 129, alpha: -1, beta: 1, pad: 3), seed: 91)
        check(Case(transB: true, m: 130, n: 64, k: 288, pad: 16), seed: 92)
        // Rows 2 KiB and 4 KiB apart (A is packed then) and a k of several blocks.
        check(Case(m: 40, n: 48, k: 512), seed: 93)
        check(Case(m: 30, n: 100, k: 1024, alpha: 2, beta: 0.5), seed: 94)
        check(Case(transA: true, m: 20, n: 40, k: 1500, alpha: 0.25, beta: 1), seed: 95)
    }

    /// C is cut between threads, never k: 1, 2 or 3 threads (and Dispatch instead of the
    /// kernels' own workers) give the same bits, on every path.
    func testResultsDoNotDependOnThreads() {
        let cases = [
            Case(m: 3136, n: 32, k: 9, beta: 1),
            Case(transA: true, m: 9, n: 32, k: 3136),
            Case(m: 392, n: 64, k: 288),
            Case(transB: true, m: 392, n: 288, k: 64),
            Case(transA: true, m: 288, n: 64, k: 392),
            Case(m: 64, n: 128, k: 3136, alpha: 0.5, beta: 0.5),
            Case(m: 1, n: 128, k: 3136),
            Case(transA: true, transB: true, m: 100, n: 257, k: 33),
        ]
        for (index, t) in cases.enumerated() {
            let o = Operands(t, seed: UInt64(100 + index))
            for path in paths {
                let one = run(t, o, path: path, threads: 1)
                for threads in [2, 3] {
                    XCTAssertTrue(run(t, o, path: path, threads: threads).elementsEqual(one) { $0.bitPattern == $1.bitPattern },
                                  "\(path), \(threads) threads differ from 1 in \(t)")
                }
                FP32Kernels.threading = .dispatch
                XCTAssertTrue(run(t, o, path: path, threads: 2).elementsEqual(one) { $0.bitPattern == $1.bitPattern },
                              "\(path), Dispatch threads differ from 1 in \(t)")
                FP32Kernels.threading = .pool
            }
        }
    }

    /// AVX-512 and AVX2 compute the same chains of fused multiply-adds: the same bits.
    func testAVX512AndAVX2AgreeBitForBit() throws {
        try XCTSkipUnless(FP32Kernels.Path.avx512.isSupported, "this CPU has no AVX-512")
        for (index, t) in [Case(m: 57, n: 45, k: 300, alpha: 0.5, beta: 0.5), Case(transA: true, transB: true, m: 9, n: 130, k: 77),
                           Case(m: 1, n: 128, k: 3136), Case(transB: true, m: 100, n: 33, k: 64, beta: 1)].enumerated() {
            let o = Operands(t, seed: UInt64(200 + index))
            XCTAssertTrue(run(t, o, path: .avx512).elementsEqual(run(t, o, path: .avx2)) { $0.bitPattern == $1.bitPattern }, "\(t)")
        }
    }

    /// The engine's door takes the active path: its results are that path's.
    func testBLASDoorUsesTheActivePath() {
        let t = Case(m: 33, n: 20, k: 50)
        let o = Operands(t, seed: 300)
        var c = [Float](repeating: 0, count: t.m * t.n)
        o.a.withUnsafeBufferPointer { a in o.b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemm(m: t.m, n: t.n, k: t.k, a: a.baseAddress!, b: b.baseAddress!, c: cp.baseAddress!)
        } } }
        XCTAssertEqual(c, run(t, o, path: FP32Kernels.active, threads: Parallel.workers))
        XCTAssertTrue(FP32Kernels.Path.allCases.map(\.rawValue).contains(FP32Kernels.path))
    }

    /// k = 0 scales C by beta (0 clears it, NaN included); m or n = 0 touches nothing.
    func testEmptyProducts() {
        for path in paths + [.openblas] {
            var c: [Float] = [.nan, 2, 3, 4]
            let one: [Float] = [1]
            one.withUnsafeBufferPointer { a in c.withUnsafeMutableBufferPointer { cp in
                BLAS.sgemm(path: path, threads: 2, transA: false, transB: false, m: 2, n: 2, k: 0, alpha: 1,
                           a: a.baseAddress!, lda: 1, b: a.baseAddress!, ldb: 2, beta: 0, c: cp.baseAddress!, ldc: 2)
            } }
            XCTAssertEqual(c, [0, 0, 0, 0], "\(path)")
            c = [1, 2, 3, 4]
            one.withUnsafeBufferPointer { a in c.withUnsafeMutableBufferPointer { cp in
                BLAS.sgemm(path: path, threads: 2, transA: false, transB: false, m: 2, n: 2, k: 0, alpha: 1,
                           a: a.baseAddress!, lda: 1, b: a.baseAddress!, ldb: 2, beta: 0.5, c: cp.baseAddress!, ldc: 2)
                BLAS.sgemm(path: path, threads: 2, transA: false, transB: false, m: 0, n: 2, k: 3, alpha: 1,
                           a: a.baseAddress!, lda: 3, b: a.baseAddress!, ldb: 2, beta: 0, c: cp.baseAddress!, ldc: 2)
            } }
            XCTAssertEqual(c, [0.5, 1, 1.5, 2], "\(path)")
        }
    }
}
