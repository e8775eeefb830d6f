import ECNN
import ECTensor

/// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization") with bias correction
/// and optional coupled L2 weight decay, as `torch.optim.Adam`. At step t = stepCount + 1:
///
///     g ← ∇w + λ·w                        (λ = weightDecay: an L2 penalty λ/2·‖w‖²)
///     m ← β₁·m + (1 − β₁)·g
///     v ← β₂·v + (1 − β₂)·g²
///     m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
///     w ← w − lr·m̂ / (√v̂ + ε)
///
/// The L2 term passes through the adaptive scaling, so heavily-updated weights are decayed
/// less; `AdamW` (a subclass differing only in that) decouples the decay instead.
/// Slots: `m`, `v` (zeros before the first step).
public class Adam: Optimizer {
    let core: AdamCore

    /// - Throws: `OptimizerError.invalidValue` for an invalid schedule, `optimizer.beta1` or
    ///   `optimizer.beta2` outside [0, 1), `optimizer.epsilon` ≤ 0, `optimizer.weight_decay` < 0.
    public convenience init(schedule: LRSchedule, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                            weightDecay: Float = 0) throws {
        try self.init(core: AdamCore(schedule: schedule, beta1: beta1, beta2: beta2, epsilon: epsilon,
                                     weightDecay: weightDecay, decoupled: false))
    }

    init(core: AdamCore) { self.core = core }

    /// Adam at a constant learning rate.
    public convenience init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 0) throws {
        try self.init(schedule: .constant(learningRate), beta1: beta1, beta2: beta2, epsilon: epsilon,
                      weightDecay: weightDecay)
    }

    public var schedule: LRSchedule { core.schedule }
    public var beta1: Float { core.beta1 }
    public var beta2: Float { core.beta2 }
    public var epsilon: Float { core.epsilon }
    public var weightDecay: Float { core.weightDecay }
    public var stepCount: Int { core.stepCount }
    public var slotNames: [String] { AdamCore.slotNames }

    public func step(_ parameters: [Parameter]) { core.step(parameters) }
    public func exportState() -> NamedTensors { core.exportState() }
    public func importState(_ state: NamedTensors, for parameters: [Parameter]) throws {
        try core.importState(state, for: parameters, optimizerName: core.decoupled ? "AdamW" : "Adam")
    }
    public func forEachSlot(of parameterName: String, _ body: (inout Tensor) -> Void) {
        core.forEachSlot(of: parameterName, body)
    }
}
