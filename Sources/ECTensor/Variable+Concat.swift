/// An axis counted from the end when negative (ONNX), checked against `rank`.
func normalizedAxis(_ axis: Int, rank: Int, _ op: String) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < rank, "\(op): axis \(axis) out of range for rank \(rank)")
    return a
}

/// A tensor seen as `[outer, dim, inner]` around one axis: the elements before, along and after it.
struct AxisSplit {
    let outer, dim, inner: Int
    init(_ shape: [Int], axis: Int) {
        outer = shape[..<axis].reduce(1, *)
        dim = shape[axis]
        inner = shape[(axis + 1)...].reduce(1, *)
    }
}

/// Copies (or adds) `rows` runs of `count` floats from `src` to `dst`, the runs `srcStride`
/// and `dstStride` apart; rows are split across workers (each run written by one thread).
func copyRuns(rows: Int, count: Int, from src: UnsafePointer<Float>, srcStride: Int, to dst: UnsafeMutablePointer<Float>,
              dstStride: Int, add: Bool = false) {
    guard count > 0 else { return }
    Parallel.forEach(rows, costPerItem: count) { range in
        for r in range {
            let s = src + r * srcStride, d = dst + r * dstStride
            if add {
                for i in 0..<count { d[i] += s[i] }
            } else if count <= 16 {
                for i in 0..<count { d[i] = s[i] }
            } else {
                d.update(from: s, count: count)
            }
        }
    }
}

extension Variable {
    /// Adds `g` (this node's shape with `axis` cut to `g`'s extent) into the slice starting at
    /// `start` along `axis` of this node's gradient (created as zeros when absent): the
    /// backward of a slice, with no full-size temporary per slice.
    func accumulate(_ g: Tensor, intoSliceAlong axis: Int, start: Int) {
        let whole = AxisSplit(shape, axis: axis), part = AxisSplit(g.shape, axis: axis)
        let adding = grad != nil
        var target = grad ?? Tensor(shape: shape, repeating: 0)
        grad = nil
        g.withUnsafeBufferPointer { gp in target.withUnsafeMutableBufferPointer { tp in
            copyRuns(rows: whole.outer, count: part.dim * part.inner, from: gp.baseAddress!, srcStride: part.dim * part.inner,
                     to: tp.baseAddress! + start * whole.inner, dstStride: whole.dim * whole.inner, add: adding)
        } }
        grad = target
    }

    /// Joins `parts` along `axis` (negative counts from the end; ONNX `Concat`): their shapes
    /// must agree except along `axis`. Backward hands each part its slice of `dy`.
    public static func concat(_ parts: [Variable], axis: Int) -> Variable {
        precondition(!parts.isEmpty, "concat: nothing to join")
        let first = parts[0].shape
        let a = normalizedAxis(axis, rank: first.count, "concat")
        for p in parts {
            precondition(p.shape.count == first.count && p.shape.indices.allSatisfy { $0 == a || p.shape[$0] == first[$0] },
                         "concat: shapes \(parts.map(\.shape)) differ off axis \(a)")
        }
        var shape = first
        shape[a] = parts.reduce(0) { $0 + $1.shape[a] }
        let out = AxisSplit(shape, axis: a)
        var y = Tensor(uninitializedShape: shape)
        y.withUnsafeMutableBufferPointer { yp in
            var offset = 0
            for p in parts {
                let run = p.shape[a] * out.inner
                p.value.withUnsafeBufferPointer { pp in
                    copyRuns(rows: out.outer, count: run, from: pp.baseAddress!, srcStride: run,
                             to: yp.baseAddress! + offset, dstStride: out.dim * out.inner)
                }
                offset += run
            }
        }
        return Variable.result(y, inputs: parts) { dy in
            var start = 0
            for p in parts {
                if p.requiresGrad { p.accumulate(dy.slice(axis: a, start: start, end: start + p.shape[a])) }
                start += p.shape[a]
            }
        }
    }

    /// Elements `start ..< end` along `axis` (negative axis counts from the end; ONNX `Slice`
    /// with one axis and step 1, indices already clamped). Backward adds `dy` into that slice
    /// of the input's gradient.
    public func slice(axis: Int, start: Int, end: Int) -> Variable {
        let a = normalizedAxis(axis, rank: shape.count, "slice")
        precondition(0 <= start && start <= end && end <= shape[a], "slice: \(start)..<\(end) outside 0..<\(shape[a]) on axis \(a) of \(shape)")
        let input = self
        return Variable.result(value.slice(axis: a, start: start, end: end), inputs: self) { dy in
            input.accumulate(dy, intoSliceAlong: a, start: start)
        }
    }

    /// Consecutive slices along `axis` of the given sizes, which must add up to the axis
    /// (ONNX `Split`). Each output is its own slice node: an output that receives no gradient
    /// contributes zeros, and the input's gradient is filled in place, slice by slice.
    public func split(axis: Int, sizes: [Int]) -> [Variable] {
        let a = normalizedAxis(axis, rank: shape.count, "split")
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[a],
                     "split: sizes \(sizes) do not add up to \(shape[a]) on axis \(a) of \(shape)")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return slice(axis: a, start: start, end: start + size)
        }
    }
}

extension Tensor {
    /// Elements `start ..< end` along `axis` (a copy).
    func slice(axis: Int, start: Int, end: Int) -> Tensor {
        let whole = AxisSplit(shape, axis: axis)
        var outShape = shape
        outShape[axis] = end - start
        var out = Tensor(uninitializedShape: outShape)
        let run = (end - start) * whole.inner
        withUnsafeBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
            copyRuns(rows: whole.outer, count: run, from: sp.baseAddress! + start * whole.inner, srcStride: whole.dim * whole.inner,
                     to: op.baseAddress!, dstStride: run)
        } }
        return out
    }
}
