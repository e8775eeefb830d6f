import ECTestSupport
import XCTest
@testable import ECTensor

/// The block-sparse kernel computes what sgemm computes on the same (zero-blocked) matrix.
final class BlockSparseMatrixTests: XCTestCase {
    /// A `[rows, columns]` matrix with about `sparsity` of its `[br, bc]` blocks zeroed.
    func blockSparse(rows: Int, columns: Int, br: Int, bc: Int, sparsity: Double, rng: inout RNG) -> Tensor {
        var w = Tensor.uniform(shape: [rows, columns], low: -1, high: 1, rng: &rng)
        let gridColumns = (columns + bc - 1) / bc
        var zero: [Bool] = []
        for _ in 0..<(((rows + br - 1) / br) * gridColumns) { zero.append(Double(rng.nextUniform()) < sparsity) }
        w.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows { for c in 0..<columns where zero[(r / br) * gridColumns + c / bc] { p[r * columns + c] = 0 } }
        }
        return w
    }

    /// Within 1e-5 of the largest expected magnitude (at least 1): sums in another order.
    func assertSameProduct(_ a: Tensor, _ b: Tensor, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let scale = max(1, Double(b.scalars.map(abs).max() ?? 1))
        assertClose(a, b, absolute: 1e-5 * scale, message, file: file, line: line)
    }

    func testMultiplyEqualsDenseForManyShapesBlocksAndBatches() {
        var rng = RNG(seed: 11)
        let shapes = [(1, 1), (3, 5), (17, 16), (16, 33), (100, 10), (288, 64), (9, 32), (3136, 128), (128, 10)]
        let blocks = [(1, 16), (1, 1), (4, 4), (2, 16), (3, 5), (16, 1)]
        for (k, n) in shapes {
            for (br, bc) in blocks {
                for sparsity in [0.0, 0.6, 0.9, 1.0] {
                    let w = blockSparse(rows: k, columns: n, br: br, bc: bc, sparsity: sparsity, rng: &rng)
                    let m = BlockSparseMatrix(dense: w, blockRows: br, blockColumns: bc)
                    XCTAssertEqual(m.dense(), w, "round trip [\(k), \(n)] by [\(br), \(bc)]")
                    for batch in [1, 3, 8, 13, 64] {
                        let x = Tensor.uniform(shape: [batch, k], low: -1, high: 1, rng: &rng)
                        let bias = Tensor.uniform(shape: [n], low: -1, high: 1, rng: &rng)
                        let label = "[\(batch)×\(k)]·[\(k)×\(n)] blocks [\(br), \(bc)] at \(sparsity)"
                        assertSameProduct(m.multiply(x, bias: nil), x.matmul(w), label)
                        var expected = x.matmul(w)
                        expected.withUnsafeMutableBufferPointer { p in
                            for i in p.indices { p[i] = max(p[i] + bias.scalars[i % n], 0) }
                        }
                        assertSameProduct(m.multiply(x, bias: bias, activation: .relu), expected, label + " + bias, relu")
                    }
                }
            }
        }
    }

    func testZeroBlocksAreNotStored() {
        var w = Tensor(shape: [4, 40])
        w.withUnsafeMutableBufferPointer { $0[1 * 40 + 35] = 2 }  // one element in the partial last block column
        let m = BlockSparseMatrix(dense: w, blockRows: 1, blockColumns: 16)
        XCTAssertEqual(m.gridColumns, 3)
        XCTAssertEqual(m.storedBlocks, 1)
        XCTAssertEqual(m.columnPointers, [0, 0, 0, 1])
        XCTAssertEqual(m.rowIndices, [1])
        XCTAssertEqual(m.values.count, 16, "the partial block is padded to 16")
        XCTAssertEqual(m.zeroBlockFraction, 11.0 / 12.0, accuracy: 1e-12)
    }

    func testConv2dEqualsTheDenseConvolution() {
        var rng = RNG(seed: 5)
        for (cin, cout, size, stride, padding) in [(1, 32, 3, 1, Padding.same), (32, 64, 3, 1, .same), (3, 20, 3, 2, .valid),
                                                   (8, 16, 1, 1, .valid)] {
            let w = blockSparse(rows: size * size * cin, columns: cout, br: 1, bc: 16, sparsity: 0.7, rng: &rng)
                .reshaped([size, size, cin, cout])
            let bias = Tensor.uniform(shape: [cout], low: -1, high: 1, rng: &rng)
            let m = BlockSparseMatrix(dense: w, blockRows: 1, blockColumns: 16)
            for batch in [1, 4] {
                let x = Tensor.uniform(shape: [batch, 9, 9, cin], low: -1, high: 1, rng: &rng)
                let dense = Variable(x).conv2d(weight: Variable(w), bias: Variable(bias), stride: stride, padding: padding,
                                               activation: .relu).value
                let sparse = m.conv2d(x, kernelShape: w.shape, stride: stride, padding: padding, bias: bias, activation: .relu)
                assertSameProduct(sparse, dense, "conv \(cin)→\(cout) \(size)×\(size) stride \(stride) batch \(batch)")
            }
        }
    }
}
