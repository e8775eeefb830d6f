extension Variable {
    /// The mean over `axes` (negative count from the end; empty means every axis, as ONNX
    /// `ReduceMean`'s default), keeping them as size-1 axes with `keepDims`. Global average
    /// pooling written as `ReduceMean(axes: [1, 2])` over NHWC is `[N, H, W, C] → [N, 1, 1, C]`.
    ///
    /// Backward: `dy / count` broadcast back over the reduced axes. Each mean is summed in
    /// row-major order by one thread (no dependence on the thread count).
    public func reduceMean(axes: [Int], keepDims: Bool = true) -> Variable {
        reduce(axes: axes, keepDims: keepDims, mean: true)
    }

    /// The sum over `axes` (ONNX `ReduceSum`), as `reduceMean` without the division.
    public func reduceSum(axes: [Int], keepDims: Bool = true) -> Variable {
        reduce(axes: axes, keepDims: keepDims, mean: false)
    }

    private func reduce(axes: [Int], keepDims: Bool, mean: Bool) -> Variable {
        let inputShape = shape
        let reduced = Set(axes.isEmpty ? Array(inputShape.indices) : axes.map { normalizedAxis($0, rank: inputShape.count, "reduce") })
        precondition(axes.isEmpty || reduced.count == axes.count, "reduce: axes \(axes) repeat an axis")
        let kept = inputShape.indices.map { reduced.contains($0) ? 1 : inputShape[$0] }
        let count = reduced.reduce(1) { $0 * inputShape[$1] }
        let scale: Float = mean ? 1 / Float(max(count, 1)) : 1
        let outShape = keepDims ? kept : inputShape.indices.filter { !reduced.contains($0) }.map { inputShape[$0] }
        let y = value.summed(toShape: kept, alpha: scale).reshaped(outShape)
        let input = self
        return Variable.result(y, inputs: self) { dy in
            input.accumulate(dy.reshaped(kept).broadcast(toShape: inputShape, alpha: scale))
        }
    }
}
