import ECTensor

/// A kernel seen as a matrix `[rows, columns]` = `[inputs, outputs]` (a Conv2D HWIO kernel
/// `[kh, kw, cin, cout]` is the row-major matrix `[kh·kw·cin, cout]` its GEMM uses, without a
/// copy) tiled by blocks of `[blockRows, blockColumns]`.
///
/// Blocks are numbered row-major over the grid: block `b = i·gridColumns + j` covers rows
/// `i·blockRows ..< min(rows, (i+1)·blockRows)` and columns
/// `j·blockColumns ..< min(columns, (j+1)·blockColumns)`. **Partial edge blocks**: when a
/// dimension is not a multiple of the block's, the last block row/column is narrower; it is
/// scored by its mean magnitude like any block, zeroed or kept whole, and counts its real
/// number of elements toward the sparsity.
public struct BlockGrid: Equatable, Sendable {
    public let rows: Int
    public let columns: Int
    public let blockRows: Int
    public let blockColumns: Int

    public init(rows: Int, columns: Int, blockRows: Int, blockColumns: Int) {
        precondition(rows > 0 && columns > 0 && blockRows > 0 && blockColumns > 0,
                     "block grid needs positive sizes, got [\(rows), \(columns)] by [\(blockRows), \(blockColumns)]")
        self.rows = rows
        self.columns = columns
        self.blockRows = blockRows
        self.blockColumns = blockColumns
    }

    /// The grid of a kernel of `shape` (`[in, out]` or HWIO), the last axis being the outputs.
    public init(kernelShape shape: [Int], block: [Int]) {
        precondition(shape.count >= 2 && block.count == 2, "kernel \(shape) / block \(block)")
        let columns = shape.last!
        self.init(rows: Tensor.elementCount(shape) / columns, columns: columns, blockRows: block[0], blockColumns: block[1])
    }

    public var gridRows: Int { (rows + blockRows - 1) / blockRows }
    public var gridColumns: Int { (columns + blockColumns - 1) / blockColumns }
    public var blockCount: Int { gridRows * gridColumns }
    public var elementCount: Int { rows * columns }
    /// The shape of a block mask: `[gridRows, gridColumns]`.
    public var maskShape: [Int] { [gridRows, gridColumns] }

    /// The row and column ranges of block `b`.
    @inline(__always)
    public func ranges(ofBlock b: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let i = b / gridColumns, j = b % gridColumns
        return (i * blockRows..<min(rows, (i + 1) * blockRows), j * blockColumns..<min(columns, (j + 1) * blockColumns))
    }

    /// The number of elements of block `b` (smaller for partial edge blocks).
    public func elementCount(ofBlock b: Int) -> Int {
        let r = ranges(ofBlock: b)
        return r.rows.count * r.columns.count
    }

    /// Each block's mean |w| (the sparsifier's criterion) over `weights`, row-major `[rows, columns]`.
    public func meanMagnitudes(_ weights: Tensor) -> [Float] {
        precondition(weights.count == elementCount, "\(weights.shape) is not a [\(rows), \(columns)] kernel")
        var sums = [Float](repeating: 0, count: blockCount)
        weights.withUnsafeBufferPointer { w in
            for r in 0..<rows {
                let base = (r / blockRows) * gridColumns
                for c in 0..<columns { sums[base + c / blockColumns] += abs(w[r * columns + c]) }
            }
        }
        return sums.indices.map { sums[$0] / Float(elementCount(ofBlock: $0)) }
    }

    /// Per element, `0xFFFF_FFFF` where its block is kept and `0` where it is zeroed (ready to
    /// AND into Float storage).
    public func elementMask(keep: [Bool]) -> [UInt32] {
        precondition(keep.count == blockCount, "\(keep.count) block flags for \(blockCount) blocks")
        var mask = [UInt32](repeating: 0, count: elementCount)
        mask.withUnsafeMutableBufferPointer { m in
            for r in 0..<rows {
                let base = (r / blockRows) * gridColumns
                for c in 0..<columns where keep[base + c / blockColumns] { m[r * columns + c] = .max }
            }
        }
        return mask
    }

    /// Elements of the blocks `keep` marks zeroed.
    public func zeroedElements(keep: [Bool]) -> Int {
        keep.indices.reduce(0) { $0 + (keep[$1] ? 0 : elementCount(ofBlock: $1)) }
    }
}
