import Foundation

extension Variable {
    /// Fused softmax cross-entropy of `logits: [B, C]` against integer `labels` (B of them),
    /// summed over the batch and divided by `normalizer` (default B).
    ///
    /// Numerically stable: `log p_k = z_k − max(z) − log Σ exp(z − max(z))`.
    /// Backward: `dz = (softmax(z) − onehot(label)) · dL / normalizer`.
    ///
    /// Pass the *global* batch size as `normalizer` when each rank holds a shard of a global
    /// batch: summing the ranks' gradients then gives exactly the global-batch mean gradient,
    /// even when the shards are uneven.
    public func softmaxCrossEntropy(labels: [Int32], normalizer: Int? = nil) -> Variable {
        let z = value
        precondition(z.rank == 2 && z.shape[0] == labels.count,
                     "softmaxCrossEntropy: logits \(z.shape) vs \(labels.count) labels")
        let (b, c) = (z.shape[0], z.shape[1])
        let denom = Float(normalizer ?? b)
        precondition(denom > 0, "softmaxCrossEntropy: normalizer must be > 0")
        var probs = Tensor(uninitializedShape: z.shape)
        var total = 0.0
        z.withUnsafeBufferPointer { zp in probs.withUnsafeMutableBufferPointer { pp in
            for r in 0..<b {
                let row = zp.baseAddress! + r * c, out = pp.baseAddress! + r * c
                let label = Int(labels[r])
                precondition(label >= 0 && label < c, "label \(label) outside 0..<\(c)")
                var mx = -Float.infinity
                for j in 0..<c { mx = max(mx, row[j]) }
                var s: Float = 0
                for j in 0..<c { let e = expf(row[j] - mx); out[j] = e; s += e }
                let inv = 1 / s
                for j in 0..<c { out[j] *= inv }
                total += Double(logf(s) + mx - row[label])
            }
        } }
        let loss = Tensor(scalar: Float(total / Double(denom)))
        let input = self
        let softmax = probs
        return Variable.result(loss, inputs: self) { dy in
            let scale = dy.scalarValue / denom
            var dz = softmax
            dz.withUnsafeMutableBufferPointer { d in
                for r in 0..<b { d[r * c + Int(labels[r])] -= 1 }
                for i in 0..<d.count { d[i] *= scale }
            }
            input.accumulate(dz)
        }
    }
}

extension Tensor {
    /// Row-wise argmax of a `[B, C]` tensor (predicted classes).
    public func argmaxRows() -> [Int32] {
        precondition(rank == 2, "argmaxRows needs a rank-2 tensor, got \(shape)")
        let (b, c) = (shape[0], shape[1])
        return withUnsafeBufferPointer { p in
            (0..<b).map { r in
                var best = 0
                for j in 1..<max(c, 1) where p[r * c + j] > p[r * c + best] { best = j }
                return Int32(best)
            }
        }
    }
}
