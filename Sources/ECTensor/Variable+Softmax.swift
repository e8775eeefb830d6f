import Foundation

extension Variable {
    /// `softmax` along `axis` (negative counts from the end; ONNX `Softmax`, opset 13):
    /// `y = exp(x − max) / Σ exp(x − max)` over the axis, each slice on its own.
    ///
    /// Backward: `dx = y ⊙ (dy − Σ_axis dy ⊙ y)`.
    public func softmax(axis: Int = -1) -> Variable {
        let x = value
        let s = AxisSplit(x.shape, axis: normalizedAxis(axis, rank: x.rank, "softmax"))
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEach(s.outer, costPerItem: 8 * s.dim * s.inner) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * s.inner) { lanes in
                    let peak = lanes.baseAddress!, total = peak + s.inner
                    for o in range {
                        // The slices of this outer index are the `inner` lanes, `inner` apart.
                        let from = xb + o * s.dim * s.inner, to = yb + o * s.dim * s.inner
                        peak.update(repeating: -.infinity, count: s.inner)
                        total.update(repeating: 0, count: s.inner)
                        for k in 0..<s.dim {
                            let row = from + k * s.inner
                            for j in 0..<s.inner { peak[j] = max(peak[j], row[j]) }
                        }
                        for k in 0..<s.dim {
                            let row = from + k * s.inner, out = to + k * s.inner
                            for j in 0..<s.inner {
                                let e = Foundation.exp(row[j] - peak[j])
                                out[j] = e
                                total[j] += e
                            }
                        }
                        for j in 0..<s.inner { total[j] = 1 / total[j] }
                        for k in 0..<s.dim {
                            let out = to + k * s.inner
                            for j in 0..<s.inner { out[j] *= total[j] }
                        }
                    }
                }
            }
        } }
        let input = self, output = y
        return Variable.result(y, inputs: self) { dy in
            var dx = Tensor(uninitializedShape: x.shape)
            output.withUnsafeBufferPointer { yp in dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
                let (yb, gb, db) = (yp.baseAddress!, gp.baseAddress!, dp.baseAddress!)
                Parallel.forEach(s.outer, costPerItem: 4 * s.dim * s.inner) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: s.inner) { lanes in
                        let dot = lanes.baseAddress!
                        for o in range {
                            let base = o * s.dim * s.inner
                            dot.update(repeating: 0, count: s.inner)
                            for k in 0..<s.dim {
                                let at = base + k * s.inner
                                for j in 0..<s.inner { dot[j] += gb[at + j] * yb[at + j] }
                            }
                            for k in 0..<s.dim {
                                let at = base + k * s.inner
                                for j in 0..<s.inner { db[at + j] = yb[at + j] * (gb[at + j] - dot[j]) }
                            }
                        }
                    }
                }
            } } }
            input.accumulate(dx)
        }
    }
}
