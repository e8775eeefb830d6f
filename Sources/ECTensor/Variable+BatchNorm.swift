import Foundation

extension Variable {
    /// Batch normalisation over the last (channel) axis of `[..., C]` (NHWC activations).
    ///
    /// Training (`runningMean`/`runningVariance` given and `training`): per-channel batch mean
    /// μ and biased variance σ² over all other axes, `x̂ = (x − μ)/√(σ² + ε)`,
    /// `y = γ·x̂ + β`, and the running statistics move by `r ← m·r + (1−m)·batch`
    /// (the unbiased variance, as TensorFlow). Evaluation uses the running statistics.
    ///
    /// Backward (training), with M elements per channel:
    /// `dx = (γ/√(σ²+ε))/M · (M·dy − Σdy − x̂·Σ(dy·x̂))`, `dγ = Σ dy·x̂`, `dβ = Σ dy`.
    public func batchNorm(gamma: Variable, beta: Variable, runningMean: inout Tensor, runningVariance: inout Tensor,
                          training: Bool, momentum: Float = 0.99, epsilon: Float = 1e-3) -> Variable {
        let x = value
        let c = x.shape.last ?? 0
        precondition(gamma.shape == [c] && beta.shape == [c], "batchNorm: gamma \(gamma.shape)/beta \(beta.shape) do not fit \(c) channels")
        precondition(runningMean.shape == [c] && runningVariance.shape == [c], "batchNorm: running statistics do not fit \(c) channels")
        let m = c == 0 ? 0 : x.count / c
        var mean = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
        if training {
            precondition(m > 0, "batchNorm: empty batch")
            var sum = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
            x.withUnsafeBufferPointer { xp in
                for r in 0..<m {
                    let row = xp.baseAddress! + r * c
                    for j in 0..<c { sum[j] += Double(row[j]) }
                }
                for j in 0..<c { mean[j] = Float(sum[j] / Double(m)) }
                for r in 0..<m {
                    let row = xp.baseAddress! + r * c
                    for j in 0..<c { let d = Double(row[j] - mean[j]); sq[j] += d * d }
                }
            }
            runningMean.withUnsafeMutableBufferPointer { rm in runningVariance.withUnsafeMutableBufferPointer { rv in
                for j in 0..<c {
                    let variance = sq[j] / Double(m)
                    invStd[j] = Float(1 / (variance + Double(epsilon)).squareRoot())
                    let unbiased = m > 1 ? sq[j] / Double(m - 1) : variance
                    rm[j] = momentum * rm[j] + (1 - momentum) * mean[j]
                    rv[j] = momentum * rv[j] + (1 - momentum) * Float(unbiased)
                }
            } }
        } else {
            runningMean.withUnsafeBufferPointer { rm in runningVariance.withUnsafeBufferPointer { rv in
                for j in 0..<c { mean[j] = rm[j]; invStd[j] = 1 / (rv[j] + epsilon).squareRoot() }
            } }
        }
        var xhat = Tensor(uninitializedShape: x.shape)
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in gamma.value.withUnsafeBufferPointer { gp in beta.value.withUnsafeBufferPointer { bp in
            xhat.withUnsafeMutableBufferPointer { hp in y.withUnsafeMutableBufferPointer { yp in
                for r in 0..<m {
                    let o = r * c
                    for j in 0..<c {
                        let h = (xp[o + j] - mean[j]) * invStd[j]
                        hp[o + j] = h
                        yp[o + j] = gp[j] * h + bp[j]
                    }
                }
            } }
        } } }
        let input = self
        let normalized = xhat, scales = invStd
        return Variable.result(y, inputs: self, gamma, beta) { dy in
            var sumDy = [Float](repeating: 0, count: c), sumDyXhat = [Float](repeating: 0, count: c)
            dy.withUnsafeBufferPointer { g in normalized.withUnsafeBufferPointer { h in
                for r in 0..<m {
                    let o = r * c
                    for j in 0..<c { sumDy[j] += g[o + j]; sumDyXhat[j] += g[o + j] * h[o + j] }
                }
            } }
            if gamma.requiresGrad { gamma.accumulate(Tensor(shape: [c], scalars: sumDyXhat)) }
            if beta.requiresGrad { beta.accumulate(Tensor(shape: [c], scalars: sumDy)) }
            guard input.requiresGrad else { return }
            var dx = Tensor(uninitializedShape: x.shape)
            gamma.value.withUnsafeBufferPointer { gp in dy.withUnsafeBufferPointer { g in normalized.withUnsafeBufferPointer { h in
                dx.withUnsafeMutableBufferPointer { d in
                    if training {
                        let invM = 1 / Float(m)
                        for r in 0..<m {
                            let o = r * c
                            for j in 0..<c {
                                d[o + j] = gp[j] * scales[j] * (g[o + j] - invM * (sumDy[j] + h[o + j] * sumDyXhat[j]))
                            }
                        }
                    } else {
                        for r in 0..<m {
                            let o = r * c
                            for j in 0..<c { d[o + j] = gp[j] * scales[j] * g[o + j] }
                        }
                    }
                }
            } } }
            input.accumulate(dx)
        }
    }
}
