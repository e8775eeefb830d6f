import ECNN
import ECTensor

/// Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay, in
/// PyTorch's formulation (`torch.optim.SGD` with dampening 0):
///
///     g ← ∇w + λ·w                       (λ = weightDecay)
///     v ← μ·v + g                        (μ = momentum; v starts at 0, so v₁ = g₁)
///     w ← w − lr·(g + μ·v)               if nesterov
///     w ← w − lr·v                       otherwise
///
/// With μ = 0 no velocity is kept and the update is w ← w − lr·g. Nesterov momentum follows
/// Sutskever et al. 2013 ("On the importance of initialization and momentum in deep learning").
///
/// **Equivalence to Keras / TF** (`tf.keras.optimizers.SGD`, `tf.train.MomentumOptimizer`
/// with `use_nesterov`): Keras keeps u ← μ·u − lr·g, w ← w + u (Nesterov: w ← w + μ·u − lr·g).
/// For a constant rate, induction gives u = −lr·v at every step, so both produce the same
/// weights (to rounding). They differ when the rate changes: here a new rate scales the whole
/// velocity at once, while Keras's velocity still carries the gradients scaled by earlier rates.
///
/// Slot: `momentum` (v), only when μ > 0.
public final class SGD: Optimizer {
    public let schedule: LRSchedule
    /// μ ∈ [0, 1).
    public let momentum: Float
    public let nesterov: Bool
    /// λ ≥ 0, the coupled L2 penalty's coefficient (gradient of λ/2·‖w‖²).
    public let weightDecay: Float
    public private(set) var stepCount = 0
    public var slotNames: [String] { momentum > 0 ? ["momentum"] : [] }

    /// Velocity per parameter name.
    private var velocity: [String: Tensor] = [:]

    /// - Throws: `OptimizerError.invalidValue` for an invalid schedule, `optimizer.momentum`
    ///   outside [0, 1), `optimizer.weight_decay` < 0, or `optimizer.nesterov` without momentum.
    public init(schedule: LRSchedule, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) throws {
        try schedule.validate()
        try require(momentum >= 0 && momentum < 1, "optimizer.momentum", momentum, "in [0, 1)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "optimizer.weight_decay", weightDecay, ">= 0")
        try require(!nesterov || momentum > 0, "optimizer.nesterov", nesterov,
                    "false when optimizer.momentum is 0")
        self.schedule = schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    /// SGD at a constant learning rate.
    public convenience init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false,
                            weightDecay: Float = 0) throws {
        try self.init(schedule: .constant(learningRate), momentum: momentum, nesterov: nesterov,
                      weightDecay: weightDecay)
    }

    public func step(_ parameters: [Parameter]) {
        let lr = learningRate, mu = momentum, wd = weightDecay, nesterov = nesterov
        for p in parameters where p.isTrainable {
            if mu == 0 {
                precondition(p.grad.shape == p.value.shape,
                             "\(p.name): gradient \(p.grad.shape) vs value \(p.value.shape)")
                p.grad.withUnsafeBufferPointer { g in
                    p.value.withUnsafeMutableBufferPointer { w in
                        for i in 0..<w.count { w[i] -= lr * (g[i] + wd * w[i]) }
                    }
                }
                continue
            }
            OptimizerState.ensureSlot(&velocity, for: p, slot: "momentum")
            velocity[p.name]!.withUnsafeMutableBufferPointer { v in
                p.grad.withUnsafeBufferPointer { g in
                    p.value.withUnsafeMutableBufferPointer { w in
                        if nesterov {
                            for i in 0..<w.count {
                                let gi = g[i] + wd * w[i], vi = mu * v[i] + gi
                                v[i] = vi
                                w[i] -= lr * (gi + mu * vi)
                            }
                        } else {
                            for i in 0..<w.count {
                                let vi = mu * v[i] + (g[i] + wd * w[i])
                                v[i] = vi
                                w[i] -= lr * vi
                            }
                        }
                    }
                }
            }
        }
        stepCount += 1
    }

    public func exportState() -> NamedTensors {
        OptimizerState.export(stepCount: stepCount, slots: momentum > 0 ? [("momentum", velocity)] : [])
    }

    public func importState(_ state: NamedTensors, for parameters: [Parameter]) throws {
        let decoded = try OptimizerState.decode(state, slotNames: slotNames, optimizerName: "SGD",
                                                parameters: parameters)
        stepCount = decoded.stepCount
        velocity = decoded.tables.first ?? [:]
    }

    public func forEachSlot(of parameterName: String, _ body: (inout Tensor) -> Void) {
        guard velocity[parameterName] != nil else { return }
        body(&velocity[parameterName]!)
    }
}
