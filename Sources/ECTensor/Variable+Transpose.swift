extension Variable {
    /// The axes permuted: output axis `i` is input axis `perm[i]` (ONNX `Transpose`; NHWC →
    /// NCHW is `[0, 3, 1, 2]`). Backward transposes `dy` by the inverse permutation.
    public func transpose(_ perm: [Int]) -> Variable {
        precondition(perm.count == shape.count && perm.sorted() == Array(0..<shape.count),
                     "transpose: \(perm) is not a permutation of the \(shape.count) axes of \(shape)")
        var inverse = perm
        for (i, p) in perm.enumerated() { inverse[p] = i }
        let input = self
        return Variable.result(value.transposed(perm), inputs: self) { dy in
            input.accumulate(dy.transposed(inverse))
        }
    }
}

extension Tensor {
    /// The axes permuted (a copy): output axis `i` is input axis `perm[i]`.
    ///
    /// Size-1 axes are dropped and axes that stay neighbours in the same order are merged, so
    /// NHWC ↔ NCHW becomes a batch of 2-D transposes `[N, H·W, C] ↔ [N, C, H·W]`. When the
    /// innermost axis stays innermost, rows are copied whole; otherwise the two axes that are
    /// innermost in the input and in the output are walked in 32×32 tiles, so reads and
    /// writes both stay in cache.
    func transposed(_ perm: [Int]) -> Tensor {
        let outShape = perm.map { shape[$0] }
        let inStrides = Tensor.rowMajorStrides(shape)
        // Output axes (as input axes) without the size-1 ones, merged where consecutive.
        var sizes: [Int] = [], strides: [Int] = [], lastAxis = -2
        for p in perm where shape[p] != 1 {
            if p == lastAxis + 1, !sizes.isEmpty {
                sizes[sizes.count - 1] *= shape[p]
                strides[strides.count - 1] = inStrides[p]
            } else {
                sizes.append(shape[p]); strides.append(inStrides[p])
            }
            lastAxis = p
        }
        var out = Tensor(uninitializedShape: outShape)
        if sizes.count <= 1 || count == 0 {
            // Only size-1 axes moved: the same element order.
            withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
                if count > 0 { dst.baseAddress!.update(from: src.baseAddress!, count: count) }
            } }
            return out
        }
        let outStrides = Tensor.rowMajorStrides(sizes)
        let last = sizes.count - 1
        withUnsafeBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
            let src = sp.baseAddress!, dst = op.baseAddress!
            if strides[last] == 1 {
                // The innermost axis stays innermost: contiguous runs.
                let outer = Array(0..<last)
                forEachCombination(of: outer, sizes: sizes, inStrides: strides, outStrides: outStrides) { i, o in
                    (dst + o).update(from: src + i, count: sizes[last])
                }
                return
            }
            // Output axis `a` is the input's innermost (stride 1), `last` is the output's.
            let a = strides.firstIndex(of: 1)!
            let (na, nb, osa, isb) = (sizes[a], sizes[last], outStrides[a], strides[last])
            let others = (0..<last).filter { $0 != a }
            let tile = 32
            forEachCombination(of: others, sizes: sizes, inStrides: strides, outStrides: outStrides) { i, o in
                for b0 in stride(from: 0, to: nb, by: tile) {
                    let b1 = min(nb, b0 + tile)
                    for a0 in stride(from: 0, to: na, by: tile) {
                        for ia in a0..<min(na, a0 + tile) {
                            let from = src + i + ia, to = dst + o + ia * osa
                            for ib in b0..<b1 { to[ib] = from[ib * isb] }
                        }
                    }
                }
            }
        } }
        return out
    }

    /// For every combination of the collapsed axes `combos`, calls `body(inputOffset,
    /// outputOffset)`; combinations are split across workers (each writes its own elements).
    private func forEachCombination(of combos: [Int], sizes: [Int], inStrides: [Int], outStrides: [Int], _ body: (Int, Int) -> Void) {
        let total = combos.reduce(1) { $0 * sizes[$1] }
        Parallel.forEach(total, costPerItem: max(1, count / max(total, 1))) { range in
            for c in range {
                var rest = c, i = 0, o = 0
                for axis in combos.reversed() {
                    let index = rest % sizes[axis]
                    rest /= sizes[axis]
                    i += index * inStrides[axis]
                    o += index * outStrides[axis]
                }
                body(i, o)
            }
        }
    }

    /// Row-major strides of `shape`.
    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        return strides
    }
}
