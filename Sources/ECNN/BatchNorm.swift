import ECTensor

/// Batch normalisation over the channel axis (op type `FusedBatchNorm`): `name/gamma`,
/// `name/beta` (trained) and `name/moving_mean`, `name/moving_variance` (running statistics,
/// momentum 0.99, ε = 1e-3 as Keras). In training each pass normalises with its own batch's
/// statistics, or — synchronised batch norm, when the context has a `batchStatistics` reducer
/// — with the global batch's (docs/distributed.md, "Batch norm on several ranks").
public final class BatchNorm: Module {
    public let name: String
    public let opType = "FusedBatchNorm"
    public let gamma, beta, movingMean, movingVariance: Parameter
    public let momentum: Float
    public let epsilon: Float

    public init(name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3) {
        precondition(channels > 0, "\(name): BatchNorm needs channels > 0")
        self.name = name
        self.momentum = momentum
        self.epsilon = epsilon
        gamma = Parameter(name: scopePath(name, "gamma"), role: .gamma, value: Tensor(shape: [channels], repeating: 1))
        beta = Parameter(name: scopePath(name, "beta"), role: .beta, value: Tensor(shape: [channels]))
        movingMean = Parameter(name: scopePath(name, "moving_mean"), role: .movingMean, value: Tensor(shape: [channels]))
        movingVariance = Parameter(name: scopePath(name, "moving_variance"), role: .movingVariance,
                                   value: Tensor(shape: [channels], repeating: 1))
    }

    public var channels: Int { gamma.shape[0] }
    public var ownParameters: [Parameter] { [gamma, beta, movingMean, movingVariance] }

    public func forward(_ x: Variable, _ ctx: ForwardContext) -> Variable {
        let statistics = ctx.training ? ctx.batchStatistics : nil
        if let statistics, !statistics.updatesRunningStatistics {
            // Another pass of this process moves the running statistics (the same global ones):
            // this one never touches them, so passes may run at once.
            var unusedMean = Tensor(shape: [channels]), unusedVariance = Tensor(shape: [channels], repeating: 1)
            return x.batchNorm(gamma: ctx.variable(for: gamma), beta: ctx.variable(for: beta),
                               runningMean: &unusedMean, runningVariance: &unusedVariance, training: true,
                               momentum: momentum, epsilon: epsilon, statistics: statistics)
        }
        return x.batchNorm(gamma: ctx.variable(for: gamma), beta: ctx.variable(for: beta),
                           runningMean: &movingMean.value, runningVariance: &movingVariance.value,
                           training: ctx.training, momentum: momentum, epsilon: epsilon, statistics: statistics)
    }

    public func inputProblem(_ input: [Int]) -> String? {
        input.last == channels ? nil : "normalises \(channels) channels, the input \(input) has \(input.last ?? 0) on its last axis"
    }

    public func outputShape(for input: [Int]) -> [Int] { input }

    /// The kernel and bias of a Conv2D/Dense followed by this batch norm in inference, as one
    /// layer: with a = γ / √(σ² + ε) per output channel (the kernel's last axis),
    /// `W' = W·a`, `b' = (b − μ)·a + β`.
    public func fold(kernel: Tensor, bias: Tensor?) -> (kernel: Tensor, bias: Tensor) {
        let c = channels
        precondition(kernel.shape.last == c, "\(name): a kernel of \(kernel.shape) does not end in \(c) channels")
        let g = gamma.value.scalars, b = beta.value.scalars, m = movingMean.value.scalars, v = movingVariance.value.scalars
        let a = (0..<c).map { g[$0] / (v[$0] + epsilon).squareRoot() }
        let k = kernel.scalars.enumerated().map { $0.element * a[$0.offset % c] }
        let old = bias?.scalars ?? [Float](repeating: 0, count: c)
        return (Tensor(shape: kernel.shape, scalars: k), Tensor(shape: [c], scalars: (0..<c).map { (old[$0] - m[$0]) * a[$0] + b[$0] }))
    }
}
