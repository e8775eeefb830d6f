import Foundation

/// Synchronised batch norm: sums each batch-norm layer's per-channel statistics over every
/// pass that normalises one global batch — the thread replicas of this process and the other
/// ranks — so that every pass normalises with the global batch's mean and variance (SyncBN as
/// in PyTorch and Horovod). The training side provides it (`ForwardContext.batchStatistics`);
/// the engine knows nothing of ranks.
///
/// Every pass calls `sum` the same number of times with the same lengths, in the same order:
/// twice per layer in the forward pass, once per layer in the backward pass.
public protocol BatchStatisticsReducer: AnyObject {
    /// Replaces `values` with their element-wise sum over every pass (this one included),
    /// the same bits on every pass.
    func sum(_ values: inout [Double])
    /// Whether this pass moves the layer's running statistics: one pass per process does (the
    /// others compute the same global statistics and leave the running ones alone).
    var updatesRunningStatistics: Bool { get }
}

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
    ///
    /// With `statistics` (synchronised batch norm, training only) M, Σx, Σ(x − μ)² and, in the
    /// backward pass, Σdy and Σ(dy·x̂) are summed over every pass of the global batch before
    /// use, so μ, σ² and dx are the global batch's; dγ and dβ stay this pass's own sums (the
    /// parameter gradients are summed over passes like every other). The running statistics
    /// move only when `statistics.updatesRunningStatistics`. A reducer that returns its input
    /// (one pass) computes exactly what no reducer computes.
    public func batchNorm(gamma: Variable, beta: Variable, runningMean: inout Tensor, runningVariance: inout Tensor,
                          training: Bool, momentum: Float = 0.99, epsilon: Float = 1e-3,
                          statistics: BatchStatisticsReducer? = nil) -> Variable {
        let x = value
        let c = x.shape.last ?? 0
        precondition(gamma.shape == [c] && beta.shape == [c], "batchNorm: gamma \(gamma.shape)/beta \(beta.shape) do not fit \(c) channels")
        precondition(runningMean.shape == [c] && runningVariance.shape == [c], "batchNorm: running statistics do not fit \(c) channels")
        let m = c == 0 ? 0 : x.count / c
        let statistics = training ? statistics : nil
        var mean = [Float](repeating: 0, count: c), invStd = [Float](repeating: 0, count: c)
        // Elements per channel over every pass (this pass's m without a reducer).
        var total = Double(m)
        if training {
            precondition(m > 0, "batchNorm: empty batch")
            var sum = [Double](repeating: 0, count: c + 1), sq = [Double](repeating: 0, count: c)
            sum[c] = Double(m)
            x.withUnsafeBufferPointer { xp in
                for r in 0..<m {
                    let row = xp.baseAddress! + r * c
                    for j in 0..<c { sum[j] += Double(row[j]) }
                }
                statistics?.sum(&sum)
                total = sum[c]
                for j in 0..<c { mean[j] = Float(sum[j] / total) }
                for r in 0..<m {
                    let row = xp.baseAddress! + r * c
                    for j in 0..<c { let d = Double(row[j] - mean[j]); sq[j] += d * d }
                }
            }
            statistics?.sum(&sq)
            for j in 0..<c { invStd[j] = Float(1 / (sq[j] / total + Double(epsilon)).squareRoot()) }
            if statistics?.updatesRunningStatistics ?? true {
                BatchNormStatistics.move(runningMean: &runningMean, runningVariance: &runningVariance, mean: mean,
                                         squares: sq, count: total, momentum: momentum)
            }
        } else {
            runningMean.withUnsafeBufferPointer { rm in runningVariance.withUnsafeBufferPointer { rv in
                for j in 0..<c { mean[j] = rm[j]; invStd[j] = 1 / (rv[j] + epsilon).squareRoot() }
            } }
        }
        // x̂ is kept only for the backward pass: without a tape (inference) it is not stored.
        let recording = tape != nil || gamma.tape != nil || beta.tape != nil
        var xhat = Tensor(uninitializedShape: recording ? x.shape : [0])
        var y = Tensor(uninitializedShape: x.shape)
        x.withUnsafeBufferPointer { xp in gamma.value.withUnsafeBufferPointer { gp in beta.value.withUnsafeBufferPointer { bp in
            mean.withUnsafeBufferPointer { mu in invStd.withUnsafeBufferPointer { s in
                xhat.withUnsafeMutableBufferPointer { hp in y.withUnsafeMutableBufferPointer { yp in
                    for r in 0..<m {
                        let o = r * c
                        for j in 0..<c {
                            let h = (xp[o + j] - mu[j]) * s[j]
                            if recording { hp[o + j] = h }
                            yp[o + j] = gp[j] * h + bp[j]
                        }
                    }
                } }
            } }
        } } }
        let input = self
        let normalized = xhat, scales = invStd, elements = total
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
            if let statistics {  // every pass takes part, whether or not its input needs a gradient
                var sums = sumDy.map(Double.init) + sumDyXhat.map(Double.init)
                statistics.sum(&sums)
                for j in 0..<c { sumDy[j] = Float(sums[j]); sumDyXhat[j] = Float(sums[c + j]) }
            }
            guard input.requiresGrad else { return }
            var dx = Tensor(uninitializedShape: x.shape)
            gamma.value.withUnsafeBufferPointer { gp in dy.withUnsafeBufferPointer { g in normalized.withUnsafeBufferPointer { h in
                dx.withUnsafeMutableBufferPointer { d in
                    if training {
                        let invM = 1 / Float(elements)
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

/// The running statistics of batch norm in training, and what a pass without samples does in
/// synchronised batch norm.
public enum BatchNormStatistics {
    /// `r ← m·r + (1−m)·b` for the mean and the unbiased variance `Σ(x − μ)²/(count − 1)`
    /// (the biased one for a count of 1), per channel.
    static func move(runningMean: inout Tensor, runningVariance: inout Tensor, mean: [Float], squares: [Double],
                     count: Double, momentum: Float) {
        runningMean.withUnsafeMutableBufferPointer { rm in runningVariance.withUnsafeMutableBufferPointer { rv in
            for j in 0..<mean.count {
                let unbiased = count > 1 ? squares[j] / (count - 1) : squares[j] / count
                rm[j] = momentum * rm[j] + (1 - momentum) * mean[j]
                rv[j] = momentum * rv[j] + (1 - momentum) * Float(unbiased)
            }
        } }
    }

    /// The forward part of a synchronised batch-norm layer for a pass that holds no samples (a
    /// rank whose shard of the global batch is empty): it takes part in both sums with zeros,
    /// and moves the running statistics by the global batch's as the other passes do, so every
    /// rank keeps the same ones.
    public static func forwardWithoutSamples(runningMean: inout Tensor, runningVariance: inout Tensor, momentum: Float,
                                             statistics: BatchStatisticsReducer) {
        let c = runningMean.count
        var sum = [Double](repeating: 0, count: c + 1)
        statistics.sum(&sum)
        let total = sum[c]
        let mean = (0..<c).map { Float(sum[$0] / total) }
        var sq = [Double](repeating: 0, count: c)
        statistics.sum(&sq)
        guard statistics.updatesRunningStatistics, total > 0 else { return }
        move(runningMean: &runningMean, runningVariance: &runningVariance, mean: mean, squares: sq, count: total,
             momentum: momentum)
    }

    /// The backward part of a synchronised batch-norm layer for a pass without samples: zeros
    /// in the sums of Σdy and Σdy·x̂. Called in the reverse order of the layers.
    public static func backwardWithoutSamples(channels c: Int, statistics: BatchStatisticsReducer) {
        var sums = [Double](repeating: 0, count: 2 * c)
        statistics.sum(&sums)
    }
}
