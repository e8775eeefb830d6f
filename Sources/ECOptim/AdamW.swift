import ECNN
import ECTensor

/// Adam with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay
/// Regularization"), bias-corrected as in Kingma & Ba 2015, as `torch.optim.AdamW`. At step
/// t = stepCount + 1:
///
///     m ← β₁·m + (1 − β₁)·∇w
///     v ← β₂·v + (1 − β₂)·(∇w)²
///     m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
///     w ← w − lr·λ·w − lr·m̂ / (√v̂ + ε)          (λ = weightDecay)
///
/// The decay acts on the weights directly, outside the adaptive scaling, so every weight
/// shrinks by the same factor (1 − lr·λ) per step. As in PyTorch the decay is scaled by the
/// scheduled rate lr, i.e. the paper's η_t·λ with its λ = lr₀·λ here. Slots: `m`, `v`.
public final class AdamW: Adam {
    /// `weightDecay` defaults to 0.01, PyTorch's default for AdamW.
    /// - Throws: `OptimizerError.invalidValue` for an invalid schedule, `optimizer.beta1` or
    ///   `optimizer.beta2` outside [0, 1), `optimizer.epsilon` ≤ 0, `optimizer.weight_decay` < 0.
    public convenience init(schedule: LRSchedule, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                            weightDecay: Float = 0.01) throws {
        self.init(core: try AdamCore(schedule: schedule, beta1: beta1, beta2: beta2, epsilon: epsilon,
                                     weightDecay: weightDecay, decoupled: true))
    }

    /// AdamW at a constant learning rate.
    public convenience init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-8, weightDecay: Float = 0.01) throws {
        try self.init(schedule: .constant(learningRate), beta1: beta1, beta2: beta2, epsilon: epsilon,
                      weightDecay: weightDecay)
    }
}
