extension Tensor {
    /// The NumPy/ONNX multidirectional broadcast of two shapes (right-aligned; each pair of
    /// dimensions equal or one of them 1), or nil when they do not broadcast.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = da == 1 ? db : da
        }
        return out
    }
}

/// Two operands broadcast against an output shape, with the axes collapsed to as few as
/// possible: neighbouring axes merge when each operand either spans both or is broadcast
/// along both, so `[N,H,W,C] ⊙ [C]` becomes `[N·H·W, C]` and `[N,H,W,C] ⊙ [N,1,1,C]` becomes
/// `[N, H·W, C]`. The ops loop over rows (every collapsed axis but the last) and run a
/// vectorisable inner loop whose operand strides are each 0 or 1.
struct BroadcastLayout {
    /// Extents of the collapsed output axes (at least one).
    let dims: [Int]
    /// Each operand's element strides along the collapsed axes (0 where it is broadcast).
    let strideA: [Int], strideB: [Int]

    /// `a` and `b` must broadcast to `output` (each dimension equal to the output's or 1).
    init(output: [Int], _ a: [Int], _ b: [Int]) {
        let rank = output.count
        precondition(a.count <= rank && b.count <= rank, "broadcast: \(a) and \(b) have more axes than \(output)")
        func padded(_ s: [Int]) -> [Int] { [Int](repeating: 1, count: rank - s.count) + s }
        let pa = padded(a), pb = padded(b)
        var dims: [Int] = [], spansA: [Bool] = [], spansB: [Bool] = []
        for i in 0..<rank {
            precondition((pa[i] == output[i] || pa[i] == 1) && (pb[i] == output[i] || pb[i] == 1),
                         "broadcast: shapes \(a) and \(b) do not broadcast to \(output)")
            if output[i] == 1 { continue }
            let sa = pa[i] == output[i], sb = pb[i] == output[i]
            if let last = dims.indices.last, spansA[last] == sa, spansB[last] == sb {
                dims[last] *= output[i]
            } else {
                dims.append(output[i]); spansA.append(sa); spansB.append(sb)
            }
        }
        if output.contains(0) { dims = [0]; spansA = [true]; spansB = [true] }
        if dims.isEmpty { dims = [1]; spansA = [false]; spansB = [false] }
        func strides(_ spans: [Bool]) -> [Int] {
            var s = [Int](repeating: 0, count: dims.count), running = 1
            for i in stride(from: dims.count - 1, through: 0, by: -1) where spans[i] {
                s[i] = running
                running *= dims[i]
            }
            return s
        }
        self.dims = dims
        strideA = strides(spansA)
        strideB = strides(spansB)
    }

    /// Rows: the product of every collapsed extent but the last.
    var rows: Int { dims.dropLast().reduce(1, *) }
    /// The length of a row (the last collapsed extent).
    var inner: Int { dims[dims.count - 1] }

    /// Calls `body(outputOffset, offsetA, offsetB)` for each row of `rowRange`, in order.
    @inline(__always)
    func forEachRow(_ rowRange: Range<Int>, _ body: (Int, Int, Int) -> Void) {
        guard !rowRange.isEmpty else { return }
        let outer = dims.count - 1
        // The multi-index of the first row, then an odometer.
        var index = [Int](repeating: 0, count: max(outer, 1))
        var rest = rowRange.lowerBound, offA = 0, offB = 0
        for axis in stride(from: outer - 1, through: 0, by: -1) {
            index[axis] = rest % dims[axis]
            rest /= dims[axis]
            offA += index[axis] * strideA[axis]
            offB += index[axis] * strideB[axis]
        }
        for row in rowRange {
            body(row * inner, offA, offB)
            var axis = outer - 1
            while axis >= 0 {
                index[axis] += 1
                offA += strideA[axis]; offB += strideB[axis]
                if index[axis] < dims[axis] { break }
                offA -= dims[axis] * strideA[axis]; offB -= dims[axis] * strideB[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

extension Tensor {
    /// `alpha ·` the sum of this tensor over the axes along which `shape` is broadcast to
    /// this tensor's shape (`shape` right-aligned, each dimension equal or 1): the gradient
    /// of a broadcast operand. The result has `shape`.
    ///
    /// Each result element is summed in row-major order of this tensor's elements, by one
    /// thread (the work splits across the first collapsed axis only when it is kept), so the
    /// result does not depend on the thread count.
    func summed(toShape shape: [Int], alpha: Float = 1) -> Tensor {
        if shape == self.shape && alpha == 1 { return self }
        let layout = BroadcastLayout(output: self.shape, self.shape, shape)
        var out = Tensor(shape: shape, repeating: 0)
        let inner = layout.inner, rows = layout.rows, reducesInner = layout.strideB[layout.dims.count - 1] == 0
        withUnsafeBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
            let src = sp.baseAddress!, dst = op.baseAddress!
            let accumulate = { (rowRange: Range<Int>) in
                layout.forEachRow(rowRange) { _, s, d in
                    let from = src + s, to = dst + d
                    if reducesInner {
                        var total: Float = 0
                        for i in 0..<inner { total += from[i] }
                        to[0] += total
                    } else {
                        for i in 0..<inner { to[i] += from[i] }
                    }
                }
            }
            if layout.dims.count > 1 && layout.strideB[0] != 0 {
                // Blocks of the first axis write disjoint outputs.
                let block = rows / layout.dims[0]
                Parallel.forEach(layout.dims[0], costPerItem: block * inner) { range in
                    accumulate((range.lowerBound * block)..<(range.upperBound * block))
                }
            } else {
                accumulate(0..<rows)
            }
            if alpha != 1 {
                for i in 0..<op.count { dst[i] *= alpha }
            }
        } }
        return out
    }

    /// This tensor broadcast to `shape` (copied; `shape` must be a broadcast of this shape).
    func broadcast(toShape shape: [Int], alpha: Float = 1) -> Tensor {
        let layout = BroadcastLayout(output: shape, self.shape, [])
        var out = Tensor(uninitializedShape: shape)
        let inner = layout.inner, spans = layout.strideA[layout.dims.count - 1] != 0
        withUnsafeBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
            let src = sp.baseAddress!, dst = op.baseAddress!
            Parallel.forEach(layout.rows, costPerItem: inner) { range in
                layout.forEachRow(range) { o, s, _ in
                    let from = src + s, to = dst + o
                    if spans {
                        for i in 0..<inner { to[i] = alpha * from[i] }
                    } else {
                        let v = alpha * from[0]
                        for i in 0..<inner { to[i] = v }
                    }
                }
            }
        } }
        return out
    }
}
