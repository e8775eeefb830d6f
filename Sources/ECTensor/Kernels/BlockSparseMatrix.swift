import CKernels

/// A matrix `[rows, columns]` = `[inputs, outputs]` stored block-sparse: only its non-zero
/// blocks of `[blockRows, blockColumns]`, grouped by block column (BSC — BSR of the
/// transpose). The inference kernel `multiply` skips the zero blocks.
///
/// Layout (docs/sparsity.md, docs/formats.md):
/// - `columnPointers` (`gridColumns + 1` entries): block column `j` (outputs
///   `j·blockColumns ..< min(columns, (j+1)·blockColumns)`) stores blocks
///   `columnPointers[j] ..< columnPointers[j+1]`;
/// - `rowIndices` (one per stored block): the block row `i` (inputs `i·blockRows ..< +blockRows`);
/// - `values` (`blockRows·blockColumns` per stored block): the block row-major; a partial edge
///   block (last block row/column when a dimension is not a multiple of the block's) is padded
///   with zeros, which the kernel never writes out.
///
/// Grouping by output block column lets the kernel keep a row's `blockColumns` outputs in
/// registers over all of the column's blocks (16 floats = one AVX-512 register).
public struct BlockSparseMatrix: Equatable, Sendable {
    public let rows: Int
    public let columns: Int
    public let blockRows: Int
    public let blockColumns: Int
    public let columnPointers: [Int32]
    public let rowIndices: [Int32]
    public let values: [Float]

    public var gridRows: Int { (rows + blockRows - 1) / blockRows }
    public var gridColumns: Int { (columns + blockColumns - 1) / blockColumns }
    /// Stored (non-zero) blocks.
    public var storedBlocks: Int { rowIndices.count }
    /// Zero blocks / all blocks.
    public var zeroBlockFraction: Double {
        let all = gridRows * gridColumns
        return all == 0 ? 0 : Double(all - storedBlocks) / Double(all)
    }

    /// A matrix from its parts (e.g. read from an export).
    ///
    /// - Precondition: the parts are consistent (sizes, monotone pointers, indices in range).
    public init(rows: Int, columns: Int, blockRows: Int, blockColumns: Int,
                columnPointers: [Int32], rowIndices: [Int32], values: [Float]) {
        precondition(rows > 0 && columns > 0 && blockRows > 0 && blockColumns > 0, "block-sparse matrix needs positive sizes")
        let gridColumns = (columns + blockColumns - 1) / blockColumns, gridRows = (rows + blockRows - 1) / blockRows
        precondition(columnPointers.count == gridColumns + 1 && columnPointers.first == 0
                     && Int(columnPointers.last!) == rowIndices.count
                     && zip(columnPointers, columnPointers.dropFirst()).allSatisfy { $0 <= $1 },
                     "block-sparse matrix: column pointers do not fit \(rowIndices.count) blocks in \(gridColumns) columns")
        precondition(rowIndices.allSatisfy { $0 >= 0 && Int($0) < gridRows }, "block-sparse matrix: row index out of range")
        precondition(values.count == rowIndices.count * blockRows * blockColumns,
                     "block-sparse matrix: \(values.count) values for \(rowIndices.count) blocks")
        self.rows = rows
        self.columns = columns
        self.blockRows = blockRows
        self.blockColumns = blockColumns
        self.columnPointers = columnPointers
        self.rowIndices = rowIndices
        self.values = values
    }

    /// The blocks of `dense` (`[rows, columns]` row-major, or a kernel whose last axis is the
    /// columns) that hold a non-zero element (NaN counts as non-zero).
    public init(dense: Tensor, blockRows: Int, blockColumns: Int) {
        let columns = dense.shape.last ?? 0
        precondition(dense.rank >= 2 && columns > 0, "block-sparse matrix needs a matrix or kernel, got \(dense.shape)")
        let rows = dense.count / columns
        let gridRows = (rows + blockRows - 1) / blockRows, gridColumns = (columns + blockColumns - 1) / blockColumns
        var pointers: [Int32] = [0], indices: [Int32] = [], values: [Float] = []
        dense.withUnsafeBufferPointer { w in
            for j in 0..<gridColumns {
                let c0 = j * blockColumns, c1 = min(columns, c0 + blockColumns)
                for i in 0..<gridRows {
                    let r0 = i * blockRows, r1 = min(rows, r0 + blockRows)
                    var nonZero = false
                    for r in r0..<r1 where !nonZero {
                        for c in c0..<c1 where w[r * columns + c] != 0 { nonZero = true; break }
                    }
                    guard nonZero else { continue }
                    indices.append(Int32(i))
                    for r in r0..<(r0 + blockRows) {
                        for c in c0..<(c0 + blockColumns) { values.append(r < r1 && c < c1 ? w[r * columns + c] : 0) }
                    }
                }
                pointers.append(Int32(indices.count))
            }
        }
        self.init(rows: rows, columns: columns, blockRows: blockRows, blockColumns: blockColumns,
                  columnPointers: pointers, rowIndices: indices, values: values)
    }

    /// The dense matrix `[rows, columns]` (zeros where no block is stored).
    public func dense() -> Tensor {
        var out = Tensor(shape: [rows, columns])
        out.withUnsafeMutableBufferPointer { d in
            for j in 0..<gridColumns {
                for s in Int(columnPointers[j])..<Int(columnPointers[j + 1]) {
                    let r0 = Int(rowIndices[s]) * blockRows, c0 = j * blockColumns
                    for r in r0..<min(rows, r0 + blockRows) {
                        for c in c0..<min(columns, c0 + blockColumns) {
                            d[r * columns + c] = values[(s * blockRows + r - r0) * blockColumns + c - c0]
                        }
                    }
                }
            }
        }
        return out
    }

    /// `act(x · W + bias)` for `x: [m, rows]` → `[m, columns]`, skipping zero blocks; rows of
    /// `x` are split across `Parallel` workers when there are many.
    public func multiply(_ x: Tensor, bias: Tensor?, activation: Activation = .identity) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == rows, "block-sparse multiply: input \(x.shape) does not fit [m, \(rows)]")
        if let bias { precondition(bias.count == columns, "block-sparse multiply: bias \(bias.shape) for \(columns) outputs") }
        var y = Tensor(uninitializedShape: [x.shape[0], columns])
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            multiply(xp.baseAddress!, m: x.shape[0], bias: bias, relu: activation == .relu, into: yp.baseAddress!)
        } }
        if activation != .relu { activation.apply(&y) }  // the kernel fuses ReLU only
        return y
    }

    /// `y[m, columns] = act(x[m, rows] · W + bias)` on raw row-major buffers.
    func multiply(_ x: UnsafePointer<Float>, m: Int, bias: Tensor?, relu: Bool, into y: UnsafeMutablePointer<Float>) {
        guard m > 0 else { return }
        columnPointers.withUnsafeBufferPointer { cp in rowIndices.withUnsafeBufferPointer { ri in
            values.withUnsafeBufferPointer { v in
                let run = { (b: UnsafePointer<Float>?) in
                    // Tiles of 64 rows (a multiple of the kernel's 8) per worker task.
                    let tiles = (m + 63) / 64
                    Parallel.forEach(tiles, costPerItem: 64 * max(1, v.count)) { range in
                        csparse_bsc_matmul(x, Int32(range.lowerBound * 64), Int32(min(m, range.upperBound * 64)),
                                           Int32(rows), Int32(columns), Int32(blockRows), Int32(blockColumns),
                                           cp.baseAddress, ri.baseAddress, v.baseAddress, b, relu ? 1 : 0, y)
                    }
                }
                if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
            }
        } }
    }
}

extension BlockSparseMatrix {
    /// 2-D convolution inference `act(conv(x, W) + bias)` with this matrix as the kernel's GEMM
    /// operand `[kh·kw·cin, cout]`: im2col a cache-sized chunk of images at a time, then the
    /// block-sparse multiply (as `Variable.conv2d` does with sgemm).
    ///
    /// `x: [N, H, W, Cin]`, `kernelShape` HWIO → `[N, OH, OW, Cout]`.
    public func conv2d(_ x: Tensor, kernelShape: [Int], stride: Int, padding: Padding, bias: Tensor?,
                       activation: Activation = .identity) -> Tensor {
        conv2d(x, geometry: Conv2DGeometry(input: x.shape, kernel: kernelShape, stride: stride, padding: padding), bias: bias,
               activation: activation)
    }

    /// The same for any one-group geometry (explicit, possibly asymmetric pads, a stride per
    /// axis: imported convolutions); `g` must describe `x`.
    public func conv2d(_ x: Tensor, geometry g: Conv2DGeometry, bias: Tensor?, activation: Activation = .identity) -> Tensor {
        precondition(g.groups == 1 && x.shape == [g.batch, g.height, g.width, g.inChannels],
                     "block-sparse conv2d: input \(x.shape) and \(g.groups) groups do not fit the geometry")
        precondition(g.patch == rows && g.outChannels == columns,
                     "block-sparse conv2d: a \(g.kernelHeight)×\(g.kernelWidth)×\(g.inChannels) patch does not fit the [\(rows), \(columns)] matrix")
        if let bias { precondition(bias.count == columns, "block-sparse conv2d: bias \(bias.shape) for \(columns) outputs") }
        var y = Tensor(uninitializedShape: [g.batch, g.outHeight, g.outWidth, columns])
        let relu = activation == .relu
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            if g.isPointwise {
                multiply(xb, m: g.rows, bias: bias, relu: relu, into: yb)
                return
            }
            g.forEachChunk { images, rowsPerImage in
                var chunk = Tensor(uninitializedShape: [images.count * rowsPerImage, g.patch])
                chunk.withUnsafeMutableBufferPointer { cp in
                    g.im2col(xb, cp.baseAddress!, images: images, firstImage: images.lowerBound)
                    multiply(cp.baseAddress!, m: images.count * rowsPerImage, bias: bias, relu: relu,
                             into: yb + images.lowerBound * rowsPerImage * columns)
                }
            }
        } }
        if !relu { activation.apply(&y) }  // the kernel fuses ReLU only
        return y
    }
}
